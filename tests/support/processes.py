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
from tests.support.waiting import wait_for

PACKLINE = [sys.executable, "-m", "packline"]


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Central:
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
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return str(resp.read().decode("utf-8"))

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
    """``packline edge run`` reading a pty as its serial scanner, printing to files."""

    def __init__(self, *, workdir: Path, name: str, mqtt_url: str, site: str) -> None:
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
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Station:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *PACKLINE,
                    "edge",
                    "run",
                    "--station",
                    self.name,
                    "--mqtt-url",
                    self.mqtt_url,
                    "--scanner",
                    f"serial://{self.tty}?baud=9600&terminator=cr",
                    "--printer",
                    f"file://{self.printed}",
                    "--data-dir",
                    str(self.data),
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PACKLINE_SITE": self.site, "PACKLINE_RESEND_AFTER": "1"},
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def scan(self, code: str | bytes) -> None:
        data = code if isinstance(code, bytes) else code.encode()
        os.write(self.master, data + b"\r")

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

    def close(self) -> None:
        self.stop()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
