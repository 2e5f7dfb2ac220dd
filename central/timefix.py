"""Time you can trust (C2): station clocks corrected to true time.

A Pi has no real-time clock: after a power cut it may run hours wrong until NTP
answers, and a bench that is offline never gets NTP. Every event carries the
station's wall clock (``at_wall``, possibly wrong), its monotonic clock (``at_mono``,
right about durations but counted from an unknown start) and the ``boot_id`` that
monotonic clock belongs to.

Central's own clock is the truth. Some messages say when they were sent by the
station's monotonic clock (a status's ``at_mono``, a batch's ``sent_mono``); central
knows when it received them. For each station and boot,

    true time of anything ≈ at_mono + mono_offset,   mono_offset = received − sent_mono

and since delivery only ever adds delay (a broker queue, a central restart), the
smallest offset seen is the best: :func:`note_sample` keeps it. With it, every event
of that boot gets its true time — also events recorded offline before the first
contact, as soon as any message of their boot reaches central. When a better sample
arrives later (the first one came through a queue), :func:`correct_boot` corrects
what was stored and the deadline watch re-judges the orders whose times moved.

An event of a boot that never reached central (recorded offline, then the Pi
rebooted before it got through) cannot be corrected: its claimed ``at_wall`` is the
best there is, and its corrected time stays null.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db import events, shipments, station_boots

__all__ = [
    "DEFAULT_SKEW_TOLERANCE",
    "RECORRECT_ABOVE",
    "BootClock",
    "boot_clocks",
    "correct_boot",
    "corrected_time",
    "event_time",
    "from_epoch",
    "note_sample",
    "shipment_times",
]

log = logging.getLogger(__name__)

#: Claimed and corrected times further apart than this (seconds) are flagged.
DEFAULT_SKEW_TOLERANCE = 60.0
#: A better sample that moves a boot's times by more than this (seconds) corrects
#: what was already stored; smaller gains are noise in the network's delay.
RECORRECT_ABOVE = 0.5


def from_epoch(seconds: float) -> dt.datetime:
    """Seconds since the epoch as a UTC datetime, clamped to what a datetime holds."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return dt.datetime.fromtimestamp(0, dt.UTC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BootClock:
    """How one boot of one station's monotonic clock maps to true time."""

    station: str
    boot_id: str
    #: true time (seconds since the epoch) = at_mono + mono_offset
    mono_offset: float
    #: the station's wall clock minus true time during this boot
    wall_skew_s: float | None

    def true_time(self, at_mono: float) -> dt.datetime:
        """The true time of a reading of this boot's monotonic clock."""
        return from_epoch(at_mono + self.mono_offset)


def note_sample(
    conn: Connection,
    *,
    station: str,
    boot_id: str,
    sent_mono: float,
    sent_wall: float | None,
    received: dt.datetime,
) -> tuple[BootClock, float | None] | None:
    """Learn from one message the station sent at ``sent_mono`` and central received at
    ``received`` (central's clock, the truth).

    Returns ``(clock, gain)`` when this sample made the boot's clock better — ``gain``
    is how many seconds earlier its times now fall, None for the first sample of the
    boot — and None when an earlier sample was as good.
    """
    true = received.timestamp()
    offset = true - sent_mono
    skew = None if sent_wall is None else sent_wall - true
    clock = BootClock(station=station, boot_id=boot_id, mono_offset=offset, wall_skew_s=skew)
    values = {
        "station": station,
        "boot_id": boot_id,
        "mono_offset": offset,
        "wall_skew_s": skew,
        "samples": 1,
        "first_seen": received,
        "updated_at": received,
    }
    # Most messages come from a boot already known: look first, insert only if not.
    key = {"station": station, "boot_id": boot_id}
    held = conn.execute(_BOOT_OFFSET, key).scalar_one_or_none()
    if held is None:
        if _insert_new(conn, values):
            return clock, None
        held = conn.execute(_BOOT_OFFSET, key).scalar_one()  # another worker's, just now
    if offset >= held:
        return None
    conn.execute(
        station_boots.update()
        .where(station_boots.c.station == station, station_boots.c.boot_id == boot_id)
        .values(
            mono_offset=offset,
            wall_skew_s=skew if skew is not None else station_boots.c.wall_skew_s,
            samples=station_boots.c.samples + 1,
            updated_at=received,
        )
    )
    return clock, held - offset


_BOOT_OFFSET = (
    sa.select(station_boots.c.mono_offset)
    .where(
        station_boots.c.station == sa.bindparam("station"),
        station_boots.c.boot_id == sa.bindparam("boot_id"),
    )
    .with_for_update()
)


