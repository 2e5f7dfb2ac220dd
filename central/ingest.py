"""Storing event batches from the stations, and the projections fed by them.

The rule that keeps O2 ("nothing lost or counted twice"): a batch is stored in ONE
transaction — events deduplicated on ``event_id``, projections applied in ``seq`` order
only as far as ``seq`` is contiguous, the station's contiguous high-water mark moved —
and only after the commit may the caller acknowledge that mark to the station.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from central.db import events, shipments, stations, utcnow
from central.watch.reactions import react
from sync.events import BadEventPayload, EventPayload, ShipmentShipped, decode_payload
from sync.messages import EventBatch, StationStatus

__all__ = [
    "PROJECTIONS",
    "BatchRejected",
    "StatusUpdate",
    "ensure_station",
    "projects",
    "record_status",
    "store_batch",
]

log = logging.getLogger(__name__)


class BatchRejected(ValueError):
    """A batch that is not what it claims to be (e.g. an event of another station)."""


def ensure_station(conn: Connection, *, station: str, site: str, now: dt.datetime) -> None:
    """Insert a row for ``station`` unless it exists (safe against a concurrent insert)."""
    values = {
        "station": station,
        "site": site,
        "online": False,
        "version": "",
        "printer": "unknown",
        "printer_detail": "",
        "scanner": "unknown",
        "labels_left": None,
        "backlog": 0,
        "orders_cursor": 0,
        "acked_seq": 0,
        "created_at": now,
    }
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(stations).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(stations).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - only the two dialects above are opened by open_db
        exists = conn.execute(sa.select(stations.c.station).where(stations.c.station == station))
        if exists.first() is None:
            conn.execute(stations.insert().values(values))


def _ts(epoch: float) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(epoch, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return dt.datetime.fromtimestamp(0, dt.UTC)


Projection = Callable[[Connection, RowMapping, EventPayload, dt.datetime], None]

#: Event type → projection applied (in seq order, once) to the decoded payload when
#: the event becomes contiguous. Types without one are stored as events only.
PROJECTIONS: dict[str, Projection] = {}

P = TypeVar("P", bound=EventPayload)


def projects(
    model: type[P],
) -> Callable[[Callable[[Connection, RowMapping, P, dt.datetime], None]], Projection]:
    """Register the decorated function as the projection of ``model``'s event type."""

    def register(fn: Callable[[Connection, RowMapping, P, dt.datetime], None]) -> Projection:
        PROJECTIONS[model.TYPE] = cast(Projection, fn)
        return cast(Projection, fn)

    return register


@projects(ShipmentShipped)
def _project_shipment(
    conn: Connection, row: RowMapping, shipped: ShipmentShipped, now: dt.datetime
) -> None:
    exists = conn.execute(
        sa.select(shipments.c.id).where(shipments.c.event_id == row["event_id"])
    ).first()
    if exists is not None:  # already projected: exactly once per event_id
        return
    conn.execute(
        shipments.insert().values(
            event_id=row["event_id"],
            station=row["station"],
            # The columns are 64 characters wide; the station's values are not bounded.
            order_no=shipped.order_no[:64],
            tracking_no=shipped.tracking_no[:64],
            carrier=shipped.carrier[:64],
            service=shipped.service[:64],
            parcel_no=shipped.parcel_no,
            parcel_count=shipped.parcel_count,
            operator=shipped.operator[:64],
            print_job_id=shipped.print_job_id[:64],
            print_verified=shipped.print_verified,
            shipped_at=_ts(row["at_wall"]),
            recorded_at=now,
        )
    )


def _project(conn: Connection, row: RowMapping, now: dt.datetime, *, version: int) -> None:
    """Decode a contiguous event with its catalogued model and apply its projection.

    A type outside the catalogue is left as stored. A payload that does not fit its
    model, or of a version of its type this central does not know, is stored, not
    projected, and logged once (the event is applied once).
    """
    try:
        payload = decode_payload(row["type"], row["payload"], version=version)
    except BadEventPayload as exc:
        log.warning("station %s seq %s: %s; stored, not projected", row["station"], row["seq"], exc)
        return
    projection = PROJECTIONS.get(row["type"])
    if payload is not None and projection is not None:
        projection(conn, row, payload, now)
    # The deadline watch's part (a deadline met, a problem to raise), in the same
    # transaction, after the projections it reads (a shipment row).
    react(conn, row, payload, now)


