"""The one way a test waits for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(
    check: Callable[[], T], *, what: str, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail naming
    ``what`` (and the last value seen) after ``timeout`` seconds.

    The timeout is a bound on a wait for an event, not a speed limit: it only ends a
    test that would otherwise hang.
    """
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = check()
    return last
