"""Injectable time for the station: wall clock, monotonic clock and boot id.

A Pi may boot with no real-time clock, so every event records all three and central
corrects skew when the station reconnects.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Protocol

__all__ = ["Clock", "SystemClock", "current_boot_id"]

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def current_boot_id() -> str:
    """The kernel's boot id; a random one per process where the kernel has none."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return f"proc-{uuid.uuid4()}"


class Clock(Protocol):
    """What a station asks when it needs the time."""

    boot_id: str

    def wall(self) -> float:
        """Seconds since the epoch by the (possibly skewed) wall clock."""

    def mono(self) -> float:
        """Seconds on the monotonic clock of this boot."""


class SystemClock:
    """The real clocks of this machine."""

    def __init__(self) -> None:
        self.boot_id = current_boot_id()

    def wall(self) -> float:
        """``time.time()``."""
        return time.time()

    def mono(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()
