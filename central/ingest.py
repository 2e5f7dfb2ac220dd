"""Storing event batches from the stations, and the projections fed by them.

The rule that keeps O2 ("nothing lost or counted twice"): a batch is stored in ONE
transaction — events deduplicated on ``event_id``, projections applied in ``seq`` order
only as far as ``seq`` is contiguous, the station's contiguous high-water mark moved —
and only after the commit may the caller acknowledge that mark to the station.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import functools
import itertools
import json
import logging
import operator
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine, RowMapping

from central.db import by_keys, each_key, events, shipments, stations, utcnow
from central.deadletters import record_dead_letter
from central.health import (
    DEFAULT_BACKLOG_ALERT_AFTER,
    TRACKED,
    check_backlog,
    record_changes,
)
from central.names import claim_name
from central.timefix import (
    DEFAULT_SKEW_TOLERANCE,
    RECORRECT_ABOVE,
    BootClock,
    boot_clocks,
    correct_boot,
    note_sample,
    shipment_times,
)
from sync.events import BadEventPayload, EventPayload, ShipmentShipped, decode_payload
from sync.messages import Event, EventBatch, StationStatus

__all__ = [
    "PROJECTIONS",
    "BatchRejected",
    "BatchResult",
    "StatusUpdate",
    "ensure_station",
    "ingest_batch",
    "projects",
    "record_status",
    "record_statuses",
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


# How far a shipment's claimed time may be from its corrected time before it is
# flagged; set by ingest_batch for the projections it runs (their signature is shared).
_skew_tolerance: contextvars.ContextVar[float] = contextvars.ContextVar(
    "skew_tolerance", default=DEFAULT_SKEW_TOLERANCE
)


#: Writes the rows a batch's events projected to, each event's at most once.
Writer = Callable[[Connection, list[dict[str, Any]]], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Projection:
    """What an event type projects to: ``row(event row, payload, now)`` gives its row,
    and ``write`` stores a batch's rows in one statement."""

    row: Callable[[RowMapping, Any, dt.datetime], dict[str, Any]]
    write: Writer


#: Event type → its projection, applied (in seq order, once) to the decoded payload
#: when the event becomes contiguous. Types without one are stored as events only.
PROJECTIONS: dict[str, Projection] = {}

P = TypeVar("P", bound=EventPayload)
RowOf = Callable[[RowMapping, P, dt.datetime], dict[str, Any]]


def projects(model: type[P], *, write: Writer) -> Callable[[RowOf[P]], RowOf[P]]:
    """Register the decorated function as the row ``model``'s events project to,
    stored by ``write``."""

    def register(fn: RowOf[P]) -> RowOf[P]:
        PROJECTIONS[model.TYPE] = Projection(row=fn, write=write)
        return fn

    return register


# Built once: a statement object reused keeps SQLAlchemy's compiled form and cache key,
# which matters at a few thousand events a second (bench/ingest.py).
@functools.cache
def _shipment_insert(dialect_name: str) -> Any:
    """INSERT of a shipment that does nothing when its event is already projected."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(shipments).on_conflict_do_nothing(index_elements=["event_id"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(shipments).on_conflict_do_nothing(index_elements=["event_id"])


def _insert_shipments(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert a batch's shipments in one executemany; a shipment whose event is
    already projected is left as it is: exactly once per event_id."""
    stmt = _shipment_insert(conn.dialect.name)
    _insert_on_driver(conn, stmt, shipments, _SHIPMENT_COLUMNS, rows)


