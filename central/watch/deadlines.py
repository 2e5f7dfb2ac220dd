"""Deadlines (D1, D2): pack-by and ship-by, warned before, judged by the bench's clock.

At import every order gets ``pack_by`` and ``ship_by`` from the rule for its shop and
type (:func:`plan`), kept with the rule's version; the order carries them to the
stations. Each deadline is a row of ``deadlines`` and one timer (kind ``deadline``):

- at ``due - warn_before`` a ``warning`` (once; a tick that first sees a deadline
  already past sends the breach only);
- at ``due`` the breach: the order's one ``shipping_delay`` exception opens (a later
  breach of the same order is a history entry on it), naming a hold reason and the
  bench that may have done it while offline.

A deadline is met by what the bench recorded, at the time the bench recorded it
(:func:`central.timefix.event_time`), not when central heard: the pack deadline by the
first ``order.packed`` or ``shipment.shipped``, the ship deadline by the shipment of
its last parcel. A deadline met in time after central had declared the breach is a
false alarm: the exception is resolved automatically with that explanation. Cancelled
and refunded orders' deadlines stop; held ones keep running.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central import timefix
from central.db import (
    READ_ONLY,
    by_keys,
    each_key,
    events,
    orders,
    shipments,
    station_boots,
    stations,
)
from central.watch import escalation
from central.watch.alerts import queue_alert
from central.watch.context import Watch, when
from central.watch.exceptions import (
    OPEN_STATES,
    add_note,
    dedup_key,
    find_by_source,
    open_exception,
    reopen_exception,
    resolve_exception,
)
from central.watch.rules import DeadlineRules, WatchRules
from central.watch.tables import deadlines, exceptions, timers
from central.watch.timers import Timer, arm, arm_many, disarm, disarm_many, timer_kind
from sync.order import Order, OrderStatus, parcel_count_of

__all__ = [
    "STATES",
    "Met",
    "Plan",
    "held_for",
    "list_deadlines",
    "meeting",
    "note_packed",
    "note_shipped",
    "note_station",
    "note_stations",
    "order_bodies",
    "plan",
    "reevaluate_order",
    "sync_order",
]

log = logging.getLogger(__name__)

Which = Literal["pack", "ship"]
STATES = ("pending", "warned", "breached", "met", "stopped")
STOPPING = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})
DEADLINE, FALSE_ALARM = "deadline", "deadline.false_alarm"
VERB = {"pack": "packed", "ship": "shipped"}
#: A step this late says when it was due.
LATE = dt.timedelta(minutes=1)


# --------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    """An order's deadlines and the rule (with its version) they come from."""

    pack_by: dt.datetime
    ship_by: dt.datetime
    warn_before: dt.timedelta
    rule: dict[str, Any]


def _rule_for(order: Order, rules: DeadlineRules, stored: dict[str, Any] | None) -> dict[str, Any]:
    shop, kind = order.shop, str(order.order_type)
    if (
        stored
        and not stored.get("fallback")  # planned without its time: plan again with it
        and stored.get("shop") == shop
        and stored.get("order_type") == kind
    ):
        return stored  # the rule the order started with, even if the file changed since
    _, rule = rules.effective(shop=shop, order_type=kind)
    return {**rule, "shop": shop, "order_type": kind}


def plan(
    order: Order,
    *,
    rules: DeadlineRules,
    first_seen: dt.datetime,
    stored_rule: dict[str, Any] | None = None,
) -> Plan:
    """``pack_by`` and ``ship_by`` of ``order``.

    The rule is the one stored with the order (``stored_rule``) while its shop and type
    stay the same, else the current rule. Deadlines count from the rule's time:
    ``paid_at`` or ``promised_ship_at``. An order without that time counts as normal
    from ``paid_at``, and without ``paid_at`` from when central first saw it
    (``first_seen``).
    """
    rule = _rule_for(order, rules, stored_rule)
    wanted = str(rule["from"])
    start = getattr(order, wanted, None)
    if start is None and wanted != "paid_at":
        _, normal = rules.effective(shop=order.shop, order_type="normal")
        rule = {
            **normal,
            "shop": order.shop,
            "order_type": str(order.order_type),
            "fallback": f"no {wanted}: counted as a normal order",
        }
        start = order.paid_at
    if start is None:
        start = first_seen
    return Plan(
        pack_by=start + dt.timedelta(seconds=rule["pack_within_s"]),
        ship_by=start + dt.timedelta(seconds=rule["ship_within_s"]),
        warn_before=dt.timedelta(seconds=rule["warn_before_s"]),
        rule=rule,
    )


