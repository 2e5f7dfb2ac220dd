"""A station that cannot reach central says so: once per change of state, in words, with
the records it holds; ``packline edge status`` shows it; a clean stop is no WARNING.

``packline edge run`` as a real process, its log read as the admin reads it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from packline.devbroker import MosquittoBroker, free_port
from tests.support.brokers import AclBroker
from tests.support.cli import run_packline
from tests.support.processes import Station
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt


@contextlib.contextmanager
def station(tmp_path: Path, mqtt_url: str, *, site: str = "link") -> Iterator[Station]:
    s = Station(workdir=tmp_path, name="bench-l", mqtt_url=mqtt_url, site=site).start()
    try:
        yield s
    finally:
        s.close()


def warnings(s: Station) -> list[str]:
    """The log's WARNING lines, but the packer's feedback (``REFUSED ...``)."""
    return [
        line
        for line in s.log.read_text().splitlines()
        if " WARNING " in line and "packline.bench" not in line
    ]


def edge_status(s: Station) -> dict[str, str]:
    done = run_packline("edge", "status", "--station", s.name, "--data-dir", s.data)
    assert done.returncode == 0, done.stderr
    return {
        k.strip(): v.strip() for k, _, v in (x.partition(":") for x in done.stdout.splitlines())
    }


def stop(s: Station) -> int:
    assert s.proc is not None
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=30)
    s.proc = None
    return rc


def test_a_peer_that_is_no_broker_is_said_once_with_the_records_held(tmp_path: Path) -> None:
    attempts: list[int] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def close_all() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                attempts.append(1)
                conn.close()

        threading.Thread(target=close_all, daemon=True).start()
        url = f"mqtt://127.0.0.1:{port}"
        with station(tmp_path, url) as s:
            wait_for(lambda: warnings(s), what="the station to say it", timeout=60)
            s.scan("NOT-AN-ORDER-1")  # recorded while offline: one record held
            wait_for(lambda: s.backlog() == 1, what="the scan recorded")
            wait_for(lambda: len(attempts) >= 4, what="several reconnects", timeout=60)
            said = warnings(s)
            assert len(said) == 1, said  # not one per retry
            assert said[0].endswith(
                f"the broker at {url} closed the connection before accepting it (is it an "
                "MQTT broker, and does it expect plain MQTT?); no records waiting to be sent"
            ), said[0]
            shown = edge_status(s)
            assert shown["link"].startswith(f"the broker at {url} closed the connection")
            assert shown["backlog"].startswith("1 events not yet acknowledged by central, oldest")
            assert stop(s) == 0
            assert warnings(s) == said  # the stop is no WARNING
            assert "disconnected (the agent is stopping); holding 1 record for central" in (
                s.log.read_text()
            )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mqtt://127.0.0.1:{free}", "cannot reach the broker at {url}: connection refused"),
        (
            "mqtt://no-such-host.invalid:1883",
            "cannot reach the broker at {url}: no such host 'no-such-host.invalid'",
        ),
    ],
    ids=["nothing-listens", "wrong-host"],
)
def test_an_unreachable_broker_is_said_in_words(tmp_path: Path, url: str, words: str) -> None:
    url = url.format(free=free_port())
    expected = words.format(url=url)
    with station(tmp_path, url) as s:
        wait_for(lambda: warnings(s), what="the station to say it", timeout=60)
        assert expected in warnings(s)[0], warnings(s)
        assert edge_status(s)["link"].startswith(expected)
        assert "Traceback" not in s.log.read_text()


def test_credentials_the_broker_refuses_are_said_in_words(tmp_path: Path) -> None:
    broker = AclBroker(workdir=tmp_path / "acl", acl="", anonymous=False).start()
    try:
        with station(tmp_path, broker.url) as s:
            wait_for(lambda: warnings(s), what="the station to say it", timeout=60)
            assert warnings(s)[0].endswith(
                f"the broker refused the connection: Not authorized ({broker.url}); no records "
                "waiting to be sent"
            )
            assert edge_status(s)["link"].startswith(
                "the broker refused the connection: Not authorized"
            )
    finally:
        broker.kill()


def test_a_connected_station_stops_cleanly_without_a_warning(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    with station(tmp_path, broker.url) as s:
        wait_for(
            lambda: "connected to the broker at" in s.log.read_text(),
            what="the station to connect",
            timeout=60,
        )
        assert edge_status(s)["link"].startswith(f"connected to the broker at {broker.url}")
        assert stop(s) == 0
        log = s.log.read_text()
        assert warnings(s) == [], log
        assert "disconnected (the agent is stopping)" in log
        assert edge_status(s)["link"].startswith("disconnected (the agent is stopping)")


def test_a_broker_crash_is_said_in_words_and_so_is_its_return(
    tmp_path: Path, own_broker: MosquittoBroker
) -> None:
    with station(tmp_path, own_broker.url) as s:
        wait_for(
            lambda: "connected to the broker at" in s.log.read_text(),
            what="the station to connect",
            timeout=60,
        )
        s.scan("NOT-AN-ORDER-2")  # no central: the record stays held
        wait_for(lambda: s.backlog() == 1, what="the scan recorded")
        own_broker.kill()
        wait_for(lambda: len(warnings(s)) >= 2, what="the loss and the failed reconnect")
        said = warnings(s)
        lost, unreachable = said[0].split(": ", 1)[1], said[1].split(": ", 1)[1]
        assert lost.startswith(
            "lost the connection to the broker: it stopped, or the network failed "
            f"({own_broker.url}); holding 1 record for central, oldest"
        ), said
        assert unreachable.startswith(
            f"cannot reach the broker at {own_broker.url}: connection refused; holding 1 record"
        ), said
        assert "Unspecified error" not in s.log.read_text()
        own_broker.start()
        wait_for(
            lambda: s.log.read_text().count("connected to the broker at") >= 2,
            what="the station back",
            timeout=60,
        )
        assert len(warnings(s)) == 2  # each change once, not each retry
