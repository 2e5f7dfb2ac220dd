"""Station health at central (A2): what changed, and a backlog that is too old.

Every online status updates the station's row; :func:`record_changes` keeps a row in
``station_history`` for each reported field that changed (printer state, labels left,
scanner, version, online...), which the equipment ledger and the reports read.
:func:`check_backlog` raises an alert through the watch engine while a station is
online and still holds events older than ``backlog_alert_after`` — records that should
have reached central and did not (central refusing them, a broker ACL, an event too
big), and clears it when they arrive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from central.alerting import clear_condition, raise_condition
from central.db import station_history

__all__ = [
    "DEFAULT_BACKLOG_ALERT_AFTER",
    "TRACKED",
    "backlog_key",
    "backlog_words",
    "check_backlog",
    "duration_words",
    "record_changes",
]

#: A station online with an unsent event older than this (seconds) raises an alert.
DEFAULT_BACKLOG_ALERT_AFTER = 15 * 60.0

#: The reported fields whose changes are kept in ``station_history``.
TRACKED: tuple[str, ...] = (
    "online",
    "version",
    "instance_id",
    "printer",
    "printer_detail",
    "printer_model",
    "printer_serial",
    "label_size",
    "labels_left",
    "scanner",
    "scanner_detail",
    "scanner_device",
)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:255]


def record_changes(
    conn: Connection,
    *,
    station: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    now: dt.datetime,
) -> int:
    """Keep a history row for each field of :data:`TRACKED` that differs; returns how many.

    A field absent from ``after`` did not change (an offline status reports only
    ``online``).
    """
    rows = [
        {
            "station": station,
            "at": now,
            "field": field,
            "old_value": _text(before.get(field)),
            "new_value": _text(after[field]),
        }
        for field in TRACKED
        if field in after and _text(before.get(field)) != _text(after[field])
    ]
    if rows:
        conn.execute(station_history.insert(), rows)
    return len(rows)


def duration_words(seconds: float) -> str:
    """``47 min``, ``3 h 5 min``, ``40 s``: an age for people."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days {hours % 24} h"


def backlog_words(count: int, oldest_age_s: float | None) -> str:
    """``backlog 312 events, oldest 47 min`` (or ``no backlog``)."""
    if count <= 0:
        return "no backlog"
    noun = "event" if count == 1 else "events"
    age = "" if oldest_age_s is None else f", oldest {duration_words(oldest_age_s)}"
    return f"backlog {count:,} {noun}{age}"


def backlog_key(station: str) -> str:
    """The dedup key of the alert for ``station``'s old backlog."""
    return f"station-backlog:{station}"


def check_backlog(
    conn: Connection,
    *,
    station: str,
    backlog: int,
    oldest_age_s: float | None,
    was_age_s: float | None,
    alert_after: float,
    now: dt.datetime,
) -> bool:
    """Raise the backlog alert while the online station's oldest unsent event is older
    than ``alert_after`` seconds; clear it when that is no longer so. True while raised."""
    old = backlog > 0 and oldest_age_s is not None and oldest_age_s > alert_after
    if old:
        assert oldest_age_s is not None
        raise_condition(
            conn,
            key=backlog_key(station),
            dept="operations",
            severity="general",
            message=(
                f"station {station} is online but has not delivered its records: "
                f"{backlog_words(backlog, oldest_age_s)} (see `packline central "
                "dead-letters` and the station's log)"
            ),
            now=now,
        )
    elif was_age_s is not None and was_age_s > alert_after:
        clear_condition(conn, key=backlog_key(station), now=now)
    return old