def _subject(order_no: str, which: str) -> str:
    return f"{order_no}:{which}"


def sync_order(
    conn: Connection,
    *,
    order_no: str,
    status: str,
    pack_by: dt.datetime,
    ship_by: dt.datetime,
    warn_before: dt.timedelta,
    now: dt.datetime,
) -> None:
    """Bring the order's deadline rows and timers in line with an import.

    New deadlines start ``pending`` with their timer at the warning; moved ones are
    re-armed; a cancelled or refunded order's stop, and start again if it comes back.
    A pack deadline at or after the ship deadline is not watched on its own (shipping
    meets both).
    """
    subjects = [_subject(order_no, w) for w in ("pack", "ship")]
    # Timer rows first, then deadline rows: the order in which the tick takes them, so
    # an import and a tick never wait on each other in a circle.
    conn.execute(
        sa.select(timers.c.id)
        .where(timers.c.kind == DEADLINE, timers.c.subject.in_(subjects))
        .with_for_update()
    ).all()
    held = {
        r.which: r
        for r in conn.execute(
            sa.select(deadlines).where(deadlines.c.order_no == order_no).with_for_update()
        )
    }
    stopping = status in STOPPING
    for which, due in (("pack", pack_by), ("ship", ship_by)):
        row = held.get(which)
        watched = not (which == "pack" and pack_by >= ship_by)
        warn = due - warn_before
        subject = _subject(order_no, which)
        if row is None:
            if not watched:
                continue
            state = "stopped" if stopping else "pending"
            conn.execute(
                deadlines.insert().values(
                    order_no=order_no,
                    which=which,
                    due_at=due,
                    warn_at=warn,
                    state=state,
                    updated_at=now,
                )
            )
            if not stopping:
                arm(conn, kind=DEADLINE, subject=subject, due_at=min(warn, due))
            continue
        values: dict[str, Any] = {"due_at": due, "warn_at": warn, "updated_at": now}
        state = row.state
        if (stopping or not watched) and state in ("pending", "warned"):
            values["state"] = "stopped"
            disarm(conn, kind=DEADLINE, subject=subject)
        elif not stopping and watched and state == "stopped":
            values["state"] = state = "pending"
            arm(conn, kind=DEADLINE, subject=subject, due_at=min(warn, due))
        elif state in ("pending", "warned") and (row.due_at != due or row.warn_at != warn):
            arm(
                conn,
                kind=DEADLINE,
                subject=subject,
                due_at=min(warn, due) if state == "pending" else due,
            )
        elif state == "met" and row.met_at is not None and row.due_at != due and row.met_at > due:
            # A moved deadline may change the verdict on an order already done.
            arm(conn, kind=DEADLINE, subject=subject, due_at=due, keep_earlier=True)
        conn.execute(
            deadlines.update()
            .where(deadlines.c.order_no == order_no, deadlines.c.which == which)
            .values(values)
        )


# --------------------------------------------------------------------------- the timer


def _order_row(conn: Connection, order_no: str) -> sa.RowMapping | None:
    return (
        conn.execute(
            sa.select(orders.c.status, orders.c.blocked_reasons, orders.c.body).where(
                orders.c.order_no == order_no
            )
        )
        .mappings()
        .first()
    )


# Built once: ingest locks deadlines for every packed and shipped event.
_LOCK = (
    sa.select(deadlines)
    .where(
        deadlines.c.order_no == sa.bindparam("order_no"),
        deadlines.c.which == sa.bindparam("which"),
    )
    .with_for_update()
)