def store_batch(engine: Engine, batch: EventBatch, *, site: str = "") -> int:
    """Store ``batch`` in one transaction and return the seq to acknowledge.

    Events already held (same ``event_id``) are skipped. An event whose
    ``(station, seq)`` is already held under another ``event_id`` is an integrity
    error: logged at ERROR, never overwritten. Projections run in seq order only as
    far as the station's seq is contiguous; later events wait for the gap to fill.
    The return value is the station's highest contiguous seq, committed.
    Raises :class:`BatchRejected` when an event names another station than the batch.
    """
    station = batch.station
    for event in batch.events:
        if event.station != station:
            raise BatchRejected(
                f"batch of station {station!r} holds event {event.event_id} "
                f"of station {event.station!r}"
            )
    now = utcnow()
    with engine.begin() as conn:
        ensure_station(conn, station=station, site=site, now=now)
        # Lock the station row (PostgreSQL) so two ingest workers cannot interleave
        # on one station; SQLite's BEGIN IMMEDIATE already serialises writers.
        acked = conn.execute(
            sa.select(stations.c.acked_seq).where(stations.c.station == station).with_for_update()
        ).scalar_one()
        _insert_events(conn, batch, now)
        # The events table does not keep the version yet: an event held back by a gap
        # from an earlier batch is decoded as version 1. Add the column before any
        # type gets a version 2.
        versions = {e.event_id: e.version for e in batch.events}
        acked = _apply_contiguous(conn, station=station, acked=acked, now=now, versions=versions)
        conn.execute(
            stations.update()
            .where(stations.c.station == station)
            .values(acked_seq=acked, last_seen=now)
        )
    return acked


def _insert_events(conn: Connection, batch: EventBatch, now: dt.datetime) -> None:
    if not batch.events:
        return
    ids = {e.event_id for e in batch.events}
    seqs = {e.seq for e in batch.events}
    held_by_id = {
        r.event_id: (r.station, r.seq)
        for r in conn.execute(
            sa.select(events.c.event_id, events.c.station, events.c.seq).where(
                events.c.event_id.in_(ids)
            )
        )
    }
    held_by_seq = {
        r.seq: r.event_id
        for r in conn.execute(
            sa.select(events.c.seq, events.c.event_id).where(
                events.c.station == batch.station, events.c.seq.in_(seqs)
            )
        )
    }
    rows: list[dict[str, Any]] = []
    for event in batch.events:
        where = (event.station, event.seq)
        if event.event_id in held_by_id:
            if held_by_id[event.event_id] != where:
                log.error(
                    "INTEGRITY: event %s arrived as station %s seq %s but is held as "
                    "station %s seq %s; kept the stored one",
                    event.event_id,
                    event.station,
                    event.seq,
                    *held_by_id[event.event_id],
                )
            continue  # a duplicate: the station resent what we already hold
        if event.seq in held_by_seq:
            log.error(
                "INTEGRITY: station %s seq %s is held as event %s, refused event %s "
                "(type %s) at the same seq; kept the stored one",
                event.station,
                event.seq,
                held_by_seq[event.seq],
                event.event_id,
                event.type,
            )
            continue
        held_by_id[event.event_id] = where
        held_by_seq[event.seq] = event.event_id
        rows.append(
            {
                "event_id": event.event_id,
                "station": event.station,
                "seq": event.seq,
                "type": event.type[:64],
                "at_wall": event.at_wall,
                "at_mono": event.at_mono,
                "boot_id": event.boot_id[:64],
                "payload": event.payload,
                "received_at": now,
            }
        )
    if rows:
        conn.execute(events.insert(), rows)


def _apply_contiguous(
    conn: Connection, *, station: str, acked: int, now: dt.datetime, versions: dict[str, int]
) -> int:
    held = (
        conn.execute(
            sa.select(
                events.c.event_id,
                events.c.station,
                events.c.seq,
                events.c.type,
                events.c.at_wall,
                events.c.at_mono,
                events.c.boot_id,
                events.c.payload,
            )
            .where(events.c.station == station, events.c.seq > acked)
            .order_by(events.c.seq)
        )
        .mappings()
        .all()
    )
    for row in held:
        if row["seq"] != acked + 1:
            log.info("station %s: holding events after a gap at seq %s", station, acked + 1)
            break
        _project(conn, row, now, version=versions.get(row["event_id"], 1))
        acked = row["seq"]
    return acked


class StatusUpdate:
    """What :func:`record_status` learnt: whether the station just came online."""

    __slots__ = ("came_online", "orders_cursor", "station")

    def __init__(self, *, station: str, came_online: bool, orders_cursor: int) -> None:
        self.station = station
        self.came_online = came_online
        self.orders_cursor = orders_cursor


def record_status(engine: Engine, status: StationStatus, *, site: str) -> StatusUpdate:
    """Upsert the station's row from a status message.

    An offline status (usually the last will, composed when the station connected)
    only marks the station offline: its other fields are stale, so the last health
    reported while online is kept, and ``last_seen`` is not moved.
    """
    now = utcnow()
    with engine.begin() as conn:
        ensure_station(conn, station=status.station, site=site, now=now)
        was_online = conn.execute(
            sa.select(stations.c.online)
            .where(stations.c.station == status.station)
            .with_for_update()
        ).scalar_one()
        values: dict[str, Any] = {"online": status.online, "site": site}
        if status.online:
            values.update(
                version=status.version[:64],
                printer=status.printer[:64],
                printer_detail=status.printer_detail[:255],
                scanner=status.scanner[:64],
                labels_left=status.labels_left,
                backlog=status.backlog,
                orders_cursor=status.orders_cursor,
                last_status=status.model_dump(mode="json"),
                last_seen=now,
            )
        conn.execute(stations.update().where(stations.c.station == status.station).values(values))
    return StatusUpdate(
        station=status.station,
        came_online=status.online and not was_online,
        orders_cursor=status.orders_cursor,
    )
