"""Run a private Mosquitto broker on a free local port.

Used by ``packline demo`` and by the tests: each gets its own broker process, config
and persistence directory, and stops only the process it started (by pid).
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["MosquittoBroker", "find_mosquitto", "free_port", "stop_process"]

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(proc: subprocess.Popen[bytes] | None, *, timeout: float = 10.0) -> None:
    """SIGTERM a process we started, SIGKILL it after ``timeout`` s, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def find_mosquitto() -> str:
    """Path of the ``mosquitto`` binary (Debian puts it in /usr/sbin)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("mosquitto is not installed (run scripts/system-deps.sh)")
    return found


class MosquittoBroker:
    """A Mosquitto process on ``127.0.0.1:port`` with persistence in ``workdir``.

    ``start()`` waits until the port accepts connections; ``stop()`` terminates the
    process (SIGTERM, so it saves its persistence file) and ``kill()`` SIGKILLs it, as
    a crash would. The same port and directory are reused on restart.
    """

    def __init__(self, *, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "mosquitto.conf"
        self.logfile = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        self.config.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.workdir}/",
                    "autosave_interval 1",
                    "max_queued_messages 100000",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "",
                ]
            )
        )

    def start(self, *, timeout: float = 10.0) -> MosquittoBroker:
        """Start the broker and wait until it accepts TCP connections."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        self._write_config()
        with self.logfile.open("ab") as logfh:
            self.proc = subprocess.Popen(
                [find_mosquitto(), "-c", str(self.config)],
                stdout=logfh,
                stderr=logfh,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.proc.returncode}: "
                    f"{self.logfile.read_text(errors='replace')[-500:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    log.info("mosquitto pid %s listening on %s", self.proc.pid, self.url)
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        """Terminate the broker gracefully (it saves its persistence file)."""
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash or power cut would."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