@functools.cache
def _lock_many(dialect: str) -> sa.Select[Any]:
    """The deadlines of a list of orders, locked in the list's order."""
    query = sa.select(deadlines).order_by(deadlines.c.which).with_for_update()
    return by_keys(dialect, query, deadlines.c.order_no, "order_nos")


# The deadline rows of the orders of one reactor pass, locked and read by one query
# (:func:`held_for`): (order_no, which) → row, None for a deadline the order has not.
# An entry goes as soon as anything here writes that order's deadlines.
_held: contextvars.ContextVar[dict[tuple[str, str], sa.RowMapping | None] | None] = (
    contextvars.ContextVar("deadlines_held", default=None)
)


@contextlib.contextmanager
def held_for(conn: Connection, order_nos: Collection[str]) -> Iterator[None]:
    """Lock and read the deadlines of ``order_nos`` in one query (in a fixed order, as
    two workers must take them), for the reactions of one batch run inside this block:
    each then reads its deadline from here instead of asking the database again."""
    wanted = sorted(set(order_nos))
    held: dict[tuple[str, str], sa.RowMapping | None] = {
        (o, which): None for o in wanted for which in ("pack", "ship")
    }
    if wanted:
        lock = _lock_many(conn.dialect.name)
        for row in conn.execute(lock, {"order_nos": wanted}).mappings():
            held[(row["order_no"], row["which"])] = row
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)


def _forget(order_no: str) -> None:
    """The order's deadlines are being written: read them from the database again."""
    held = _held.get()
    if held is not None:
        held.pop((order_no, "pack"), None)
        held.pop((order_no, "ship"), None)


def _lock(conn: Connection, order_no: str, which: str) -> sa.RowMapping | None:
    held = _held.get()
    if held is not None and (order_no, which) in held:
        return held[(order_no, which)]
    return conn.execute(_LOCK, {"order_no": order_no, "which": which}).mappings().first()


def _set(conn: Connection, order_no: str, which: str, **values: Any) -> None:
    _forget(order_no)
    conn.execute(
        deadlines.update()
        .where(deadlines.c.order_no == order_no, deadlines.c.which == which)
        .values(**values)
    )


