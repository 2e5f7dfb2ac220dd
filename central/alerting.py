"""Raising and clearing the fleet's condition alerts through the central watch engine.

The backlog and two-benches-one-name checks say "this condition holds" or "no longer
holds" here, in the caller's transaction; the watch engine
(``central.watch.conditions``) deduplicates, routes, repeats and escalates them like
its other alerts (A1). In a build without the watch engine the condition is logged
instead, once per change, so it is never silent.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
from types import ModuleType

from sqlalchemy.engine import Connection

__all__ = ["clear_condition", "raise_condition"]

log = logging.getLogger(__name__)

_said: dict[str, str] = {}
_said_lock = threading.Lock()


def _engine() -> ModuleType | None:
    try:
        return importlib.import_module("central.watch.conditions")
    except ModuleNotFoundError:
        return None


def raise_condition(
    conn: Connection,
    *,
    key: str,
    dept: str,
    severity: str,
    message: str,
    now: dt.datetime,
) -> None:
    """Open (or keep open) the alert ``key``; repeating it with the same key is one alert."""
    conditions = _engine()
    if conditions is not None:
        conditions.raise_condition(
            conn, key=key, dept=dept, severity=severity, message=message, now=now
        )
        return
    with _said_lock:
        # Deduplicated by key, as the watch engine does: the words may change (a
        # backlog grows older) while it is one condition.
        if key in _said:
            return
        _said[key] = message
    log.warning("ALERT %s (%s, %s): %s", key, dept, severity, message)


def clear_condition(conn: Connection, *, key: str, now: dt.datetime) -> None:
    """Close the alert ``key`` when it is open; nothing when it is not."""
    conditions = _engine()
    if conditions is not None:
        conditions.clear_condition(conn, key=key, now=now)
        return
    with _said_lock:
        if _said.pop(key, None) is None:
            return
    log.info("ALERT %s cleared", key)
