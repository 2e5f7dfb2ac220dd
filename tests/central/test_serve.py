"""``packline central serve`` as a real process: start-up errors, SIGTERM, SIGKILL."""

from __future__ import annotations

import json
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from packline.devbroker import MosquittoBroker, free_port
from sync.messages import Ack, OrdersMessage, decode
from tests.support.brokers import AclBroker
from tests.support.central import FakeStation, event
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt

PACKLINE = [sys.executable, "-m", "packline", "central"]


class Central:
    """One ``central serve`` process, restartable on the same database and port."""

    def __init__(self, *, tmp_path: Path, mqtt_url: str, site: str) -> None:
        self.db = tmp_path / "central.db"
        self.port = free_port()
        self.log = tmp_path / "central.log"
        self.args = [
            *PACKLINE,
            "serve",
            "--db-url",
            f"sqlite:///{self.db}",
            "--mqtt-url",
            mqtt_url,
            "--site",
            site,
            "--http-port",
            str(self.port),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log)
        wait_for(self.healthy, what="central to serve /healthz", timeout=60)

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"central exited: {self.log.read_text()[-2000:]}")
        try:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.proc = None
        return rc

    def ensure_gone(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _healthz(port: int) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_central_started_before_its_broker_serves_and_connects_when_it_can(
    tmp_path: Path,
) -> None:
    # At boot the order of services is not guaranteed: the broker comes up later.
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto")
    site = f"boot-{uuid.uuid4().hex[:8]}"
    central = Central(tmp_path=tmp_path, mqtt_url=broker.url, site=site)
    with central.log.open("ab") as log:
        central.proc = subprocess.Popen(central.args, stdout=log, stderr=log)
    try:

        def waiting() -> dict[str, str] | None:
            assert central.proc is not None and central.proc.poll() is None, central.log.read_text()
            try:
                code, body = _healthz(central.port)
            except OSError:
                return None
            return body if code == 503 else None

        body = wait_for(waiting, what="central to serve /healthz while it waits", timeout=60)
        assert body["status"] == "waiting for the broker" and body["db"] == "ok"
        assert body["broker"] == f"cannot reach the broker at {broker.url}: connection refused"
        with urllib.request.urlopen(f"http://127.0.0.1:{central.port}/", timeout=5) as page:
            assert page.status == 200
        said = central.log.read_text()
        assert f"waiting for the MQTT broker at {broker.url}" in said
        assert "Traceback" not in said

        broker.start()
        wait_for(lambda: _healthz(central.port)[0] == 200, what="central to connect", timeout=60)
        assert _healthz(central.port)[1]["broker"] == "connected"
        station = FakeStation(url=broker.url, site=site, name="bench-late")
        try:
            station.send(event("bench-late", 1))
            assert station.next("ack", Ack).seq == 1
        finally:
            station.close()
        assert central.signal(signal.SIGTERM) == 0
    finally:
        central.ensure_gone()
        broker.kill()


def test_credentials_the_broker_refuses_are_one_line_and_exit_2(tmp_path: Path) -> None:
    # A broker that takes no anonymous client: central's credentials can never pass.
    broker = AclBroker(workdir=tmp_path / "acl", acl="", anonymous=False).start()
    try:
        done = subprocess.run(
            [*PACKLINE, "serve", "--db-url", f"sqlite:///{tmp_path / 'c.db'}",
             "--mqtt-url", broker.url, "--http-port", str(free_port())],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        broker.kill()
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr == (
        f"packline: error: the MQTT broker at {broker.url} refused: the broker refused the "
        "connection: Not authorized\n"
    )


def test_port_in_use_is_one_line_and_exit_2(tmp_path: Path, broker: MosquittoBroker) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*PACKLINE, "serve", "--db-url", f"sqlite:///{tmp_path / 'c.db'}",
             "--mqtt-url", broker.url, "--http-port", str(port), "--site", "porttest"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot listen on http://127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_central_killed_mid_stream_keeps_every_event_exactly_once(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    site = f"kill-{uuid.uuid4().hex[:8]}"
    central = Central(tmp_path=tmp_path, mqtt_url=broker.url, site=site)
    central.start()
    station = FakeStation(url=broker.url, site=site, name="bench-k")
    total, window = 240, 20
    outbox = [event("bench-k", seq) for seq in range(1, total + 1)]
    acked, killed = 0, False
    try:

        def next_ack(timeout: float) -> int | None:
            try:
                return decode(Ack, station.inbox["ack"].get(timeout=timeout)).seq
            except queue.Empty:
                return None

        deadline_rounds = 2000  # a bound on resend rounds, not on time
        for _ in range(deadline_rounds):
            if acked >= total:
                break
            # Like the edge: (re)send the oldest unacked events until they are acked.
            station.send(*outbox[acked : acked + window])
            if not killed and acked >= total // 3:
                # Right after a batch went out: central is receiving, storing or acking.
                assert central.signal(signal.SIGKILL) == -signal.SIGKILL
                killed = True
                for _ in range(3):  # the station keeps sending while central is gone
                    station.send(*outbox[acked : acked + window])
                central.start()
                continue
            seq = next_ack(1.0)
            while seq is not None:
                acked = max(acked, seq)
                seq = next_ack(0.0)
        assert killed and acked == total

        # An import from another process reaches the (known) station through central.
        orders = tmp_path / "orders.json"
        orders.write_text('[{"order_no": "LATE-1", "lines": [{"sku": "S", "qty": 1}]}]')
        done = subprocess.run(
            [*PACKLINE, "import-orders", str(orders), "--db-url", f"sqlite:///{central.db}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        pushed = station.next("orders", OrdersMessage)
        assert ([o.order_no for o in pushed.orders], pushed.cursor) == (["LATE-1"], 1)

        assert central.signal(signal.SIGTERM) == 0  # a clean stop
    finally:
        station.close()
        central.ensure_gone()

    with sqlite3.connect(central.db) as db:
        seqs = [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]
        ids = {r[0] for r in db.execute("SELECT event_id FROM events")}
        shipped = db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM shipments").fetchone()
        acked_seq = db.execute("SELECT acked_seq FROM stations").fetchone()[0]
    assert seqs == list(range(1, total + 1))
    assert ids == {e.event_id for e in outbox}
    assert shipped == (total, total)
    assert acked_seq == total
