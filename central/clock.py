"""The clock central's watch reads: the real one, or one a test moves by hand.

Every timer (deadlines, escalation, repeats, station checks) is judged against the
``now`` a :class:`Clock` gives, never against ``datetime.now()`` directly, so tests
travel in time instead of sleeping, and ``packline central tick --now`` replays an
instant.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Something that says what time it is (timezone-aware, UTC)."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        """The current time in UTC."""
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that stands still until it is set or advanced (tests, replays)."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"a clock needs a timezone-aware time, got {start!r}")
        self._now = start.astimezone(dt.UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """The time it was set to."""
        with self._lock:
            return self._now

    def set(self, moment: dt.datetime) -> None:
        """Jump to ``moment`` (forwards or backwards)."""
        if moment.tzinfo is None:
            raise ValueError(f"a clock needs a timezone-aware time, got {moment!r}")
        with self._lock:
            self._now = moment.astimezone(dt.UTC)

    def advance(self, by: dt.timedelta) -> dt.datetime:
        """Move on by ``by`` and return the new time."""
        with self._lock:
            self._now += by
            return self._now
