"""``packline demo``: broker, central, web page and three simulated stations.

Everything runs as it would in a warehouse, only on one machine: a private Mosquitto,
``packline central serve`` and one ``packline edge run`` per station, each station
reading a pseudo-terminal as its serial scanner and printing to a ``file://`` virtual
printer. The demo types into each scanner what a packer scans: their badge, an order,
each of its items (now and then a wrong one, acknowledged with ``CMD-OK``, or a
parcel that is not an order).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import typer

from packline.devbroker import MosquittoBroker, free_port, stop_process
from packline.logs import setup_logging
from packline.samples import packing_scans, sample_orders
from sync.errors import UserError
from sync.mqtt import hide_password, parse_mqtt_url

__all__ = ["demo"]

log = logging.getLogger("packline.demo")


class _Station:
    """An edge agent subprocess and the pty its scanner reads."""

    def __init__(self, *, name: str, workdir: Path, mqtt_url: str, site: str) -> None:
        self.name = name
        # Each bench's packer's screen on a port of its own (the default 8090 is one).
        self.kiosk = f"127.0.0.1:{free_port()}"
        self.master, slave = os.openpty()
        self.tty = os.ttyname(slave)
        self._slave = slave  # keep open so the pty survives until the agent opens it
        data = workdir / name
        data.mkdir(parents=True, exist_ok=True)
        self.printed = data / "printed"
        self.db = data / f"{name}.sqlite"
        self.badge = f"OP-{name.rsplit('-', 1)[-1]}00"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "packline",
                "edge",
                "run",
                "--station",
                name,
                "--mqtt-url",
                mqtt_url,
                "--scanner",
                f"serial://{self.tty}?baud=9600&terminator=cr",
                "--printer",
                # A 500-label roll, so the page shows label stock going down.
                f"file://{self.printed}?roll_labels=500",
                "--data-dir",
                str(data),
            ],
            env={**os.environ, "PACKLINE_SITE": site, "PACKLINE_KIOSK_LISTEN": self.kiosk},
            stdin=subprocess.DEVNULL,
        )

    @property
    def screen(self) -> str:
        """Where this bench's packer's screen is served."""
        return f"http://{self.kiosk}/"

    def scan(self, code: str) -> None:
        os.write(self.master, code.encode() + b"\r")

    def packing(self) -> bool:
        """Whether the bench has an order in progress (from its store, read-only)."""
        import sqlite3

        if not self.db.exists():
            return False
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            try:
                row = conn.execute("SELECT state FROM bench_state").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return False
        return bool(row) and json.loads(row[0]).get("order") is not None

    def stop(self) -> None:
        stop_process(self.proc)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _turn(bench: _Station, order: dict[str, object], index: int) -> list[str]:
    """What the packer at ``bench`` scans for one order."""
    # The badge again is harmless ("already logged in") and logs in a bench that
    # missed it while starting; an order left half packed (scans typed before the
    # bench was reading are lost) is put aside first.
    scans = [bench.badge]
    if bench.packing():
        scans.append("CMD-CANCEL")
    if index % 23 == 7:
        scans.append(f"NOT-AN-ORDER-{index}")
    body = packing_scans(order)
    if index % 17 == 5:
        body[2:2] = ["6900000000000", "CMD-OK"]
    return scans + body


def _wait_http(url: str, *, proc: subprocess.Popen[bytes], timeout: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"central exited with code {proc.returncode}; see the log above")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                return  # serving, and waiting for its broker: it says so in its log
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)
    raise UserError(f"central did not answer on {url} within {timeout:.0f}s")


def _check_port_free(port: int) -> None:
    # Central would find out only after the broker and the import: say it first.
    try:
        with socket.create_server(("127.0.0.1", port)):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot serve the status page on 127.0.0.1:{port}: "
            f"{os.strerror(exc.errno) if exc.errno else exc}; choose another --http-port"
        ) from None


def _demo_login(db_url: str, root: Path) -> tuple[str, Path]:
    """An ``admin`` with a new password, and an API token in ``root/api-token``."""
    import secrets

    from central.db import open_db
    from central.users import UserRefused, add_user, issue_token, set_password

    password = secrets.token_urlsafe(9)
    engine = open_db(db_url)
    try:
        try:
            add_user(engine, "admin", role="admin", password=password)
        except UserRefused:  # a --workdir used before
            set_password(engine, "admin", password)
        token = issue_token(engine, "admin")
    finally:
        engine.dispose()
    token_file = root / "api-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return password, token_file


def demo(
    http_port: int = typer.Option(8080, min=1, max=65535, help="Port of the web status page."),
    mqtt_port: int | None = typer.Option(
        None, min=1, max=65535, help="Port for the demo's own broker (default: a free one)."
    ),
    mqtt_url: str | None = typer.Option(
        None, metavar="URL", help="Use this broker instead of starting one."
    ),
    stations: int = typer.Option(3, min=1, max=20, help="How many simulated stations."),
    orders: int = typer.Option(600, min=1, help="How many sample orders to import."),
    interval: float = typer.Option(3.0, min=0.05, help="Seconds between scans per station."),
    workdir: Path | None = typer.Option(
        None, metavar="DIR", help="Where state goes (default: a temp dir)."
    ),
    duration: float | None = typer.Option(None, help="Stop after this many seconds."),
) -> None:
    """Run broker, central, web page and simulated stations until Ctrl-C."""
    if mqtt_url is not None:
        try:
            parse_mqtt_url(mqtt_url)
        except ValueError as exc:
            raise UserError(f"--mqtt-url: {exc}") from None
    _check_port_free(http_port)
    setup_logging()
    root = workdir or Path(tempfile.mkdtemp(prefix="packline-demo-"))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the demo's folder {root}: {exc.strerror or exc}; "
            "give --workdir a folder this user can write to"
        ) from None
    site = "demo"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    broker: MosquittoBroker | None = None
    central: subprocess.Popen[bytes] | None = None
    benches: list[_Station] = []
    try:
        if mqtt_url is None:
            broker = MosquittoBroker(workdir=root / "mosquitto", port=mqtt_port).start()
            mqtt_url = broker.url
        db_url = f"sqlite:///{root / 'central.db'}"
        order_file = root / "orders.json"
        sample = sample_orders(orders)
        order_file.write_text(json.dumps(sample, ensure_ascii=False, indent=1))
        common = ["--db-url", db_url]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "packline",
                "central",
                "import-orders",
                str(order_file),
                *common,
            ],
            check=True,
        )
        password, token_file = _demo_login(db_url, root)
        central = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "packline",
                "central",
                "serve",
                *common,
                "--mqtt-url",
                mqtt_url,
                "--site",
                site,
                "--http-port",
                str(http_port),
            ],
            stdin=subprocess.DEVNULL,
        )
        page = f"http://127.0.0.1:{http_port}/"
        _wait_http(page + "healthz", proc=central, timeout=60)
        for i in range(stations):
            benches.append(
                _Station(name=f"bench-{i + 1:02d}", workdir=root, mqtt_url=mqtt_url, site=site)
            )
        screens = "".join(f"  {b.name} packer's screen {b.screen}\n" for b in benches)
        print(
            f"\npackline demo is running: status page {page} "
            f"(log in as admin, password {password}; an API token is in {token_file})\n"
            f"{screens}"
            f"broker {hide_password(mqtt_url)}, state in {root}. Ctrl-C stops everything.\n",
            flush=True,
        )
        # Station i packs orders i, i+n, i+2n...; now and then a packer scans a wrong
        # item (an alarm, then CMD-OK) or a parcel that is not an order (a refusal).
        started = time.monotonic()
        turn = 0
        while not stop.is_set():
            for i, bench in enumerate(benches):
                index = turn * len(benches) + i
                if index >= len(sample):
                    continue
                for code in _turn(bench, sample[index], index):
                    bench.scan(code)
            turn += 1
            if duration is not None and time.monotonic() - started > duration:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    except subprocess.CalledProcessError as exc:
        raise UserError(f"importing the sample orders failed (exit {exc.returncode})") from None
    finally:
        print("\nstopping the demo...", file=sys.stderr, flush=True)
        for bench in benches:
            bench.stop()
        stop_process(central, timeout=15)
        if broker is not None:
            broker.stop()
