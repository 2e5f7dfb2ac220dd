"""Pseudo-terminals standing in for serial scanners, behind a symlink the test controls."""

from __future__ import annotations

import os
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.scanners.base import ScannerState

WAIT = 20.0
"""Generous upper bound for waits on a shared, noisy machine; never a speed limit."""


class PtyDevice:
    """A serial 'device' at a stable path: a symlink re-pointed at a fresh pty on replug."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None
        self.plug()

    def plug(self) -> None:
        """Create a new pty and point the link at it (like a scanner re-enumerating)."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master, self.slave = master, slave
        tmp = self.link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)

    def unplug(self) -> None:
        """Close both ends: a reader of the slave now gets EIO, as on a real unplug."""
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def write(self, data: bytes) -> None:
        assert self.master is not None
        os.write(self.master, data)

    @property
    def url_path(self) -> str:
        return str(self.link)


@pytest.fixture
def pty_device(tmp_path: Path) -> Iterator[PtyDevice]:
    device = PtyDevice(tmp_path / "ttyACM-scanner")
    try:
        yield device
    finally:
        device.unplug()


class StateRecorder:
    """Collects state changes from the reading thread; lets the test wait for one."""

    def __init__(self) -> None:
        self.changes: list[tuple[ScannerState, str]] = []
        self._cond = threading.Condition()

    def __call__(self, state: ScannerState, detail: str) -> None:
        with self._cond:
            self.changes.append((state, detail))
            self._cond.notify_all()

    @property
    def states(self) -> list[ScannerState]:
        with self._cond:
            return [s for s, _ in self.changes]

    def wait_for(self, state: ScannerState, *, count: int = 1, timeout: float = WAIT) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.states.count(state) >= count, timeout)
        assert ok, f"never reached {state} x{count}; saw {self.states}"


@pytest.fixture
def states() -> StateRecorder:
    return StateRecorder()


def _wait_until_blocked(thread: threading.Thread, *, on: str, timeout: float = WAIT) -> None:
    """Wait until ``thread`` sits on a source line containing ``on`` (e.g. its select).

    Lets a test close a scanner while a read is *really* blocked, instead of hoping a
    sleep was long enough on a busy machine.
    """
    import linecache
    import sys
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident or -1)
        while frame is not None:
            if on in linecache.getline(frame.f_code.co_filename, frame.f_lineno):
                return
            frame = frame.f_back
        time.sleep(0.005)
    raise AssertionError(f"thread never blocked on {on!r}")


@pytest.fixture
def wait_until_blocked() -> object:
    return _wait_until_blocked