@projects(ShipmentShipped, write=_insert_shipments)
def _project_shipment(
    row: RowMapping, shipped: ShipmentShipped, now: dt.datetime
) -> dict[str, Any]:
    return {
        "event_id": row["event_id"],
        "station": row["station"],
        # The columns are 64 characters wide; the station's values are not bounded.
        "order_no": shipped.order_no[:64],
        "tracking_no": shipped.tracking_no[:64],
        "carrier": shipped.carrier[:64],
        "service": shipped.service[:64],
        "parcel_no": shipped.parcel_no,
        "parcel_count": shipped.parcel_count,
        "operator": shipped.operator[:64],
        "print_job_id": shipped.print_job_id[:64],
        "print_verified": shipped.print_verified,
        "recorded_at": now,
        **shipment_times(
            at_wall=row["at_wall"],
            corrected=row["at_corrected"],
            tolerance=_skew_tolerance.get(),
        ),
    }


_SHIPMENT_COLUMNS = (
    "event_id",
    "station",
    "order_no",
    "tracking_no",
    "carrier",
    "service",
    "parcel_no",
    "parcel_count",
    "operator",
    "print_job_id",
    "print_verified",
    "recorded_at",
    "shipped_at",
    "shipped_at_corrected",
    "skew_s",
    "skewed",
)


def _decode(row: RowMapping) -> tuple[bool, EventPayload | None]:
    """An event's payload decoded with its catalogued model (None for a type outside
    the catalogue); False when it does not fit its model, or is of a version of its
    type this central does not know: such an event is stored, not projected, and
    logged (the event is applied once)."""
    try:
        return True, decode_payload(row["type"], row["payload"], version=row["version"])
    except BadEventPayload as exc:
        log.warning("station %s seq %s: %s; stored, not projected", row["station"], row["seq"], exc)
        return False, None


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchResult:
    """What :func:`ingest_batch` did with one batch."""

    #: The station's highest contiguous seq, committed: what to acknowledge.
    acked: int
    #: False when the batch was refused because another bench owns the station's name
    #: (nothing of it stored; it is in the dead letters).
    accepted: bool = True
    #: The words for the bench that sent it, while another bench uses its name.
    name_conflict: str | None = None
    #: Events refused because their seq is held under another event id.
    integrity_refused: int = 0
    #: Central's wall clock (epoch seconds) while it still held the station's row, just
    #: before the commit: the ack's ``at``. A later batch of the station, in any worker,
    #: commits after it, so acks in ``at`` order are in commit order (taken after the
    #: commit, one worker's time could fall after another's later ack).
    at: float | None = None


_STATION_LOCK = (
    sa.select(stations.c.acked_seq, stations.c.instance_id, stations.c.name_conflict)
    .where(stations.c.station == sa.bindparam("station"))
    .with_for_update()
)
_STATION_ACKED = (
    stations.update()
    .where(stations.c.station == sa.bindparam("acked_station"))
    .values(acked_seq=sa.bindparam("acked"), last_seen=sa.bindparam("seen"))
)


def store_batch(engine: Engine, batch: EventBatch, *, site: str = "") -> int:
    """Store ``batch`` in one transaction and return the seq to acknowledge.

    :func:`ingest_batch` with its defaults, for callers that need only the seq.
    """
    return ingest_batch(engine, batch, site=site).acked