def _span(delta: dt.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def _why_waiting(order: sa.RowMapping | None) -> str:
    if order is None:
        return ""
    reasons = [str(r) for r in order["blocked_reasons"] or []]
    return "; " + "; ".join(reasons) if reasons else ""


def _offline_note(watch: Watch, d: sa.RowMapping, verb: str) -> str:
    query = sa.select(stations.c.station, stations.c.last_seen, stations.c.created_at).where(
        stations.c.online.is_(False)
    )
    if d["station"]:
        query = query.where(stations.c.station == d["station"])
    elif watch.site is not None:
        query = query.where(stations.c.site == watch.site)
    gone = watch.conn.execute(query.order_by(stations.c.station)).all()
    if not gone:
        return ""
    names = ", ".join(
        f"{s.station} offline since {when(s.last_seen or s.created_at)}" for s in gone
    )
    it = "it" if len(gone) == 1 else "one of them"
    return f"; {names}; {it} may have {verb} it"


def _route(watch: Watch) -> tuple[str, str, str, str]:
    route = watch.rules.route("shipping_delay")
    policy = watch.rules.policy(route.policy_name)
    level = policy.levels[0]
    return route.dept, str(route.severity), level.name, level.audience(route.dept)


@timer_kind(DEADLINE, rank=10)
def _deadline(watch: Watch, timer: Timer) -> None:
    order_no, which = timer.subject.rsplit(":", 1)
    d = _lock(watch.conn, order_no, which)
    if d is None or d["state"] in ("stopped", "breached"):
        return
    order = _order_row(watch.conn, order_no)
    if order is not None and order["status"] in STOPPING:
        _set(watch.conn, order_no, which, state="stopped", updated_at=watch.now)
        return
    due: dt.datetime = d["due_at"]
    if d["state"] == "met":
        if d["met_at"] is not None and d["met_at"] > due:
            _breach(watch, d, order, late=True)
        return
    if watch.now >= due:
        _breach(watch, d, order, late=False)
    elif watch.now >= d["warn_at"] and d["state"] == "pending":
        _warn(watch, d, order)
        arm(watch.conn, kind=DEADLINE, subject=timer.subject, due_at=due)
    else:  # moved since it was armed
        step = d["warn_at"] if d["state"] == "pending" else due
        arm(watch.conn, kind=DEADLINE, subject=timer.subject, due_at=step)


def _warn(watch: Watch, d: sa.RowMapping, order: sa.RowMapping | None) -> None:
    order_no, which, due = d["order_no"], d["which"], d["due_at"]
    dept, severity, level_name, to = _route(watch)
    late = f" (warning due {when(d['warn_at'])})" if watch.now - d["warn_at"] > LATE else ""
    queue_alert(
        watch,
        dedup_key=f"deadline:{order_no}:{which}",
        kind="warning",
        level=1,
        level_name=level_name,
        dept=dept,
        to=to,
        severity=severity,
        message=f"{order_no} must be {VERB[which]} by {when(due)}, in {_span(due - watch.now)}"
        f"{late}{_why_waiting(order)}",
        due_at=due,
        order_no=order_no,
    )
    _set(watch.conn, order_no, which, state="warned", warned_at=watch.now, updated_at=watch.now)


def _breach(watch: Watch, d: sa.RowMapping, order: sa.RowMapping | None, *, late: bool) -> None:
    order_no, which, due = d["order_no"], d["which"], d["due_at"]
    verb = VERB[which]
    if late:
        message = (
            f"{order_no} was {verb} late: at {when(d['met_at'])} at {d['met_station']}, "
            f"its deadline was {when(due)}"
        )
    else:
        message = (
            f"{order_no} was not {verb} by its deadline {when(due)}{_why_waiting(order)}"
            f"{_offline_note(watch, d, verb)}"
        )
    source = f"shipping_delay:{order_no}"
    existing = find_by_source(watch.conn, source)
    exception_id: int | None = None
    if existing is None:
        exception_id = open_exception(
            watch,
            type="shipping_delay",
            order_no=order_no,
            description=message,
            found_by="central",
            due_at=due,
            source_key=source,
        )
        if exception_id is None:  # opened by another process a moment ago
            existing = find_by_source(watch.conn, source)
    if existing is not None:
        exception_id = int(existing["id"])
        if existing["state"] in OPEN_STATES:
            add_note(watch, exception_id, entry="breach", text=message)
            alarm = escalation.active(watch.conn, dedup_key(exception_id), lock=True)
            # Both deadlines found missed by one tick: the opened alert says enough.
            if alarm is not None and alarm.opened_at != watch.now:
                queue_alert(
                    watch,
                    dedup_key=alarm.dedup_key,
                    kind="repeat",
                    level=alarm.level,
                    level_name=alarm.level_name,
                    dept=alarm.dept,
                    to=alarm.audience(),
                    severity=alarm.severity,
                    message=f"Exception #{exception_id}, also: {message}",
                    due_at=due,
                    order_no=order_no,
                    exception_id=exception_id,
                )
        else:
            reopen_exception(watch, exception_id, text=message)
    _set(
        watch.conn,
        order_no,
        which,
        state="breached",
        breached_at=watch.now,
        exception_id=exception_id,
        updated_at=watch.now,
    )


@timer_kind(FALSE_ALARM, rank=5)
def _false_alarm(watch: Watch, timer: Timer) -> None:
    order_no, which = timer.subject.rsplit(":", 1)
    d = _lock(watch.conn, order_no, which)
    if d is None or d["state"] != "breached" or d["met_at"] is None or d["met_at"] > d["due_at"]:
        return
    _set(watch.conn, order_no, which, state="met", updated_at=watch.now)
    exception_id = d["exception_id"]
    if exception_id is None:
        return
    verb = VERB[which]
    outcome = (
        f"{order_no} was {verb} at {d['met_station']} at {when(d['met_at'])} by the bench's "
        f"clock, before its deadline {when(d['due_at'])}; central heard of it at "
        f"{when(d['heard_at'])}"
    )
    still = watch.conn.execute(
        sa.select(deadlines.c.which).where(
            deadlines.c.order_no == order_no,
            deadlines.c.exception_id == exception_id,
            deadlines.c.state == "breached",
        )
    ).all()
    state = watch.conn.execute(
        sa.select(exceptions.c.state).where(exceptions.c.id == exception_id)
    ).scalar()
    if not still and state in OPEN_STATES:
        resolve_exception(
            watch,
            exception_id,
            cause="false alarm: the bench met the deadline while central could not hear it",
            action="none needed: resolved automatically",
            outcome=outcome,
            by="central",
        )
    else:
        add_note(watch, int(exception_id), entry="false_alarm", text=f"false alarm: {outcome}")


# --------------------------------------------------------------------------- meeting


@dataclasses.dataclass(frozen=True, kw_only=True)
class Met:
    """When (by the bench's clock), where and by which event a deadline was met."""

    at: dt.datetime
    station: str
    event_id: str


# Built once (they run for every order packed and shipped): an event's envelope with
# the clock offset of its boot, when central knows it (timefix.event_time in the query).
_WITH_OFFSET = events.outerjoin(
    station_boots,
    sa.and_(
        station_boots.c.station == events.c.station, station_boots.c.boot_id == events.c.boot_id
    ),
)
_EVENT_MET = (
    sa.select(events.c.station, events.c.at_wall, events.c.at_mono, station_boots.c.mono_offset)
    .select_from(_WITH_OFFSET)
    .where(events.c.event_id == sa.bindparam("met_event"))
)


@functools.cache
def _parcels_query(dialect: str) -> sa.Select[Any]:
    query = sa.select(
        shipments.c.order_no,
        shipments.c.parcel_no,
        shipments.c.event_id,
        events.c.station,
        events.c.at_wall,
        events.c.at_mono,
        station_boots.c.mono_offset,
    ).select_from(shipments.join(_WITH_OFFSET, events.c.event_id == shipments.c.event_id))
    return by_keys(dialect, query, shipments.c.order_no, "parcels_orders")


@functools.cache
def _bodies_query(dialect: str) -> sa.Select[Any]:
    order_no = each_key(dialect, "body_orders", orders.c.order_no.type).c.value
    body = sa.select(orders.c.body).where(orders.c.order_no == order_no).scalar_subquery()
    return sa.select(order_no, body)


#: Orders per query when a batch's parcels or parcel counts are read.
_CHUNK = 500


def _true_time(row: Any) -> dt.datetime:
    """:func:`central.timefix.event_time` of a row that carries its boot's offset."""
    return timefix.corrected_time(row.mono_offset, at_wall=row.at_wall, at_mono=row.at_mono)


def _event_met(conn: Connection, event_id: str) -> Met | None:
    row = conn.execute(_EVENT_MET, {"met_event": event_id}).first()
    if row is None:
        return None
    return Met(at=_true_time(row), station=row.station, event_id=event_id)


def _parcels_of(conn: Connection, order_nos: Collection[str]) -> dict[str, list[tuple[int, Met]]]:
    """Each order's shipments: (parcel no, when, where and by which event)."""
    found: dict[str, list[tuple[int, Met]]] = {}
    wanted = sorted(order_nos)
    for start in range(0, len(wanted), _CHUNK):
        chunk = {"parcels_orders": wanted[start : start + _CHUNK]}
        for r in conn.execute(_parcels_query(conn.dialect.name), chunk):
            met = Met(at=_true_time(r), station=r.station, event_id=r.event_id)
            found.setdefault(r.order_no, []).append((int(r.parcel_no), met))
    return found


def order_bodies(conn: Connection, order_nos: Collection[str]) -> dict[str, Any]:
    """Each order's stored body (None for an order central does not hold), one query
    per 500 orders."""
    bodies: dict[str, Any] = {}
    wanted = sorted(order_nos)
    for start in range(0, len(wanted), _CHUNK):
        chunk = {"body_orders": wanted[start : start + _CHUNK]}
        for order_no, body in conn.execute(_bodies_query(conn.dialect.name), chunk):
            bodies[order_no] = body
    return bodies


def _parcel_counts(conn: Connection, order_nos: Collection[str]) -> dict[str, int]:
    """How many parcels each order ships in (1 for an order central does not hold)."""
    return {o: parcel_count_of(body) for o, body in order_bodies(conn, order_nos).items()}


def _last_parcel(parcels: list[tuple[int, Met]], count: int) -> Met | None:
    """When the order's last parcel shipped (each parcel counts at its first
    shipment), or None while one of its ``count`` parcels has not."""
    first: dict[int, Met] = {}
    for parcel_no, met in parcels:
        if parcel_no not in first or met.at < first[parcel_no].at:
            first[parcel_no] = met
    if any(n not in first for n in range(1, count + 1)):
        return None
    return max((first[n] for n in range(1, count + 1)), key=lambda m: m.at)


def _ship_met(conn: Connection, order_no: str) -> Met | None:
    """When the order's last parcel shipped: each parcel counts at its first shipment."""
    parcels = _parcels_of(conn, [order_no]).get(order_no, [])
    return _last_parcel(parcels, _parcel_counts(conn, [order_no])[order_no])


def _pack_met(conn: Connection, order_no: str, packed_event: str | None) -> Met | None:
    """The first of the order's ``order.packed`` (``packed_event``) and its shipments."""
    found = [m for _, m in _parcels_of(conn, [order_no]).get(order_no, [])]
    if packed_event:
        met = _event_met(conn, packed_event)
        if met is not None:
            found.append(met)
    return min(found, key=lambda m: m.at) if found else None


@dataclasses.dataclass
class _Writes:
    """What judging met deadlines writes, collected so that a batch's deadlines are
    written set-wise (:func:`meeting`): a statement per kind of write, not per order."""

    met: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    disarm: set[str] = dataclasses.field(default_factory=set)
    late: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    false_alarms: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    notes: list[tuple[int, str]] = dataclasses.field(default_factory=list)

    def write(self, conn: Connection, now: dt.datetime) -> None:
        """The timers first, then the deadline rows, then the notes (in the order the
        deadlines were judged)."""
        if self.disarm:
            disarm_many(conn, kind=DEADLINE, subjects=self.disarm, skip_locked=True)
        for kind, due in ((DEADLINE, self.late), (FALSE_ALARM, self.false_alarms)):
            if due:
                arm_many(conn, kind=kind, due={s: (at, {}) for s, at in due.items()},
                         keep_earlier=True)  # fmt: skip
        if self.met:
            conn.execute(_MET, self.met)
        if self.notes:
            watch = Watch(conn=conn, now=now, rules=WatchRules())
            for exception_id, text in self.notes:
                add_note(watch, exception_id, entry="note", text=text)


def _apply(d: sa.RowMapping, met: Met, now: dt.datetime, writes: _Writes) -> None:
    """Record ``met`` on deadline ``d`` and act on the verdict it gives (into
    ``writes``)."""
    order_no, which, due, state = d["order_no"], d["which"], d["due_at"], d["state"]
    subject = _subject(order_no, which)
    known = d["met_at"]
    if known == met.at and d["met_event_id"] == met.event_id:
        return
    values: dict[str, Any] = {
        "met_order": order_no,
        "met_which": which,
        "met_at": met.at,
        "met_station": met.station,
        "met_event_id": met.event_id,
        "heard_at": d["heard_at"] or now,
        "updated_at": now,
        "state": state,
    }
    on_time = met.at <= due
    if state in ("pending", "warned", "met"):
        values["state"] = "met"
        if on_time:
            writes.disarm.add(subject)
        else:  # late: the timer opens the exception (at once, if its time is past)
            writes.late[subject] = due
    elif state == "breached":
        if on_time:
            # Judged by the bench's clock, it was in time: a false alarm, resolved by the
            # tick (which knows the rules and the site) as soon as it runs.
            writes.false_alarms[subject] = min(d["breached_at"] or now, now)
        elif known is None and d["exception_id"] is not None:
            writes.notes.append(
                (
                    int(d["exception_id"]),
                    f"{order_no} {VERB[which]} at {met.station} at {when(met.at)}, "
                    f"{_span(met.at - due)} after its deadline",
                )
            )
    _forget(order_no)
    writes.met.append(values)


def _apply_now(conn: Connection, d: sa.RowMapping, met: Met, now: dt.datetime) -> None:
    """:func:`_apply` and its writes, at once."""
    writes = _Writes()
    _apply(d, met, now, writes)
    writes.write(conn, now)


#: The SET clause comes from the parameters' keys.
_MET = deadlines.update().where(
    deadlines.c.order_no == sa.bindparam("met_order"),
    deadlines.c.which == sa.bindparam("met_which"),
)


def note_packed(
    conn: Connection, *, order_no: str, station: str, event_id: str, at: dt.datetime,
    now: dt.datetime,
) -> None:  # fmt: skip
    """The bench recorded ``order.packed`` (``at`` by its clock): the pack deadline,
    judged when the :func:`meeting` it is noted in ends."""
    with _noting(conn, now) as pending:
        pending.packed.setdefault(order_no, []).append(
            Met(at=at, station=station, event_id=event_id)
        )


def note_shipped(conn: Connection, *, order_no: str, now: dt.datetime) -> None:
    """A parcel of the order shipped: the pack deadline, and the ship deadline once its
    last parcel has, judged when the :func:`meeting` it is noted in ends."""
    with _noting(conn, now) as pending:
        pending.shipped.add(order_no)


@contextlib.contextmanager
def _noting(conn: Connection, now: dt.datetime) -> Iterator[_Meeting]:
    """The :func:`meeting` under way, or one for this event alone."""
    with contextlib.ExitStack() as stack:
        if _meeting.get() is None:
            stack.enter_context(meeting(conn))
        pending = _meeting.get()
        assert pending is not None
        pending.now = now
        yield pending


@dataclasses.dataclass
class _Meeting:
    """What one batch's reactions noted: its packed events by order, in seq order, and
    the orders it shipped parcels of."""

    packed: dict[str, list[Met]] = dataclasses.field(default_factory=dict)
    shipped: set[str] = dataclasses.field(default_factory=set)
    #: Central's time of the batch (one for all its events).
    now: dt.datetime | None = None


_meeting: contextvars.ContextVar[_Meeting | None] = contextvars.ContextVar(
    "deadlines_meeting", default=None
)


@contextlib.contextmanager
def meeting(conn: Connection, *, bodies: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Judge the deadlines that the packings and shipments noted inside this block
    (one reactor pass over a station's events) met, set-wise when it ends without an
    error: one query for
    their orders' parcels, one for their parcel counts (none when ``bodies`` holds the
    stored bodies of those orders), and a statement per kind of write, instead of
    about ten statements per order (bench/ingest.py).

    The verdict is the batch's as a whole, which is what one transaction commits: each
    deadline is judged once, by the earliest packing or shipment (pack) and the last
    parcel's first shipment (ship) of everything recorded, as judging each event in
    turn ends. A deadline met late and then, in the same batch, in time is not first
    noted as late. The shipment rows of these events are stored already (by ingest).
    """
    pending = _Meeting()
    token = _meeting.set(pending)
    try:
        yield
    finally:
        _meeting.reset(token)
    if pending.now is not None:
        _meet(conn, pending, pending.now, bodies or {})


def _meet(conn: Connection, pending: _Meeting, now: dt.datetime, bodies: Mapping[str, Any]) -> None:
    writes = _Writes()
    held = {
        (o, which): d
        for o in sorted(pending.packed.keys() | pending.shipped)
        for which in ("pack", "ship")
        if (d := _lock(conn, o, which)) is not None
    }
    shipped = sorted({o for o, _ in held if o in pending.shipped})
    parcels = _parcels_of(conn, shipped)
    counted = [o for o in shipped if (o, "ship") in held]
    counts = {o: parcel_count_of(bodies[o]) for o in counted if o in bodies}
    counts |= _parcel_counts(conn, [o for o in counted if o not in bodies])
    for (order_no, which), d in held.items():
        if which == "pack":
            found = list(pending.packed.get(order_no, ()))
            found += [m for _, m in parcels.get(order_no, ())]
            met = min(found, key=lambda m: m.at) if found else None
            if met is not None and (d["met_at"] is None or met.at < d["met_at"]):
                _apply(d, met, now, writes)
        elif order_no in pending.shipped:
            met = _last_parcel(parcels.get(order_no, []), counts.get(order_no, 1))
            if met is not None:
                _apply(d, met, now, writes)
    writes.write(conn, now)


_NOTE_STATION = (
    deadlines.update()
    .where(
        deadlines.c.order_no == sa.bindparam("noted_order"),
        sa.or_(deadlines.c.station.is_(None), deadlines.c.station != sa.bindparam("noted_station")),
    )
    .values(station=sa.bindparam("noted_station"))
)


def note_station(conn: Connection, *, order_no: str, station: str) -> None:
    """``station`` recorded something about the order: it is the one that may have
    packed or shipped it while offline."""
    _forget(order_no)
    conn.execute(_NOTE_STATION, {"noted_order": order_no, "noted_station": station[:64]})


def note_stations(conn: Connection, *, order_nos: Collection[str], station: str) -> None:
    """:func:`note_station` for many orders (one batch's) in one executemany: an
    update by key each, which PostgreSQL's driver sends in one pipeline."""
    for order_no in order_nos:
        _forget(order_no)
    if order_nos:
        noted = station[:64]
        conn.execute(
            _NOTE_STATION, [{"noted_order": o, "noted_station": noted} for o in sorted(order_nos)]
        )


def reevaluate_order(conn: Connection, order_no: str, now: dt.datetime) -> None:
    """Judge the order's deadlines again from what its benches recorded.

    For a clock correction that arrives later: each met time is recomputed through
    :func:`central.timefix.event_time`. Only a changed verdict (in time ↔ late) acts: a
    breach becomes a false alarm (resolved by the next tick), or a deadline thought met
    in time opens its exception.
    """
    for which in ("pack", "ship"):
        d = _lock(conn, order_no, which)
        if d is None or d["met_at"] is None:
            continue
        met = (
            _pack_met(conn, order_no, d["met_event_id"])
            if which == "pack"
            else _ship_met(conn, order_no)
        )
        if met is None:
            continue
        was_on_time = d["met_at"] <= d["due_at"]
        if (met.at <= d["due_at"]) == was_on_time:
            # Same verdict: keep the better time, act on nothing.
            _set(conn, order_no, which, met_at=met.at, met_station=met.station,
                 met_event_id=met.event_id)  # fmt: skip
            continue
        _apply_now(conn, d, met, now)


# --------------------------------------------------------------------------- reading


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def list_deadlines(
    engine: Engine, *, state: str | None = None, order_no: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Deadlines by due time, soonest first, with their order's shop, type and status.

    ``state``: ``pending``, ``warned`` (about to breach), ``breached``, ``met`` or
    ``stopped``.
    """
    query = (
        sa.select(
            deadlines,
            orders.c.shop,
            orders.c.order_type,
            orders.c.status,
            orders.c.blocked_reasons,
            orders.c.deadline_rule,
        )
        .join(orders, orders.c.order_no == deadlines.c.order_no)
        .order_by(deadlines.c.due_at, deadlines.c.order_no, deadlines.c.which)
        .limit(limit)
    )
    if state is not None:
        query = query.where(deadlines.c.state == state)
    if order_no is not None:
        query = query.where(deadlines.c.order_no == order_no)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for r in rows:
        rule = r["deadline_rule"] or {}
        out.append(
            {
                "order_no": r["order_no"],
                "which": r["which"],
                "due_at": _iso(r["due_at"]),
                "warn_at": _iso(r["warn_at"]),
                "state": r["state"],
                "warned_at": _iso(r["warned_at"]),
                "breached_at": _iso(r["breached_at"]),
                "met_at": _iso(r["met_at"]),
                "met_station": r["met_station"],
                "on_time": None if r["met_at"] is None else r["met_at"] <= r["due_at"],
                "station": r["station"],
                "exception_id": r["exception_id"],
                "shop": r["shop"],
                "order_type": r["order_type"],
                "status": r["status"],
                "blocked_reasons": list(r["blocked_reasons"] or []),
                "rule": rule.get("rule"),
                "rule_version": rule.get("version"),
            }
        )
    return out
