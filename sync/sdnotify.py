"""systemd's notify protocol, spoken directly: READY, STATUS, STOPPING and a watchdog fed
only while the loops are healthy.

Under a ``Type=notify`` unit systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for
the abstract namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC`` and
``WATCHDOG_PID``. Outside systemd every call here does nothing.

A :class:`Watchdog` asks its probes — one per loop that must keep turning (the station's
scanner loop and uplink, central's ingest session, downlink and tick) — twice per
watchdog interval, and sends ``WATCHDOG=1`` only when every probe answers None. A probe
that answers a reason stops the feeding: systemd restarts the service after
``WatchdogSec``, and the reason goes to the log and to the unit's ``STATUS=``.
:class:`Heartbeat` makes a probe of a loop that beats each round.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

__all__ = [
    "Heartbeat",
    "Probe",
    "Watchdog",
    "notify",
    "ready",
    "stopping",
    "thread_probe",
    "watchdog_interval",
]

log = logging.getLogger(__name__)

#: A probe answers None while its loop is healthy, else why not, in words.
Probe = Callable[[], str | None]


def _address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]
    return address


def notify(message: str) -> bool:
    """Send ``message`` (``READY=1``, ``WATCHDOG=1``...) to systemd; False when not
    under systemd or the socket refuses it (never raises)."""
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.debug("systemd notify %r failed: %s", message, exc)
        return False
    return True


def ready(status: str) -> bool:
    """Tell systemd the service is up, with a status line."""
    return notify(f"READY=1\nSTATUS={status}")


def stopping() -> bool:
    """Tell systemd the service is stopping on purpose."""
    return notify("STOPPING=1")


def watchdog_interval() -> float | None:
    """``WatchdogSec=`` in seconds when systemd expects this process to feed it."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


class Heartbeat:
    """A loop's last round: :meth:`beat` each round; :meth:`probe` is unhealthy when no
    beat came for ``max_age`` seconds."""

    def __init__(self, name: str, *, max_age: float) -> None:
        self.name = name
        self.max_age = max_age
        self._at = time.monotonic()

    def beat(self) -> None:
        """The loop went round."""
        self._at = time.monotonic()

    def age(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - self._at

    def probe(self) -> str | None:
        """None while beating, else how long it has been silent."""
        age = self.age()
        if age > self.max_age:
            return f"{self.name} has not gone round for {age:.0f} s"
        return None


def thread_probe(name: str, thread: Callable[[], threading.Thread | None]) -> Probe:
    """A probe that is unhealthy when the thread ``thread()`` returns has died."""

    def probe() -> str | None:
        current = thread()
        if current is None or not current.is_alive():
            return f"the {name} thread has stopped"
        return None

    return probe


class Watchdog:
    """Feeds systemd's watchdog while every probe is healthy (no-op outside systemd)."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        interval: float | None = None,
        send: Callable[[str], bool] = notify,
    ) -> None:
        self.probes = dict(probes)
        self.interval = interval if interval is not None else watchdog_interval()
        self._send = send
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None

    def problems(self) -> list[str]:
        """What is unhealthy now (a probe that raises counts, with its error)."""
        found = []
        for name, probe in self.probes.items():
            try:
                why = probe()
            except Exception as exc:
                why = f"{name}: the check failed: {exc}"
            if why is not None:
                found.append(why)
        return found

    def check(self) -> bool:
        """One round: feed the watchdog when healthy; True when it was fed."""
        problems = self.problems()
        if not problems:
            if self._failing is not None:
                log.info("healthy again; feeding systemd's watchdog")
                self._send("STATUS=running")
                self._failing = None
            return self._send("WATCHDOG=1")
        words = "; ".join(problems)
        if words != self._failing:
            log.error("unhealthy, systemd's watchdog is no longer fed: %s", words)
            self._send(f"STATUS=unhealthy: {words}")
            self._failing = words
        return False

    def start(self) -> None:
        """Check twice per watchdog interval in a thread (nothing when not expected)."""
        if self.interval is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop feeding (the service is stopping)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self.interval is not None
        every = max(self.interval / 2, 0.05)
        while not self._stop.is_set():
            self.check()
            self._stop.wait(every)
