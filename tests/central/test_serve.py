"""``packline central serve`` as a real process: start-up errors, SIGTERM, SIGKILL."""

from __future__ import annotations

import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from packline.devbroker import MosquittoBroker, free_port
from sync.messages import Ack, OrdersMessage, decode
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


def test_unreachable_broker_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [*PACKLINE, "serve", "--db-url", f"sqlite:///{tmp_path / 'c.db'}",
         "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}", "--http-port", str(free_port())],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "cannot reach the MQTT broker" in done.stderr


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
