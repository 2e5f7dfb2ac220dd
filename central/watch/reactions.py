"""What the watch makes of the events the benches record.

The reactor calls :func:`react` for every stored event once its batch is acknowledged
(once, in ``seq`` order, in the transaction that moves the station's watch cursor;
:mod:`central.watch.reactor`). Reactions only record facts and arm timers: a deadline met
(by the event's time at the bench), a problem to raise, a printer fault to check in
5 minutes. The exceptions and alerts themselves come from the tick, which knows the
rules and the site, usually within one ``tick_every``.

Reactions by event type are registered with :func:`reacts_to`; the timers they arm are
ordinary timer kinds (:mod:`central.watch.timers`).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from central import timefix
from central.db import by_keys, orders, shipments
from central.watch.context import Watch, when
from central.watch.deadlines import (
    meeting,
    note_packed,
    note_shipped,
    note_station,
    order_bodies,
)
from central.watch.exceptions import OPEN_STATES, add_note, find_by_source, open_exception
from central.watch.rules import WatchRules
from central.watch.tables import exceptions
from central.watch.timers import Timer, arm, disarm, timer_kind
from sync.events import (
    DeviceState,
    EventPayload,
    OrderPacked,
    ProblemReported,
    ShipmentShipped,
)
from sync.order import parcel_count_of

__all__ = [
    "BATCH_SCOPES",
    "PRINTER_FAULT_AFTER",
    "PRINTER_OK",
    "REACTIONS",
    "batch",
    "batch_scope",
    "react",
    "reacts_to",
]

log = logging.getLogger(__name__)

#: A printer fault that lasts longer than this opens an ``equipment_fault``.
PRINTER_FAULT_AFTER = dt.timedelta(minutes=5)
#: Printer states that are not a fault.
PRINTER_OK = frozenset({"ready", "ok", "idle", "printing", "busy", "unknown"})
#: What a packer may report at the bench → the exception it opens.
PROBLEMS = {"damaged": "damaged", "stock_out": "stock_out"}

PROBLEM, DOUBLE, PRINTER = "bench.problem", "bench.double_shipment", "bench.printer_fault"

Reaction = Callable[[Connection, RowMapping, Any, dt.datetime, dt.datetime], None]
#: Event type → reactions(conn, event row, payload, when at the bench, central's now),
#: run in the order they were registered.
REACTIONS: dict[str, list[Reaction]] = {}


def reacts_to(type_name: str) -> Callable[[Reaction], Reaction]:
    """Register the decorated function as a reaction of the watch to ``type_name``
    (a type may have several: a shipment meets deadlines and starts tracking)."""

    def register(fn: Reaction) -> Reaction:
        REACTIONS.setdefault(type_name, []).append(fn)
        return fn

    return register


BatchScope = Callable[[Connection, Sequence[EventPayload]], AbstractContextManager[None]]
#: Scopes entered around the reactions of one reactor pass (:func:`batch`), with the
#: batch's payloads: a reaction reads what it needs for the whole batch in one query
#: when its scope begins, or collects rows and writes them set-wise when it ends —
#: still in the batch's transaction.
BATCH_SCOPES: list[BatchScope] = []


def batch_scope(fn: BatchScope) -> BatchScope:
    """Register the decorated context manager factory as a scope of :func:`batch`."""
    BATCH_SCOPES.append(fn)
    return fn


@contextlib.contextmanager
def batch(conn: Connection, payloads: Sequence[EventPayload]) -> Iterator[None]:
    """The reactions to ``payloads`` (one batch's, applied in this order) run inside
    this block (see :data:`BATCH_SCOPES`); what they collected is written when it ends
    without an error."""
    with contextlib.ExitStack() as stack:
        for scope in BATCH_SCOPES:
            stack.enter_context(scope(conn, payloads))
        yield


def react(
    conn: Connection,
    row: RowMapping,
    payload: EventPayload | None,
    now: dt.datetime,
    *,
    at: dt.datetime | None = None,
    noted: set[str] | None = None,
) -> None:
    """The watch's part of applying one event (called by :mod:`central.ingest`).

    ``row`` holds the event's envelope (``event_id``, ``station``, ``type``,
    ``at_wall``, ``at_mono``, ``boot_id``); ``payload`` is its decoded model, or None
    for a type outside the catalogue (ignored here). ``at`` is the event's true time
    (:func:`central.timefix.event_time`) when the caller already knows it; ``noted``,
    the orders this transaction already noted for this event's station (kept up to
    date here), spares a query per event of one batch.
    """
    if payload is None:
        return
    order_no = getattr(payload, "order_no", None)
    if isinstance(order_no, str) and order_no and (noted is None or order_no not in noted):
        note_station(conn, order_no=order_no[:64], station=row["station"])
        if noted is not None:
            # One batch is one station's: noting its order again changes nothing.
            noted.add(order_no)
    reactions = REACTIONS.get(row["type"])
    if not reactions:
        return
    if at is None:
        at = timefix.event_time(
            conn,
            station=row["station"],
            boot_id=row["boot_id"],
            at_wall=row["at_wall"],
            at_mono=row["at_mono"],
        )
    for reaction in reactions:
        reaction(conn, row, payload, at, now)


# --------------------------------------------------------------------------- reactions


@reacts_to(OrderPacked.TYPE)
def _packed(
    conn: Connection, row: RowMapping, packed: OrderPacked, at: dt.datetime, now: dt.datetime
) -> None:
    note_packed(
        conn,
        order_no=packed.order_no[:64],
        station=row["station"],
        event_id=row["event_id"],
        at=at,
        now=now,
    )


# Built once: the order's shipments stored up to this event's (the watch reacts to a
# shipment after ingest stored it, and maybe later ones), and the order's body.
_ORDER_BODY = sa.select(orders.c.body).where(orders.c.order_no == sa.bindparam("order_no"))
_SHIPPED_AND_ORDER = sa.select(
    sa.select(sa.func.count())
    .where(
        shipments.c.order_no == sa.bindparam("order_no"),
        shipments.c.id
        <= sa.select(shipments.c.id)
        .where(shipments.c.event_id == sa.bindparam("event_id"))
        .scalar_subquery(),
    )
    .scalar_subquery(),
    _ORDER_BODY.scalar_subquery(),
)


@dataclasses.dataclass
class _Shipped:
    """An order a batch shipped parcels of: its stored body and its shipments (event
    id → shipment id, in the order ingest stored them)."""

    body: Any = None
    shipments: dict[str, int] = dataclasses.field(default_factory=dict)

    def confirmed_by(self, event_id: str) -> int | None:
        """How many of the order's shipments were stored up to ``event_id``'s."""
        mine = self.shipments.get(event_id)
        return None if mine is None else sum(1 for i in self.shipments.values() if i <= mine)


#: Within a batch (:func:`_shipments_of_batch`): the orders it shipped parcels of;
#: None outside a batch.
_shipped_orders: contextvars.ContextVar[dict[str, _Shipped] | None] = contextvars.ContextVar(
    "shipped_orders", default=None
)


@batch_scope
@contextlib.contextmanager
def _shipments_of_batch(conn: Connection, payloads: Sequence[EventPayload]) -> Iterator[None]:
    """The bodies and the stored shipments of a batch's shipped orders, in two queries
    when the batch begins, instead of asking per shipment (:func:`_shipped`)."""
    order_nos = sorted({p.order_no[:64] for p in payloads if isinstance(p, ShipmentShipped)})
    if not order_nos:
        yield
        return
    bodies = order_bodies(conn, order_nos)
    known = {order_no: _Shipped(body=body) for order_no, body in bodies.items()}
    for start in range(0, len(order_nos), 500):
        chunk = {"order_nos": order_nos[start : start + 500]}
        for order_no, shipment_id, event_id in conn.execute(
            _shipments_query(conn.dialect.name), chunk
        ):
            known[order_no].shipments[event_id] = shipment_id
    token = _shipped_orders.set(known)
    try:
        yield
    finally:
        _shipped_orders.reset(token)


@functools.cache
def _shipments_query(dialect: str) -> sa.Select[Any]:
    query = sa.select(shipments.c.order_no, shipments.c.id, shipments.c.event_id)
    return by_keys(dialect, query, shipments.c.order_no, "order_nos")


@batch_scope
def _deadlines_met(
    conn: Connection, payloads: Sequence[EventPayload]
) -> AbstractContextManager[None]:
    """The deadlines a batch's packings and shipments meet, judged when it ends, with
    the bodies of its shipped orders read when it began (:func:`_shipments_of_batch`)."""
    known = _shipped_orders.get() or {}
    return meeting(conn, bodies={order_no: o.body for order_no, o in known.items()})


@reacts_to(ShipmentShipped.TYPE)
def _shipped(
    conn: Connection, row: RowMapping, shipped: ShipmentShipped, at: dt.datetime, now: dt.datetime
) -> None:
    order_no = shipped.order_no[:64]
    note_shipped(conn, order_no=order_no, now=now)
    known = (_shipped_orders.get() or {}).get(order_no)
    confirmed = known.confirmed_by(row["event_id"]) if known is not None else None
    if known is not None and confirmed is not None:
        body = known.body
    else:
        params = {"order_no": order_no, "event_id": row["event_id"]}
        confirmed, body = conn.execute(_SHIPPED_AND_ORDER, params).one()
    # Counted as when it was stored: more than the order's parcels is a double shipment.
    if confirmed > parcel_count_of(body, default=shipped.parcel_count):
        arm(conn, kind=DOUBLE, subject=order_no, due_at=min(at, now), keep_earlier=True)


@reacts_to(ProblemReported.TYPE)
def _problem(
    conn: Connection, row: RowMapping, problem: ProblemReported, at: dt.datetime, now: dt.datetime
) -> None:
    if problem.problem not in PROBLEMS:
        log.warning(
            "station %s reported an unknown problem %r with %s; not raised",
            row["station"],
            problem.problem,
            problem.order_no,
        )
        return
    arm(
        conn,
        kind=PROBLEM,
        subject=row["event_id"],
        due_at=min(at, now),
        data={
            "order_no": problem.order_no[:64],
            "problem": problem.problem,
            "note": problem.note,
            "operator": problem.operator,
            "station": row["station"],
            "at": at.isoformat(),
        },
    )


@reacts_to(DeviceState.TYPE)
def _device(
    conn: Connection, row: RowMapping, state: DeviceState, at: dt.datetime, now: dt.datetime
) -> None:
    if state.device != "printer":
        return
    station = row["station"]
    if state.state.lower() in PRINTER_OK:
        disarm(conn, kind=PRINTER, subject=station, skip_locked=True)
        fault = _open_fault(conn, station)
        if fault is not None:
            add_note(
                Watch(conn=conn, now=now, rules=WatchRules()),
                int(fault["id"]),
                entry="note",
                text=f"printer of {station} is {state.state} again at {when(at)}",
                by=station,
            )
        return
    # The fault's start counts: later fault states (no media, then cover open) keep it.
    arm(
        conn,
        kind=PRINTER,
        subject=station,
        due_at=at + PRINTER_FAULT_AFTER,
        keep_earlier=True,
        data={
            "since": at.isoformat(),
            "state": state.state,
            "detail": state.detail,
            "model": state.model,
            "serial": state.serial,
        },
    )


# --------------------------------------------------------------------------- the timers


def _parcel_count(conn: Connection, order_no: str, *, default: int) -> int:
    body = conn.execute(_ORDER_BODY, {"order_no": order_no}).scalar()
    return parcel_count_of(body, default=default)


def _open_fault(conn: Connection, station: str) -> RowMapping | None:
    return (
        conn.execute(
            sa.select(exceptions)
            .where(
                exceptions.c.type == "equipment_fault",
                exceptions.c.source_key.like(f"equipment_fault:{station}:printer:%"),
                exceptions.c.state.in_(OPEN_STATES),
            )
            .order_by(exceptions.c.id.desc())
        )
        .mappings()
        .first()
    )


@timer_kind(PROBLEM, rank=60)
def _raise_problem(watch: Watch, timer: Timer) -> None:
    data = timer.data
    kind = PROBLEMS[str(data["problem"])]
    order_no = str(data["order_no"])
    who = str(data.get("operator") or data["station"])
    words = "damaged goods" if kind == "damaged" else "out of stock"
    note = f": {data['note']}" if data.get("note") else ""
    text = f"{order_no}: {words}, reported at {data['station']} by {who}{note}"
    open_one = (
        watch.conn.execute(
            sa.select(exceptions.c.id).where(
                exceptions.c.type == kind,
                exceptions.c.order_no == order_no,
                exceptions.c.state.in_(OPEN_STATES),
            )
        )
        .scalars()
        .first()
    )
    if open_one is not None:
        add_note(watch, int(open_one), entry="note", text=f"reported again: {text}", by=who)
        return
    open_exception(
        watch,
        type=kind,
        order_no=order_no,
        description=text,
        found_by=who,
        found_at=dt.datetime.fromisoformat(str(data["at"])),
        source_key=f"{kind}:{order_no}:{timer.subject}",
    )


@timer_kind(DOUBLE, rank=60)
def _double_shipment(watch: Watch, timer: Timer) -> None:
    order_no = timer.subject
    rows = watch.conn.execute(
        sa.select(
            shipments.c.station,
            shipments.c.tracking_no,
            shipments.c.parcel_no,
            shipments.c.parcel_count,
        )
        .where(shipments.c.order_no == order_no)
        .order_by(shipments.c.id)
    ).all()
    expected = _parcel_count(watch.conn, order_no, default=rows[0].parcel_count if rows else 1)
    if len(rows) <= expected:
        return
    benches = sorted({r.station for r in rows})
    parcels = ", ".join(
        f"{r.station} parcel {r.parcel_no}/{r.parcel_count} {r.tracking_no or '(no tracking no)'}"
        for r in rows
    )
    text = (
        f"{order_no} ships in {expected} parcel{'s' if expected != 1 else ''} but "
        f"{len(rows)} were confirmed, by {', '.join(benches)}: {parcels}"
    )
    source = f"double_shipment:{order_no}"
    existing = find_by_source(watch.conn, source)
    if existing is None:
        opened = open_exception(
            watch,
            type="double_shipment",
            order_no=order_no,
            description=text,
            found_by="central",
            source_key=source,
        )
        if opened is not None:
            return
        existing = find_by_source(watch.conn, source)
    if existing is not None and existing["description"] != text:
        add_note(watch, int(existing["id"]), entry="note", text=f"more parcels: {text}")


@timer_kind(PRINTER, rank=60)
def _printer_fault(watch: Watch, timer: Timer) -> None:
    station = timer.subject
    data = timer.data
    since = dt.datetime.fromisoformat(str(data["since"]))
    device = " ".join(str(data.get(k) or "") for k in ("model", "serial")).strip()
    detail = f" ({data['detail']})" if data.get("detail") else ""
    text = (
        f"printer of {station}{' ' + device if device else ''} is {data['state']}{detail} "
        f"since {when(since)}, {int(PRINTER_FAULT_AFTER.total_seconds() // 60)} min and more"
    )
    fault = _open_fault(watch.conn, station)
    if fault is not None:
        add_note(watch, int(fault["id"]), entry="note", text=f"still: {text}")
        return
    open_exception(
        watch,
        type="equipment_fault",
        description=text,
        found_by=station,
        found_at=since,
        source_key=f"equipment_fault:{station}:printer:{since.isoformat()}",
    )
