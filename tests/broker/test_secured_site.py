"""A whole site on a secured broker, all real processes: ``packline broker config``
with TLS, Mosquitto on exactly its output, ``central serve`` and ``edge run`` taking
their URLs from secrets files. A scan reaches central; no password is ever printed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from packline.devbroker import free_port, stop_process
from packline.samples import packing_scans, sample_orders
from tests.support.cli import PACKLINE, run_packline
from tests.support.processes import SCANNER_READY, Station, query
from tests.support.siteconfig import (
    ConfiguredBroker,
    broker_config,
    make_pki,
    password,
    with_password,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SITE = "secured"
BENCH = "bench-01"


class Site:
    """The broker's folder, central and one bench, each a process of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "broker"
        self.port = free_port()
        self.http = free_port()
        self.pki = make_pki(root / "pki")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.central_toml = root / "central.toml"
        self.db = root / "central.db"
        self.bench_etc = root / "bench-etc"
        self.bench_data = root / "bench-data"
        self.station_toml = self.bench_etc / "station.toml"
        self.master, self._slave = os.openpty()
        self.bench: subprocess.Popen[bytes] | None = None

    def configure(self) -> None:
        broker_config(
            *("--site", SITE, "--stations", BENCH, "--supervisors", "ops"),
            *("--out", str(self.out), "--host", "127.0.0.1"),
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--tls-cert", str(self.pki["cert"]), "--tls-key", str(self.pki["key"])),
            *("--tls-ca", str(self.pki["ca"])),
        )
        self.central_toml.write_text(
            f'db_url = "sqlite:///{self.db}"\nsite = "{SITE}"\nhttp_port = {self.http}\n'
            f'mqtt_url_file = "{self.out}/secrets/central.url"\n'
        )
        # As an admin would: the bench's URL file and the CA, copied together.
        self.bench_etc.mkdir()
        shutil.copy(self.out / "secrets" / f"{BENCH}.url", self.bench_etc / "broker.url")
        shutil.copy(self.out / "secrets" / "ca.pem", self.bench_etc / "ca.pem")
        self.station_toml.write_text(
            f'station = "{BENCH}"\nsite = "{SITE}"\ndata_dir = "{self.bench_data}"\n'
            f'mqtt_url_file = "{self.bench_etc}/broker.url"\n'
            f'scanner = "serial://{os.ttyname(self._slave)}?baud=9600&terminator=cr"\n'
            f'printer = "file://{self.bench_data}/printed"\n'
            f'kiosk_listen = "127.0.0.1:{free_port()}"\n'
        )

    def start_central(self) -> None:
        log = (self.root / "central.log").open("ab")
        proc = subprocess.Popen(
            [*PACKLINE, "central", "serve", "--config", str(self.central_toml)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PACKLINE_LOG_LEVEL": "DEBUG"},
        )
        self.procs.append(proc)

        def healthy() -> bool:
            assert proc.poll() is None, (self.root / "central.log").read_text()[-2000:]
            try:
                url = f"http://127.0.0.1:{self.http}/healthz"
                with urllib.request.urlopen(url, timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_for(healthy, what="central serving", timeout=60)

    def start_bench(self) -> None:
        log = (self.root / "bench.log").open("ab")
        self.bench = subprocess.Popen(
            [*PACKLINE, "edge", "run", "--config", str(self.station_toml)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PACKLINE_LOG_LEVEL": "DEBUG", "PACKLINE_RESEND_AFTER": "1"},
        )
        self.procs.append(self.bench)

    def bench_log(self) -> str:
        return (self.root / "bench.log").read_text(errors="replace")

    def central_log(self) -> str:
        return (self.root / "central.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc, timeout=15)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_a_scan_reaches_central_over_tls_and_no_password_is_ever_shown(site: Site) -> None:
    site.configure()
    secrets = {name: password(site.out, name) for name in ("central", BENCH, "ops")}
    broker = ConfiguredBroker(out=site.out, port=site.port).start()
    try:
        orders = site.root / "orders.json"
        sample = sample_orders(2, prefix="SEC")
        orders.write_text(json.dumps(sample, ensure_ascii=False))
        done = run_packline(
            "central", "import-orders", str(orders), "--config", str(site.central_toml)
        )
        assert done.returncode == 0, done.stderr
        site.start_central()

        # A wrong password first: one clear line, the password in it nowhere.
        url_file = site.bench_etc / "broker.url"
        right = url_file.read_text()
        url_file.write_text(with_password(right.strip(), "wrong-password-123") + "\n")
        site.start_bench()
        refused = (
            "the broker refused the connection: Not authorized "
            f"(mqtts://{BENCH}@127.0.0.1:{site.port})"
        )
        wait_for(lambda: refused in site.bench_log(), what="the refusal in the bench's log")
        assert site.bench is not None
        stop_process(site.bench, timeout=15)
        assert "wrong-password-123" not in site.bench_log()

        url_file.write_text(right)
        site.start_bench()
        db = site.bench_data / f"{BENCH}.sqlite"
        wait_for(
            lambda: query(db, "SELECT COUNT(*) FROM orders") == [(2,)],
            what="orders downlinked over TLS",
        )
        order_no = sample[0]["order_no"]
        wait_for(lambda: SCANNER_READY in site.bench_log(), what="the bench's scanner")
        for code in (Station.BADGE, *packing_scans(sample[0])):
            os.write(site.master, code.encode() + b"\r")
        rows = wait_for(
            lambda: query(site.db, "SELECT station FROM shipments WHERE order_no = ?", order_no),
            what="the shipment at central",
        )
        assert rows == [(BENCH,)]
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM outbox") == [(0,)], what="the ack")

        status = run_packline("edge", "status", "--config", str(site.station_toml))
        assert status.returncode == 0, status.stderr
        assert (
            f"broker:   mqtts://{BENCH}@127.0.0.1:{site.port} (from {url_file})"
            in status.stdout.splitlines()
        )

        # The last will passes the ACL: killed, the bench shows offline at central.
        assert site.bench is not None
        site.bench.send_signal(signal.SIGKILL)
        site.bench.wait()
        wait_for(
            lambda: (
                query(site.db, "SELECT online FROM stations WHERE station = ?", BENCH) == [(0,)]
            ),
            what="the bench's last will at central",
            timeout=60,
        )
    finally:
        broker.stop()
    logs = site.bench_log() + site.central_log() + status.stdout + status.stderr
    assert "DEBUG" in logs  # the most talkative level was on
    for name, secret in secrets.items():
        assert secret not in logs, f"{name}'s password printed"


def test_central_with_a_wrong_password_stops_in_one_line_without_it(site: Site) -> None:
    site.configure()
    url_file = site.out / "secrets" / "central.url"
    url_file.write_text(with_password(url_file.read_text().strip(), "wrong-password-456") + "\n")
    broker = ConfiguredBroker(out=site.out, port=site.port).start()
    try:
        done = run_packline("central", "serve", "--config", str(site.central_toml))
    finally:
        broker.stop()
    assert done.returncode == 2
    last = done.stderr.splitlines()[-1]
    assert last == (
        f"packline: error: the MQTT broker at mqtts://central@127.0.0.1:{site.port} refused: "
        "the broker refused the connection: Not authorized"
    )
    assert "wrong-password-456" not in done.stderr + done.stdout