def ingest_batch(
    engine: Engine,
    batch: EventBatch,
    *,
    site: str = "",
    topic: str = "",
    payload: bytes = b"",
    received_at: dt.datetime | None = None,
    skew_tolerance: float = DEFAULT_SKEW_TOLERANCE,
) -> BatchResult:
    """Store ``batch`` in one transaction; the result says what to acknowledge.

    Events already held (same ``event_id``) are skipped. An event whose
    ``(station, seq)`` is already held under another ``event_id`` is an integrity
    error: logged at ERROR, kept in the dead letters, never overwritten. Projections
    run in seq order only as far as the station's seq is contiguous; later events wait
    for the gap to fill. A batch from a second bench using a name another bench owns
    is stored nowhere but the dead letters (``topic`` and ``payload`` are what is kept
    there). The batch's send time corrects the station's clock (:mod:`central.timefix`);
    shipments are flagged when their claimed time is off by more than
    ``skew_tolerance`` seconds. Raises :class:`BatchRejected` when an event names
    another station than the batch.
    """
    station = batch.station
    for event in batch.events:
        if event.station != station:
            raise BatchRejected(
                f"batch of station {station!r} holds event {event.event_id} "
                f"of station {event.station!r}"
            )
    now = received_at or utcnow()
    token = _skew_tolerance.set(skew_tolerance)
    try:
        with engine.begin() as conn:
            # Lock the station row (PostgreSQL) so two ingest workers cannot interleave
            # on one station; SQLite's BEGIN IMMEDIATE already serialises writers. The
            # row is created by the station's first message only.
            row = conn.execute(_STATION_LOCK, {"station": station}).first()
            if row is None:
                ensure_station(conn, station=station, site=site, now=now)
                row = conn.execute(_STATION_LOCK, {"station": station}).one()
            acked = row.acked_seq
            claim = claim_name(
                conn,
                station=station,
                instance_id=batch.instance_id,
                now=now,
                held=(row.instance_id, row.name_conflict),
            )
            if not claim.accepted:
                _refuse_batch(conn, batch, topic=topic, payload=payload, now=now)
                return BatchResult(acked=0, accepted=False, name_conflict=claim.conflict)
            if batch.boot_id is not None and batch.sent_mono is not None:
                _learn_clock(
                    conn,
                    station=station,
                    boot_id=batch.boot_id,
                    sent_mono=batch.sent_mono,
                    sent_wall=batch.sent_wall,
                    received=now,
                    tolerance=skew_tolerance,
                )
            boots = {e.boot_id for e in batch.events}
            clocks = boot_clocks(conn, station=station, boot_ids=boots)
            fresh, refused, waiting = _insert_events(conn, batch, now, clocks=clocks, acked=acked)
            for event in refused:
                record_dead_letter(
                    conn,
                    topic=topic,
                    reason="integrity",
                    detail=f"seq {event.seq} is held under another event id; "
                    f"refused event {event.event_id} ({event.type})",
                    payload=event.model_dump_json().encode(),
                    now=now,
                    station=station,
                    instance_id=batch.instance_id,
                    key=f"integrity:{event.event_id}",
                )
            acked = _apply_contiguous(
                conn,
                station=station,
                acked=acked,
                now=now,
                fresh=fresh,
                held=waiting | fresh.keys(),
            )
            conn.execute(_STATION_ACKED, {"acked_station": station, "acked": acked, "seen": now})
            at = time.time()
    finally:
        _skew_tolerance.reset(token)
    return BatchResult(
        acked=acked, name_conflict=claim.conflict, integrity_refused=len(refused), at=at
    )


def _refuse_batch(
    conn: Connection, batch: EventBatch, *, topic: str, payload: bytes, now: dt.datetime
) -> None:
    seqs = [e.seq for e in batch.events]
    span = f"seq {min(seqs)}-{max(seqs)}" if seqs else "no events"
    record_dead_letter(
        conn,
        topic=topic,
        reason="name_conflict",
        detail=f"another bench owns the name {batch.station}; refused {len(seqs)} events "
        f"({span}) of instance {batch.instance_id}: they stay in that bench's outbox",
        payload=payload or batch.model_dump_json().encode(),
        now=now,
        station=batch.station,
        instance_id=batch.instance_id,
        key=f"name_conflict:{batch.station}:{batch.instance_id}:{span}",
    )


def _learn_clock(
    conn: Connection,
    *,
    station: str,
    boot_id: str,
    sent_mono: float,
    sent_wall: float | None,
    received: dt.datetime,
    tolerance: float,
) -> None:
    """Note one send time of the station's clock; correct stored events when it helps."""
    learnt = note_sample(
        conn,
        station=station,
        boot_id=boot_id,
        sent_mono=sent_mono,
        sent_wall=sent_wall,
        received=received,
    )
    if learnt is None:
        return
    clock, gain = learnt
    if gain is None or gain > RECORRECT_ABOVE:
        correct_boot(conn, clock, tolerance=tolerance, now=received)


