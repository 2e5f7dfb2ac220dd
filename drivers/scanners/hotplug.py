"""Reopen-on-unplug machinery shared by the serial and evdev scanners.

A device that vanishes (unplugged cable, ENODEV, EIO on a closed pty) is a state,
``gone``, not an exception: the reader closes what is left of it and retries opening
the same path with jittered exponential backoff until it comes back, reporting each
state change. Scans already complete when the device vanished are still delivered.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import dataclasses
import logging
import os
import random
import select
import threading
import time
from collections.abc import Callable, Iterable

from drivers.errors import ScannerError, ScannerGone
from drivers.scanners.base import (
    Scan,
    Scanner,
    ScannerState,
    StateListener,
    UnreadableListener,
    UnreadableScan,
)

__all__ = ["Backoff", "Clock", "HotplugScanner"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Clock:
    """Where a scanner asks the time; injectable so tests and replays control it."""

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic


class Backoff:
    """Jittered exponential delays between reopen attempts.

    The n-th delay is drawn uniformly from [d/2, d] with d = min(maximum, minimum·2ⁿ):
    never zero (no busy loop against a dead port), and jittered so that several
    scanners on one hub do not retry in lock-step after a power blip.
    """

    def __init__(
        self,
        *,
        minimum: float = 0.1,
        maximum: float = 2.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError("backoff needs 0 < minimum <= maximum")
        self.minimum = minimum
        self.maximum = maximum
        self._rng = rng
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call grows the next one."""
        ceiling = min(self.maximum, self.minimum * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        """Start over from the minimum (after a successful open)."""
        self._attempt = 0


class HotplugScanner(Scanner):
    """A scanner on a file descriptor that may vanish; subclasses open and decode.

    Thread model: one thread calls :meth:`read`; any thread may call :meth:`close`,
    which wakes a blocked ``read`` through a pipe. Only the reading thread touches the
    device while a read is under way, so a close never races a device read.
    """

    def __init__(
        self,
        *,
        url: str,
        source: str,
        on_state: StateListener | None = None,
        on_unreadable: UnreadableListener | None = None,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.url = url
        self.source = source
        self._on_state = on_state
        self._on_unreadable = on_unreadable
        self._backoff = backoff or Backoff()
        self.clock = clock or Clock()
        self._state = ScannerState.OPENING
        self._closed = False
        self._fd: int | None = None
        self._next_attempt = 0.0
        self._pending: collections.deque[Scan] = collections.deque()
        # Reentrant so a listener may close the scanner from the reading thread.
        self._io_lock = threading.RLock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._set_state(ScannerState.OPENING, source)
        with self._io_lock:
            self._try_open()

    # -- what a backend provides -------------------------------------------------------

    @abc.abstractmethod
    def _open_device(self) -> int:
        """Open the device and return a file descriptor to wait on.

        Raise ``OSError`` or :class:`ScannerError` when it is not there (yet).
        """

    @abc.abstractmethod
    def _read_device(self) -> Iterable[Scan | UnreadableScan]:
        """Read what the device has (it is readable) and return what completed.

        Raise ``OSError`` when the device vanished; complete scans decoded before
        the error must have been returned by an earlier call or be lost.
        """

    @abc.abstractmethod
    def _release_device(self) -> None:
        """Close the device; must not raise. Partial input is discarded."""

    # -- the Scanner API ----------------------------------------------------------------

    @property
    def state(self) -> ScannerState:
        """The scanner's current connection state."""
        return self._state

    def read(self, timeout: float | None = None) -> Scan | None:
        """Return the next complete scan, or None on timeout or when closed meanwhile.

        Raises :class:`ScannerGone` when called on a closed scanner.
        """
        with self._io_lock:
            if self._closed:
                raise ScannerGone(f"scanner {self.source} is closed")
            deadline = None if timeout is None else self.clock.mono() + timeout
            while True:
                if self._pending:
                    return self._pending.popleft()
                if self._closed:
                    return None
                now = self.clock.mono()
                remaining = None if deadline is None else deadline - now
                if remaining is not None and remaining <= 0:
                    return None
                if self._fd is None:
                    wait = self._next_attempt - now
                    if wait > 0:
                        self._wait_for_wake(wait if remaining is None else min(wait, remaining))
                    else:
                        self._try_open()
                    continue
                ready, _, _ = select.select([self._fd, self._wake_r], [], [], remaining)
                if self._wake_r in ready:
                    self._drain_wake()
                    continue
                if self._fd in ready:
                    self._pump()

    def close(self) -> None:
        """Stop reading and release the device; a blocked :meth:`read` returns None."""
        if self._closed:
            return
        self._closed = True
        # A full pipe means the reader is already being woken.
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        with self._io_lock:
            if self._fd is not None:
                self._fd = None
                self._release_device()
            os.close(self._wake_r)
            os.close(self._wake_w)
        self._set_state(ScannerState.CLOSED, "closed")

    # -- internals ----------------------------------------------------------------------

    def _pump(self) -> None:
        try:
            for item in self._read_device():
                if isinstance(item, Scan):
                    self._pending.append(item)
                else:
                    self._unreadable(item)
        except (OSError, ScannerError) as exc:
            self._lost(exc)

    def _unreadable(self, item: UnreadableScan) -> None:
        log.warning("%s: dropped unreadable scan (%s): %s", self.source, item.reason, item.raw)
        if self._on_unreadable is not None:
            try:
                self._on_unreadable(item)
            except Exception:  # a listener's bug must not stop the scanner
                log.exception("%s: unreadable-scan listener failed", self.source)

    def _try_open(self) -> None:
        try:
            self._fd = self._open_device()
        except (OSError, ScannerError) as exc:
            self._fd = None
            delay = self._backoff.next_delay()
            self._next_attempt = self.clock.mono() + delay
            self._set_state(ScannerState.GONE, f"{self.source}: {_describe(exc)}")
            log.debug("%s: next open attempt in %.2f s", self.source, delay)
            return
        self._backoff.reset()
        self._set_state(ScannerState.READY, self.source)

    def _lost(self, exc: BaseException) -> None:
        self._fd = None
        self._release_device()
        self._next_attempt = self.clock.mono() + self._backoff.next_delay()
        self._set_state(ScannerState.GONE, f"{self.source}: {_describe(exc)}")

    def _wait_for_wake(self, seconds: float) -> None:
        ready, _, _ = select.select([self._wake_r], [], [], seconds)
        if ready:
            self._drain_wake()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 512)

    def _set_state(self, state: ScannerState, detail: str) -> None:
        # GONE is reported once per disappearance, not once per failed reopen.
        if state is self._state and state is not ScannerState.OPENING:
            return
        self._state = state
        level = logging.WARNING if state is ScannerState.GONE else logging.INFO
        log.log(level, "scanner %s: %s", state.value, detail)
        if self._on_state is not None:
            try:
                self._on_state(state, detail)
            except Exception:  # a listener's bug must not stop the scanner
                log.exception("%s: state listener failed", self.source)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} (errno {exc.errno})" if exc.errno else exc.strerror
    return str(exc) or type(exc).__name__
