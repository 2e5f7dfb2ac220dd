"""When something happened at a bench, in central's time.

A station's wall clock may be wrong (a Pi has no real-time clock). Every event carries
the station's wall clock (``at_wall``), its monotonic clock (``at_mono``) and the boot
that clock belongs to (``boot_id``). Deadlines are judged by when a thing happened at
the bench, not by when central heard of it, and they ask this module only.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection

__all__ = ["event_time"]


def event_time(
    conn: Connection, *, station: str, boot_id: str, at_wall: float, at_mono: float
) -> dt.datetime:
    """The time an event of ``station`` happened, as a timezone-aware UTC datetime.

    For now this is the station's own wall clock (``at_wall``). Clock-skew correction
    plugs in here: with a known offset for ``(station, boot_id)`` it returns the
    corrected time, and every deadline judgement follows. ``conn`` is the transaction
    the caller is in, so a correction stored in it is seen.
    """
    del conn, station, boot_id, at_mono  # used once skew correction is known
    try:
        return dt.datetime.fromtimestamp(at_wall, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return dt.datetime.fromtimestamp(0, dt.UTC)
