"""systemd's notify protocol over a real unix datagram socket: READY, the watchdog fed
only while the loops are healthy, and a real ``central serve`` speaking it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from packline.devbroker import MosquittoBroker, free_port
from sync import sdnotify
from tests.support.waiting import wait_for


class Systemd:
    """The receiving end of ``NOTIFY_SOCKET``: every datagram, in order."""

    def __init__(self, address: str) -> None:
        self.address = address
        bind = "\0" + address[1:] if address.startswith("@") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.sock.settimeout(0.1)
        self.got: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def count(self, message: str) -> int:
        return sum(1 for m in list(self.got) if m == message)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def systemd(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Systemd]:
    address = (
        str(tmp_path / "notify.sock")
        if request.param == "path"
        else f"@packline-test-{uuid.uuid4().hex}"
    )
    receiver = Systemd(address)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    try:
        yield receiver
    finally:
        receiver.close()


def test_ready_and_stopping_reach_systemd(systemd: Systemd) -> None:
    assert sdnotify.ready("station bench-01 packing")
    assert sdnotify.stopping()
    wait_for(lambda: len(systemd.got) == 2, what="two messages")
    assert systemd.got == ["READY=1\nSTATUS=station bench-01 packing", "STOPPING=1"]


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.ready("x") is False
    assert sdnotify.watchdog_interval() is None
    dog = sdnotify.Watchdog({"loop": lambda: None})
    dog.start()  # no interval: no thread, nothing sent
    assert dog._thread is None
    dog.stop()


def test_watchdog_interval_only_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None


def test_a_stalled_loop_stops_the_watchdog_and_a_dead_thread_too(systemd: Systemd) -> None:
    beat = sdnotify.Heartbeat("the scanner loop", max_age=0.3)
    worker = threading.Thread(target=lambda: time.sleep(0.6), daemon=True)
    worker.start()
    dog = sdnotify.Watchdog(
        {"scanner": beat.probe, "uplink": sdnotify.thread_probe("uplink", lambda: worker)},
        interval=0.1,
    )
    dog.start()
    try:
        for _ in range(3):
            beat.beat()
            wait_for(lambda: systemd.count("WATCHDOG=1") > 0, what="the watchdog fed")
        # The loop stops going round: the feeding stops and the reason is reported.
        wait_for(lambda: any(m.startswith("STATUS=unhealthy") for m in systemd.got),
                 what="unhealthy", timeout=5)  # fmt: skip
        fed = systemd.count("WATCHDOG=1")
        time.sleep(0.5)
        assert systemd.count("WATCHDOG=1") == fed
        assert "the scanner loop has not gone round" in next(
            m for m in systemd.got if m.startswith("STATUS=unhealthy")
        )
        # Beating again while the uplink thread has ended: still unhealthy, and why.
        worker.join()
        beat.beat()
        wait_for(lambda: any("the uplink thread has stopped" in m for m in systemd.got),
                 what="the dead thread named")  # fmt: skip
        assert dog.check() is False
    finally:
        dog.stop()


def test_central_serve_says_ready_and_feeds_the_watchdog(
    systemd: Systemd, tmp_path: Path, broker: MosquittoBroker
) -> None:
    env = {**os.environ, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": ""}
    env.pop("WATCHDOG_PID")
    log = tmp_path / "central.log"
    args = [sys.executable, "-m", "packline", "central", "serve",
            "--db-url", f"sqlite:///{tmp_path / 'c.db'}", "--mqtt-url", broker.url,
            "--site", f"sd-{uuid.uuid4().hex[:6]}", "--http-port", str(free_port())]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    try:
        wait_for(lambda: any(m.startswith("READY=1") for m in systemd.got),
                 what="READY from central", timeout=60)  # fmt: skip
        wait_for(lambda: systemd.count("WATCHDOG=1") >= 3, what="the watchdog fed", timeout=30)
        assert not any(m.startswith("STATUS=unhealthy") for m in systemd.got), systemd.got
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    wait_for(lambda: "STOPPING=1" in systemd.got, what="STOPPING on SIGTERM")
    assert proc.returncode == 0, log.read_text()[-2000:]


def test_the_station_agent_says_ready_and_feeds_the_watchdog(
    systemd: Systemd, tmp_path: Path, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.processes import Station

    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    station = Station(workdir=tmp_path, name="bench-sd", mqtt_url=broker.url,
                      site=f"sd-{uuid.uuid4().hex[:6]}").start()  # fmt: skip
    try:
        wait_for(lambda: "READY=1\nSTATUS=station bench-sd packing" in systemd.got,
                 what="READY from the agent", timeout=60)  # fmt: skip
        wait_for(lambda: systemd.count("WATCHDOG=1") >= 3, what="the watchdog fed", timeout=30)
        assert not any(m.startswith("STATUS=unhealthy") for m in systemd.got), systemd.got
    finally:
        assert station.proc is not None
        station.proc.terminate()
        station.proc.wait(timeout=30)
    wait_for(lambda: "STOPPING=1" in systemd.got, what="STOPPING on SIGTERM")
