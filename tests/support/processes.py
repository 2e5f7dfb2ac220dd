"""Real processes for end-to-end tests: central and edge agents as subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from packline.devbroker import free_port, stop_process
from packline.samples import packing_scans
from tests.support.waiting import wait_for

#: What the scanner driver logs once the agent reads its scanner.
SCANNER_READY = "drivers.scanners.hotplug: scanner ready"

PACKLINE = [sys.executable, "-m", "packline"]


def admin_token(db_url: str, name: str = "test-admin") -> str:
    """An API token of an admin of the central database at ``db_url`` (made on first use)."""
    from central.db import open_db
    from central.users import UserRefused, add_user, issue_token

    engine = open_db(db_url)
    try:
        with contextlib.suppress(UserRefused):
            add_user(engine, name, role="admin", password="test-admin-password")
        return issue_token(engine, name)
    finally:
        engine.dispose()


def query(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Read a SQLite file another process writes (WAL lets us read alongside)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        conn.close()


class Central:
    """``packline central serve`` on a free port, with its SQLite file in ``workdir``."""

    def __init__(self, *, workdir: Path, mqtt_url: str, site: str) -> None:
        self.workdir = workdir
        self.db = workdir / "central.db"
        self.db_url = f"sqlite:///{self.db}"
        self.mqtt_url = mqtt_url
        self.site = site
        self.port = free_port()
        self.log = workdir / "central.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""  # an admin's API token, made at the first start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _request(self, path: str) -> urllib.request.Request:
        return urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}
        )

    def start(self) -> Central:
        if not self.token:
            self.token = admin_token(self.db_url)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *PACKLINE,
                    "central",
                    "serve",
                    "--db-url",
                    self.db_url,
                    "--mqtt-url",
                    self.mqtt_url,
                    "--site",
                    self.site,
                    "--http-port",
                    str(self.port),
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        wait_for(self._healthy, what=f"central on {self.url}", timeout=60)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"central exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self._request(path), timeout=10) as resp:
            return json.loads(resp.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self._request(path), timeout=10) as resp:
            return str(resp.read().decode("utf-8"))

    def load_orders(self, orders: list[dict[str, Any]]) -> None:
        """Import ``orders`` with the real ``central import-orders``, as an order file."""
        order_file = self.workdir / "orders.json"
        order_file.write_text(json.dumps(orders, ensure_ascii=False))
        done = self.import_orders(order_file)
        assert done.returncode == 0, done.stderr

    def import_orders(self, path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PACKLINE, "central", "import-orders", str(path), "--db-url", self.db_url],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.proc = None


class Station:
    """``packline edge run`` reading a pty as its serial scanner, printing to files.

    ``settings`` are written to the station's ``station.toml`` (docs/station.md), e.g.
    ``{"confirm": "scan"}``; ``printer`` replaces the file printer's URL. The packer's
    screen is served on a free port (``kiosk_url``) unless ``kiosk_listen`` is given.
    """

    BADGE = "OP-0042"

    def __init__(
        self,
        *,
        workdir: Path,
        name: str,
        mqtt_url: str,
        site: str,
        printer: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.data = workdir / name
        self.data.mkdir(parents=True, exist_ok=True)
        self.printed = self.data / "printed"
        self.db = self.data / f"{name}.sqlite"
        self.log = self.data / "edge.log"
        self.master, self._slave = os.openpty()
        self.tty = os.ttyname(self._slave)
        self.mqtt_url = mqtt_url
        self.site = site
        self.printer = printer or f"file://{self.printed}"
        self.config = self.data / "station.toml"
        settings = {"kiosk_listen": f"127.0.0.1:{free_port()}", **(settings or {})}
        self.kiosk_listen = str(settings["kiosk_listen"])
        lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_from = 0

    def start(self) -> Station:
        self.starts += 1
        # Where this start's log begins (a start killed before it was ready leaves no
        # ready line: lines are not counted across starts).
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *PACKLINE,
                    "edge",
                    "run",
                    "--config",
                    str(self.config),
                    "--station",
                    self.name,
                    "--mqtt-url",
                    self.mqtt_url,
                    "--scanner",
                    f"serial://{self.tty}?baud=9600&terminator=cr",
                    "--printer",
                    self.printer,
                    "--data-dir",
                    str(self.data),
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PACKLINE_SITE": self.site, "PACKLINE_RESEND_AFTER": "1"},
            )
        return self

    @property
    def kiosk_url(self) -> str:
        """The packer's screen of this station, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.kiosk_listen}"

    def kiosk_get(self, path: str) -> Any:
        """GET ``path`` from the kiosk as JSON."""
        with urllib.request.urlopen(self.kiosk_url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def kiosk_ready(self, *, timeout: float = 60.0) -> Station:
        """Wait until this start of the agent serves its screen."""

        def serving() -> bool:
            if not self.alive():
                raise AssertionError(f"the agent exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.kiosk_url + "/healthz", timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_for(serving, what=f"{self.name}'s screen on {self.kiosk_url}", timeout=timeout)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def scan(self, code: str | bytes) -> None:
        data = code if isinstance(code, bytes) else code.encode()
        os.write(self.master, data + b"\r")

    def ready(self, *, timeout: float = 60.0) -> Station:
        """Wait until this start of the agent reads its scanner (scans typed before are
        lost at the pty, as with a real scanner; docs/scanners.md)."""

        def reading() -> bool:
            if not self.alive():
                raise AssertionError(f"the agent exited: {self.log.read_text()[-2000:]}")
            with self.log.open("rb") as f:
                f.seek(self.log_from)
                return SCANNER_READY in f.read().decode(errors="replace")

        wait_for(reading, what=f"{self.name} to read its scanner", timeout=timeout)
        return self

    def told(self) -> int:
        """How many times the bench told the packer something (its feedback lines)."""
        text = self.log.read_text(errors="replace")
        return sum(text.count(f"packline.bench: {w}") for w in ("OK ", "REFUSED ", "ALARM "))

    def scan_and_wait(self, code: str | bytes, *, timeout: float = 30.0) -> None:
        """Scan and wait for the bench's answer to it."""
        before = self.told()
        self.scan(code)
        wait_for(
            lambda: self.told() > before, what=f"the bench's answer to {code!r}", timeout=timeout
        )

    def login(self, badge: str = BADGE) -> None:
        """Scan a packer's badge and wait for the greeting."""
        self.scan_and_wait(badge)

    def pack(self, order: dict[str, Any], *, wait: bool = True) -> None:
        """Scan an order and its items as a packer does (packline.samples.packing_scans)."""
        for code in packing_scans(order):
            if wait:
                self.scan_and_wait(code)
            else:
                self.scan(code)

    def waybills(self) -> list[Path]:
        """The waybill images the file printer wrote (not packing lists)."""
        return sorted(p for p in self.printed.glob("*.png") if "-waybill-" in p.name)

    def orders(self) -> int:
        rows = query(self.db, "SELECT COUNT(*) FROM orders")
        return int(rows[0][0]) if rows else 0

    def backlog(self) -> int:
        rows = query(self.db, "SELECT COUNT(*) FROM outbox")
        return int(rows[0][0]) if rows else -1

    def events(self, type: str) -> list[tuple[Any, ...]]:
        return query(self.db, "SELECT seq, event_id, payload FROM events WHERE type = ?", type)

    def outbox_types(self) -> list[str]:
        rows = query(
            self.db, "SELECT e.type FROM outbox o JOIN events e ON e.seq = o.seq ORDER BY o.seq"
        )
        return [r[0] for r in rows]

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the agent, as a power cut or a crash would end it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def close(self) -> None:
        self.stop()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