def _insert_events(
    conn: Connection,
    batch: EventBatch,
    now: dt.datetime,
    *,
    clocks: Mapping[str, BootClock],
    acked: int,
) -> tuple[dict[int, dict[str, Any]], list[Event], set[int]]:
    """Insert the events not held yet, in one executemany; ``clocks`` are the known
    clocks of the batch's boots (they give each event its corrected time), ``acked``
    the station's high-water mark.

    Returns the rows inserted, by seq (the projections read them from here rather
    than from the database), the events refused as integrity errors, and the seqs
    above ``acked`` held before this batch (waiting behind a gap).
    """
    # One query finds what is held by these event ids (duplicates), what is held at
    # these seqs of the station (a seq under another id is an integrity error) and
    # what waits above the high-water mark.
    held_by_id: dict[str, tuple[str, int]] = {}
    held_by_seq: dict[int, str] = {}
    for r in conn.execute(
        _HELD_BY_ID_OR_SEQ[conn.dialect.name],
        {
            "ids": [e.event_id for e in batch.events],
            "station": batch.station,
            "seqs": [e.seq for e in batch.events],
            "acked": acked,
        },
    ):
        held_by_id[r.event_id] = (r.station, r.seq)
        if r.station == batch.station:
            held_by_seq[r.seq] = r.event_id
    waiting = {seq for seq in held_by_seq if seq > acked}
    rows: list[dict[str, Any]] = []
    refused: list[Event] = []
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
            refused.append(event)
            continue
        held_by_id[event.event_id] = where
        held_by_seq[event.seq] = event.event_id
        clock = clocks.get(event.boot_id)
        rows.append(
            {
                "event_id": event.event_id,
                "station": event.station,
                "seq": event.seq,
                "type": event.type,
                "version": event.version,
                "instance_id": batch.instance_id,
                "at_wall": event.at_wall,
                "at_mono": event.at_mono,
                "at_corrected": None if clock is None else clock.true_time(event.at_mono),
                "boot_id": event.boot_id,
                "payload": event.payload,
                "received_at": now,
            }
        )
    if rows:
        _insert_rows(conn, rows, now)
    return {r["seq"]: r for r in rows}, refused, waiting


_EVENT_COLUMNS = (
    "event_id",
    "station",
    "seq",
    "type",
    "version",
    "instance_id",
    "at_wall",
    "at_mono",
    "at_corrected",
    "boot_id",
    "payload",
    "received_at",
)


@functools.cache
def _on_driver(
    dialect: Dialect, stmt: Any, table: sa.Table, columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...], list[Any]]:
    """INSERT ``stmt`` of ``columns`` into ``table`` compiled once for ``dialect``: its
    SQL, the order of its parameters, and each column's bind processor (None when the
    value goes as is)."""
    compiled = stmt.values({c: sa.bindparam(c) for c in columns}).compile(dialect=dialect)
    order = tuple(compiled.positiontup or ()) if compiled.positional else columns
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in order]
    return compiled.string, order, processors


def _insert_on_driver(
    conn: Connection,
    stmt: Any,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: list[dict[str, Any]],
    *,
    same: Mapping[str, Any] | None = None,
) -> None:
    """Execute INSERT ``stmt`` for ``rows`` (dicts holding ``columns``) on the driver,
    past SQLAlchemy's per-row parameter handling: the columns' own bind processors
    still convert each value, and the values of ``same`` (one for every row) once.
    Per-row work was most of ingest's cost (bench/ingest.py)."""
    sql, order, processors = _on_driver(conn.dialect, stmt, table, columns)
    values = operator.itemgetter(*order)
    fixed = {
        order.index(c): processors[order.index(c)](v) if processors[order.index(c)] else v
        for c, v in (same or {}).items()
    }
    convert = [(i, p) for i, p in enumerate(processors) if p is not None and i not in fixed]
    params: list[Any] = []
    for row in rows:
        one = list(values(row))
        for i, p in convert:
            one[i] = p(one[i])
        for i, v in fixed.items():
            one[i] = v
        params.append(tuple(one))
    if not conn.dialect.positional:
        params = [dict(zip(order, one, strict=True)) for one in params]
    conn.exec_driver_sql(sql, params[0] if len(params) == 1 else params)