def _insert_new(conn: Connection, values: dict[str, object]) -> bool:
    """Insert unless the row exists (safe against another worker); True if inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(station_boots).values(values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(station_boots).values(values).on_conflict_do_nothing()  # type: ignore[assignment]
    # RETURNING says whether a row went in (rowcount may be -1: unknown).
    return conn.execute(stmt.returning(station_boots.c.station)).first() is not None


_BOOT_CLOCKS = sa.select(
    station_boots.c.boot_id, station_boots.c.mono_offset, station_boots.c.wall_skew_s
).where(
    station_boots.c.station == sa.bindparam("station"),
    station_boots.c.boot_id.in_(sa.bindparam("boot_ids", expanding=True)),
)


def boot_clocks(conn: Connection, *, station: str, boot_ids: Iterable[str]) -> dict[str, BootClock]:
    """The known clocks of ``boot_ids`` of ``station``, by boot id."""
    wanted = set(boot_ids)
    if not wanted:
        return {}
    rows = conn.execute(_BOOT_CLOCKS, {"station": station, "boot_ids": sorted(wanted)})
    return {
        r.boot_id: BootClock(
            station=station, boot_id=r.boot_id, mono_offset=r.mono_offset, wall_skew_s=r.wall_skew_s
        )
        for r in rows
    }


def boot_offsets(
    conn: Connection, *, station: str, boot_ids: Iterable[str]
) -> dict[str, float | None]:
    """The monotonic-clock offset of each of ``boot_ids`` of ``station`` (None when
    nothing is known of that boot): what :func:`event_time` looks up, for many events."""
    wanted = set(boot_ids)
    known: dict[str, float | None] = dict.fromkeys(wanted)
    if wanted:
        rows = conn.execute(
            sa.select(station_boots.c.boot_id, station_boots.c.mono_offset).where(
                station_boots.c.station == station, station_boots.c.boot_id.in_(wanted)
            )
        )
        known.update({r.boot_id: r.mono_offset for r in rows})
    return known


def event_time(
    conn: Connection, *, station: str, boot_id: str, at_wall: float, at_mono: float
) -> dt.datetime:
    """When an event of ``station`` happened, by true time, as a UTC datetime.

    The one function the deadline watch judges by: ``at_mono`` corrected by what
    central knows of that boot's clock, or the station's claimed ``at_wall`` while
    nothing is known of that boot.
    """
    offset = conn.execute(
        sa.select(station_boots.c.mono_offset).where(
            station_boots.c.station == station, station_boots.c.boot_id == boot_id
        )
    ).scalar_one_or_none()
    return corrected_time(offset, at_wall=at_wall, at_mono=at_mono)


def corrected_time(offset: float | None, *, at_wall: float, at_mono: float) -> dt.datetime:
    """An event's true time from its boot's monotonic-clock ``offset``
    (:func:`boot_offsets`): ``at_mono + offset``, or the station's claimed ``at_wall``
    while nothing is known of that boot."""
    return from_epoch(at_wall if offset is None else at_mono + offset)


def shipment_times(
    *, at_wall: float, corrected: dt.datetime | None, tolerance: float
) -> dict[str, object]:
    """The time columns of a shipment row: the claim, the best known time, the skew
    and whether it is beyond ``tolerance``."""
    claimed = from_epoch(at_wall)
    if corrected is None:
        return {
            "shipped_at": claimed,
            "shipped_at_corrected": claimed,
            "skew_s": None,
            "skewed": False,
        }
    skew = (claimed - corrected).total_seconds()
    return {
        "shipped_at": claimed,
        "shipped_at_corrected": corrected,
        "skew_s": skew,
        "skewed": abs(skew) > tolerance,
    }


def correct_boot(
    conn: Connection, clock: BootClock, *, tolerance: float, now: dt.datetime
) -> list[str]:
    """Give every stored event of ``clock``'s boot, and its shipment, the corrected time.

    Returns the order numbers whose shipment times moved; the deadline watch has
    re-judged them (when it is there).
    """
    rows = conn.execute(
        sa.select(events.c.event_id, events.c.at_mono).where(
            events.c.station == clock.station, events.c.boot_id == clock.boot_id
        )
    ).all()
    if not rows:
        return []
    fixed = [{"eid": r.event_id, "corrected": clock.true_time(r.at_mono)} for r in rows]
    conn.execute(
        events.update()
        .where(events.c.event_id == sa.bindparam("eid"))
        .values(at_corrected=sa.bindparam("corrected")),
        fixed,
    )
    by_event = {f["eid"]: f["corrected"] for f in fixed}
    shipped = conn.execute(
        sa.select(shipments.c.event_id, shipments.c.order_no, shipments.c.shipped_at).where(
            shipments.c.event_id.in_(list(by_event))
        )
    ).all()
    moved: list[dict[str, object]] = []
    orders: list[str] = []
    for row in shipped:
        times = shipment_times(
            at_wall=row.shipped_at.timestamp(),
            corrected=by_event[row.event_id],
            tolerance=tolerance,
        )
        moved.append(
            {
                "eid": row.event_id,
                "corrected": times["shipped_at_corrected"],
                "skew": times["skew_s"],
                "flag": times["skewed"],
            }
        )
        orders.append(row.order_no)
    if moved:
        conn.execute(
            shipments.update()
            .where(shipments.c.event_id == sa.bindparam("eid"))
            .values(
                shipped_at_corrected=sa.bindparam("corrected"),
                skew_s=sa.bindparam("skew"),
                skewed=sa.bindparam("flag"),
            ),
            moved,
        )
    orders = sorted(set(orders))
    _reevaluate(conn, orders, now)
    log.info(
        "station %s boot %s: corrected the times of %d events (%d shipments)",
        clock.station,
        clock.boot_id[:8],
        len(rows),
        len(moved),
    )
    return orders


def _reevaluate(conn: Connection, order_nos: list[str], now: dt.datetime) -> None:
    """Let the deadline watch judge again orders whose shipment times moved."""
    if not order_nos:
        return
    try:
        watch = importlib.import_module("central.watch")
    except ModuleNotFoundError:
        return  # no deadline watch in this build
    reevaluate = getattr(watch, "reevaluate_order", None)
    if reevaluate is None:
        return
    for order_no in order_nos:
        reevaluate(conn, order_no, now)