def _insert_rows(conn: Connection, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    """One executemany of the batch's events on the driver (``received_at`` is ``now``)."""
    _insert_on_driver(conn, _EVENTS_INSERT, events, _EVENT_COLUMNS, rows, same={"received_at": now})


_EVENTS_INSERT = events.insert()


def _held_by_id_or_seq(dialect: str) -> sa.CompoundSelect[Any]:
    """What is held by a batch's event ids or at its seqs (or waits above ``acked``):
    three index lookups in one statement (a row may come twice; callers key by it).

    The ids and seqs go as one parameter each, so every batch runs one SQL text,
    compiled and prepared once. PostgreSQL: one index lookup per value
    (:func:`central.db.by_keys`): ``= ANY($1)`` or one ``OR`` of the three scanned the
    whole table in a generic plan, and ``IN (SELECT unnest($1))`` hashed it once the
    table had statistics (5-10 ms a batch in bench/ingest.py). SQLite: JSON arrays.
    """
    columns = events.c.event_id, events.c.station, events.c.seq
    station = events.c.station == sa.bindparam("station")
    if dialect == "postgresql":
        by_id = by_keys(dialect, sa.select(*columns), events.c.event_id, "ids")
        by_seq = by_keys(dialect, sa.select(*columns).where(station), events.c.seq, "seqs")
    else:
        ids = sa.select(each_key(dialect, "ids", events.c.event_id.type).c.value)
        seqs = sa.select(each_key(dialect, "seqs", events.c.seq.type).c.value)
        by_id = sa.select(*columns).where(events.c.event_id.in_(ids))
        by_seq = sa.select(*columns).where(station, events.c.seq.in_(seqs))
    return sa.union_all(
        by_id,
        by_seq,
        sa.select(*columns).where(station, events.c.seq > sa.bindparam("acked")),
    )


_HELD_BY_ID_OR_SEQ = {
    "postgresql": _held_by_id_or_seq("postgresql"),
    "sqlite": _held_by_id_or_seq("sqlite"),
}
_HELD_SEQS = (
    sa.select(events.c.seq)
    .where(events.c.station == sa.bindparam("station"), events.c.seq > sa.bindparam("acked"))
    .order_by(events.c.seq)
)
_HELD_ROWS = sa.select(
    events.c.event_id,
    events.c.station,
    events.c.seq,
    events.c.type,
    events.c.version,
    events.c.at_wall,
    events.c.at_mono,
    events.c.boot_id,
    events.c.at_corrected,
    events.c.payload,
).where(
    events.c.station == sa.bindparam("station"),
    events.c.seq.in_(sa.bindparam("seqs", expanding=True)),
)


def _apply_contiguous(
    conn: Connection,
    *,
    station: str,
    acked: int,
    now: dt.datetime,
    fresh: dict[int, dict[str, Any]] | None = None,
    held: Collection[int] | None = None,
) -> int:
    """Project the held events after ``acked`` in seq order, as far as seq is contiguous;
    returns the new high-water mark.

    ``fresh`` holds the rows this transaction just inserted, by seq: only events held
    from earlier batches (waiting behind a gap) are read back from the database.
    ``held`` are the seqs above ``acked`` held (read when not given).
    """
    fresh = fresh or {}
    seqs = (
        sorted(held)
        if held is not None
        else conn.execute(_HELD_SEQS, {"station": station, "acked": acked}).scalars().all()
    )
    contiguous = list(itertools.takewhile(lambda x: x[1] == acked + 1 + x[0], enumerate(seqs)))
    if len(contiguous) < len(seqs):
        log.info(
            "station %s: holding events after a gap at seq %s", station, acked + 1 + len(contiguous)
        )
    wanted = [seq for _, seq in contiguous]
    stored = [seq for seq in wanted if seq not in fresh]
    rows: dict[int, Any] = dict(fresh)
    if stored:
        rows.update(
            (r["seq"], r)
            for r in conn.execute(_HELD_ROWS, {"station": station, "seqs": stored}).mappings()
        )
    # A dict of the inserted values serves as the row: projections read it by key.
    # The watch reacts to these events once they are acknowledged
    # (central.watch.reactor); here only the projections run, each kind written in
    # one statement.
    projected: dict[Writer, list[dict[str, Any]]] = {}
    for seq in wanted:
        row = cast(RowMapping, rows[seq])
        projection = PROJECTIONS.get(row["type"])
        if projection is not None:
            ok, payload = _decode(row)
            if ok and payload is not None:
                projected.setdefault(projection.write, []).append(projection.row(row, payload, now))
        acked = seq
    for write, written in projected.items():
        write(conn, written)
    return acked


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatusUpdate:
    """What :func:`record_status` learnt from one status."""

    station: str
    #: The station just came online.
    came_online: bool
    orders_cursor: int
    #: False when the status came from a second bench using a name another bench owns
    #: (the station's row was left as it was).
    accepted: bool = True
    #: The instance the status came from, and the words for it while there is a conflict.
    instance_id: str | None = None
    name_conflict: str | None = None
    #: The station's backlog is older than backlog_alert_after (an alert is raised).
    backlog_alert: bool = False


def _reported(status: StationStatus) -> dict[str, Any]:
    """The tracked fields of a status, as the history compares them."""
    values = status.model_dump(mode="json")
    return {field: values.get(field) for field in TRACKED}


def record_status(
    engine: Engine,
    status: StationStatus,
    *,
    site: str,
    received_at: dt.datetime | None = None,
    skew_tolerance: float = DEFAULT_SKEW_TOLERANCE,
    backlog_alert_after: float = DEFAULT_BACKLOG_ALERT_AFTER,
) -> StatusUpdate:
    """Upsert the station's row from a status message.

    An offline status (usually the last will, composed when the station connected)
    only marks the station offline: its other fields are stale, so the last health
    reported while online is kept, and ``last_seen`` is not moved. Each change of a
    tracked field is kept in ``station_history``. A status from a second bench using a
    name another bench owns changes nothing but the record of that conflict. The
    status's send time corrects the station's clock (:mod:`central.timefix`), and an
    online station whose oldest unsent event is older than ``backlog_alert_after``
    seconds raises an alert.
    """
    (update,) = record_statuses(
        engine,
        [(status, received_at or utcnow())],
        site=site,
        skew_tolerance=skew_tolerance,
        backlog_alert_after=backlog_alert_after,
    )
    return update


def record_statuses(
    engine: Engine,
    statuses: Sequence[tuple[StationStatus, dt.datetime]],
    *,
    site: str,
    skew_tolerance: float = DEFAULT_SKEW_TOLERANCE,
    backlog_alert_after: float = DEFAULT_BACKLOG_ALERT_AFTER,
) -> list[StatusUpdate]:
    """:func:`record_status` for several statuses (each with the time it was received),
    in this order, in ONE transaction: 500 stations reporting every 10 s cost a commit
    per burst rather than one per status (bench/status_fanin.py)."""
    with engine.begin() as conn:
        return [
            _record_status(
                conn,
                status,
                site=site,
                now=now,
                skew_tolerance=skew_tolerance,
                backlog_alert_after=backlog_alert_after,
            )
            for status, now in statuses
        ]


# Built once: these run for every status of every station.
_STATUS_ROW = (
    sa.select(
        stations.c.online,
        stations.c.instance_id,
        stations.c.last_status,
        stations.c.backlog_oldest_age_s,
    )
    .where(stations.c.station == sa.bindparam("row_station"))
    .with_for_update()
)
#: The SET clause comes from the parameters' keys (the columns to write).
_STATION_UPDATE = stations.update().where(stations.c.station == sa.bindparam("row_station"))


def _record_status(
    conn: Connection,
    status: StationStatus,
    *,
    site: str,
    now: dt.datetime,
    skew_tolerance: float,
    backlog_alert_after: float,
) -> StatusUpdate:
    row = conn.execute(_STATUS_ROW, {"row_station": status.station}).mappings().first()
    if row is None:
        ensure_station(conn, station=status.station, site=site, now=now)
        row = conn.execute(_STATUS_ROW, {"row_station": status.station}).mappings().one()
    was_online = bool(row["online"])
    if not status.online:
        # A last will of another bench under this name says nothing of this one.
        theirs = status.instance_id is not None and row["instance_id"] not in (
            None,
            status.instance_id,
        )
        if not theirs:
            conn.execute(
                _STATION_UPDATE, {"row_station": status.station, "online": False, "site": site}
            )
            if was_online:
                record_changes(
                    conn,
                    station=status.station,
                    before={"online": True},
                    after={"online": False},
                    now=now,
                )
        return StatusUpdate(
            station=status.station,
            came_online=False,
            orders_cursor=status.orders_cursor,
            accepted=not theirs,
            instance_id=status.instance_id,
        )
    claim = claim_name(conn, station=status.station, instance_id=status.instance_id, now=now)
    if not claim.accepted:
        return StatusUpdate(
            station=status.station,
            came_online=False,
            orders_cursor=status.orders_cursor,
            accepted=False,
            instance_id=status.instance_id,
            name_conflict=claim.conflict,
        )
    skew = status.clock_skew_s
    if status.boot_id is not None and status.at_mono is not None:
        _learn_clock(
            conn,
            station=status.station,
            boot_id=status.boot_id,
            sent_mono=status.at_mono,
            sent_wall=status.at_wall or None,
            received=now,
            tolerance=skew_tolerance,
        )
        clock = boot_clocks(conn, station=status.station, boot_ids=[status.boot_id])
        measured = clock[status.boot_id].wall_skew_s if clock else None
        skew = measured if measured is not None else skew
    oldest_age = (
        max(0.0, status.at_wall - status.backlog_oldest_at)
        if status.backlog and status.backlog_oldest_at is not None
        else None
    )
    before = {**_reported_json(row["last_status"]), "online": was_online}
    record_changes(conn, station=status.station, before=before, after=_reported(status), now=now)
    conn.execute(
        _STATION_UPDATE,
        {
            "row_station": status.station,
            "online": True,
            "site": site,
            "version": status.version,
            "printer": status.printer,
            "printer_detail": status.printer_detail,
            "scanner": status.scanner,
            "labels_left": status.labels_left,
            "backlog": status.backlog,
            "orders_cursor": status.orders_cursor,
            "last_status": status.model_dump(mode="json"),
            "last_seen": now,
            "status_at": now,
            "backlog_oldest_age_s": oldest_age,
            "clock_skew_s": skew,
        },
    )
    alert = check_backlog(
        conn,
        station=status.station,
        backlog=status.backlog,
        oldest_age_s=oldest_age,
        was_age_s=row["backlog_oldest_age_s"],
        alert_after=backlog_alert_after,
        now=now,
    )
    return StatusUpdate(
        station=status.station,
        came_online=not was_online,
        orders_cursor=status.orders_cursor,
        instance_id=status.instance_id,
        name_conflict=claim.conflict,
        backlog_alert=alert,
    )


def _reported_json(last: Any) -> dict[str, Any]:
    """The tracked fields of the last status kept (JSON; text on some drivers)."""
    if isinstance(last, str):
        try:
            last = json.loads(last)
        except ValueError:
            last = None
    if not isinstance(last, dict):
        return {}
    return {field: last.get(field) for field in TRACKED}
