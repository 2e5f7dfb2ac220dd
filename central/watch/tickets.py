"""After-sales tickets (D7): complaints, returns, exchanges and reissues of an order.

A ticket is routed by its category to a department (``[tickets]``, defaults in
:data:`~central.watch.rules.DEFAULT_TICKET_ROUTES`) and opens an alarm under the
``ticket`` escalation policy: the ``opened`` alert goes to the department at once, it
repeats until someone acknowledges or responds, and the first response is due within
10 minutes — without one the ticket climbs to the department head, then management,
exactly as an exception without a plan does (same timers, same alert outbox). Its states:

    open → responded → closed

Responding (the first one acknowledges and stops the climb) and follow-ups are history
entries; closing needs the customer's confirmation in words and sends ``resolved``. A
bench's return inspection (``return.inspected``) is written into the history of the
order's open ``return`` ticket. ``ticket_history`` is append-only in the database.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import READ_ONLY
from central.watch import escalation
from central.watch.context import Watch, history_entries, iso, when
from central.watch.escalation import Escalation
from central.watch.exceptions import (
    ExceptionNotFound,
    ExceptionRefused,
    NotAllowed,
    customer_of,
)
from central.watch.reactions import reacts_to
from central.watch.rules import EscalationPolicy, allowed_to_ack, topic_word
from central.watch.tables import ticket_history, tickets
from sync.events import ReturnInspected

__all__ = [
    "CATEGORIES",
    "OPEN_STATES",
    "STATES",
    "TicketNotFound",
    "TicketRefused",
    "acknowledge_ticket",
    "close_ticket",
    "dedup_key",
    "follow_up",
    "list_tickets",
    "note_return",
    "open_ticket",
    "respond",
    "ticket_detail",
]

log = logging.getLogger(__name__)

CATEGORIES = ("complaint", "return", "exchange", "reissue")
STATES = ("open", "responded", "closed")
#: States in which a ticket still needs someone.
OPEN_STATES = ("open", "responded")
#: The escalation policy of tickets (``[escalation.ticket]`` changes it).
POLICY = "ticket"
TEXT_MAX = 2000


class TicketNotFound(ExceptionNotFound):
    """No ticket with that id."""


class TicketRefused(ExceptionRefused):
    """A step the ticket's state or the input does not allow; ``str()`` says why."""


def dedup_key(ticket_id: int) -> str:
    """The ``dedup_key`` of a ticket's alerts."""
    return f"ticket:{ticket_id}"


def _clean(value: str | None, what: str, *, limit: int = TEXT_MAX) -> str:
    text = " ".join(str(value or "").split())
    if not text:
        raise TicketRefused(f"{what} must not be empty")
    return text[:limit]


def _history(
    watch: Watch,
    ticket_id: int,
    *,
    entry: str,
    state: str,
    by: str,
    text: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    watch.conn.execute(
        ticket_history.insert().values(
            ticket_id=ticket_id,
            at=watch.now,
            by=by[:64],
            entry=entry,
            state=state,
            text=text[:TEXT_MAX],
            data=data,
        )
    )


def _update(watch: Watch, ticket_id: int, **values: Any) -> None:
    watch.conn.execute(
        tickets.update().where(tickets.c.id == ticket_id).values(updated_at=watch.now, **values)
    )


def _lock(watch: Watch, ticket_id: int) -> sa.RowMapping:
    row = (
        watch.conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise TicketNotFound(f"no ticket #{ticket_id}")
    return row


def _alarm(watch: Watch, ticket_id: int) -> Escalation | None:
    return escalation.active(watch.conn, dedup_key(ticket_id), lock=True)


def open_ticket(
    watch: Watch,
    *,
    category: str,
    description: str,
    by: str,
    order_no: str | None = None,
    dept: str | None = None,
    severity: str = "general",
) -> int:
    """Open a ticket and send its ``opened`` alert to the department; its id."""
    if category not in CATEGORIES:
        raise TicketRefused(
            f"unknown ticket category {category!r}; the categories are {', '.join(CATEGORIES)}"
        )
    if severity not in ("general", "major"):
        raise TicketRefused(f"severity must be general or major, not {severity!r}")
    department = watch.rules.tickets.get(category, "customer_service")
    if dept is not None:
        try:
            department = topic_word(dept.strip())
        except ValueError as exc:
            raise TicketRefused(f"dept {exc}") from None
    text = _clean(description, "description")
    who = _clean(by, "by (who opens it)", limit=64)
    policy: EscalationPolicy = watch.rules.policy(POLICY)
    respond_within = policy.levels[1].after if len(policy.levels) > 1 else dt.timedelta(0)
    respond_by = watch.now + respond_within
    values: dict[str, Any] = {
        "category": category,
        "order_no": order_no,
        "customer": customer_of(watch.conn, order_no),
        "description": text,
        "dept": department,
        "severity": severity,
        "state": "open",
        "level": 1,
        "policy": policy.model_dump(mode="json"),
        "opened_at": watch.now,
        "opened_by": who,
        "respond_by": respond_by,
        "updated_at": watch.now,
    }
    ticket_id = int(
        watch.conn.execute(tickets.insert().values(values).returning(tickets.c.id)).scalar_one()
    )
    _history(watch, ticket_id, entry="opened", state="open", by=who, text=text)
    about = f" for {order_no}" if order_no else ""
    escalation.start(
        watch,
        dedup_key=dedup_key(ticket_id),
        subject=f"ticket:{ticket_id}",
        title=f"ticket #{ticket_id} {category}{about}: {text}",
        dept=department,
        severity=severity,
        policy=policy,
        message=f"Ticket #{ticket_id} opened ({category}{about}, {department}); first response "
        f"due by {when(respond_by)}: {text}",
        order_no=order_no,
        due_at=respond_by,
    )
    return ticket_id


def acknowledge_ticket(
    watch: Watch, ticket_id: int, *, by: str, check_allowed: bool = False
) -> None:
    """``by`` saw it: its alert stops repeating (the response clock still runs)."""
    row = _lock(watch, ticket_id)
    who = _clean(by, "by (who acknowledges)", limit=64)
    if check_allowed and not allowed_to_ack(row["policy"], who):
        raise NotAllowed(f"{who} may not acknowledge ticket #{ticket_id}")
    if row["acknowledged_at"] is not None:
        raise TicketRefused(
            f"ticket #{ticket_id} was acknowledged already by {row['acknowledged_by']} "
            f"at {when(row['acknowledged_at'])}"
        )
    _update(watch, ticket_id, acknowledged_at=watch.now, acknowledged_by=who)
    _history(watch, ticket_id, entry="acknowledged", state=row["state"], by=who)
    alarm = _alarm(watch, ticket_id)
    if alarm is not None:
        escalation.acknowledge(watch, alarm, by=who)


def respond(watch: Watch, ticket_id: int, *, text: str, by: str) -> None:
    """The response to the customer. The first one meets the response clock: no more
    repeats and no more climbing."""
    row = _lock(watch, ticket_id)
    who = _clean(by, "by (who responds)", limit=64)
    answer = _clean(text, "the response (--text)")
    if row["state"] == "closed":
        raise TicketRefused(f"ticket #{ticket_id} is closed")
    values: dict[str, Any] = {"state": "responded"}
    late = ""
    if row["responded_at"] is None:
        values.update(responded_at=watch.now, responded_by=who)
        if watch.now > row["respond_by"]:
            late = f" (due {when(row['respond_by'])})"
    if row["acknowledged_at"] is None:
        values.update(acknowledged_at=watch.now, acknowledged_by=who)
    _update(watch, ticket_id, **values)
    _history(watch, ticket_id, entry="response", state="responded", by=who, text=answer + late)
    alarm = _alarm(watch, ticket_id)
    if alarm is not None:
        escalation.acknowledge(watch, alarm, by=who)
        escalation.settle(watch, alarm)


def follow_up(watch: Watch, ticket_id: int, *, text: str, by: str) -> None:
    """A follow-up (a call back, a parcel sent again): a history entry."""
    row = _lock(watch, ticket_id)
    who = _clean(by, "by (who follows up)", limit=64)
    note = _clean(text, "the follow-up (--text)")
    if row["state"] == "closed":
        raise TicketRefused(f"ticket #{ticket_id} is closed")
    _history(watch, ticket_id, entry="follow_up", state=row["state"], by=who, text=note)
    _update(watch, ticket_id)


def close_ticket(watch: Watch, ticket_id: int, *, confirmation: str, by: str) -> None:
    """Close it with the customer's confirmation in words; sends ``resolved``."""
    row = _lock(watch, ticket_id)
    who = _clean(by, "by (who closes)", limit=64)
    if not " ".join(str(confirmation or "").split()):
        raise TicketRefused(
            f"ticket #{ticket_id} closes only with the customer's confirmation "
            "(what the customer confirmed, and how)"
        )
    said = _clean(confirmation, "the confirmation")
    if row["state"] == "closed":
        raise TicketRefused(f"ticket #{ticket_id} is closed already")
    if row["responded_at"] is None:
        raise TicketRefused(f"ticket #{ticket_id} has no response yet: respond first")
    _update(watch, ticket_id, state="closed", closed_at=watch.now, closed_by=who, confirmation=said)
    _history(watch, ticket_id, entry="closed", state="closed", by=who, text=said)
    alarm = _alarm(watch, ticket_id)
    if alarm is not None:
        escalation.finish(
            watch, alarm, message=f"Ticket #{ticket_id} closed by {who}: customer confirmed {said}"
        )


def note_return(
    conn: Connection, *, order_no: str, station: str, text: str, at: dt.datetime, data: Any
) -> int | None:
    """Write a bench's return inspection into the order's open return ticket; its id,
    or None when the order has none (logged)."""
    ticket_id = conn.execute(
        sa.select(tickets.c.id)
        .where(
            tickets.c.order_no == order_no,
            tickets.c.category == "return",
            tickets.c.state.in_(OPEN_STATES),
        )
        .order_by(tickets.c.id.desc())
    ).scalar()
    if ticket_id is None:
        log.info("return of %s inspected at %s; no open return ticket", order_no, station)
        return None
    state = conn.execute(sa.select(tickets.c.state).where(tickets.c.id == ticket_id)).scalar_one()
    conn.execute(
        ticket_history.insert().values(
            ticket_id=ticket_id,
            at=at,
            by=station[:64],
            entry="return_inspected",
            state=state,
            text=text[:TEXT_MAX],
            data=data,
        )
    )
    return int(ticket_id)


@reacts_to(ReturnInspected.TYPE)
def _return_inspected(
    conn: Connection, row: sa.RowMapping, seen: ReturnInspected, at: dt.datetime, now: dt.datetime
) -> None:
    items = ", ".join(f"{i.sku} x{i.qty}" for i in seen.items) or "no items"
    who = f" by {seen.operator}" if seen.operator else ""
    note_return(
        conn,
        order_no=seen.order_no[:64],
        station=row["station"],
        text=f"return inspected at {row['station']}{who} {when(at)}: {seen.outcome} ({items})",
        at=now,
        data={
            "outcome": seen.outcome,
            "tracking_no": seen.tracking_no,
            "event_id": row["event_id"],
        },
    )


@escalation.follower("ticket")
def _escalated(watch: Watch, esc: Escalation, level: int) -> None:
    ticket_id = int(esc.subject.split(":", 1)[1])
    _update(watch, ticket_id, level=level)
    state = watch.conn.execute(
        sa.select(tickets.c.state).where(tickets.c.id == ticket_id)
    ).scalar_one()
    _history(
        watch,
        ticket_id,
        entry="escalated",
        state=state,
        by="central",
        text=f"escalated to level {level} ({esc.policy.levels[level - 1].name})",
    )


# --------------------------------------------------------------------------- reading


def _public(row: sa.RowMapping) -> dict[str, Any]:
    policy = EscalationPolicy.model_validate(row["policy"])
    level = int(row["level"])
    return {
        "id": int(row["id"]),
        "category": row["category"],
        "order_no": row["order_no"],
        "state": row["state"],
        "severity": row["severity"],
        "dept": row["dept"],
        "level": level,
        "level_name": policy.levels[min(level, len(policy.levels)) - 1].name,
        "customer": row["customer"],
        "description": row["description"],
        "opened_at": iso(row["opened_at"]),
        "opened_by": row["opened_by"],
        "respond_by": iso(row["respond_by"]),
        "responded_at": iso(row["responded_at"]),
        "responded_by": row["responded_by"],
        "acknowledged_at": iso(row["acknowledged_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "closed_at": iso(row["closed_at"]),
        "closed_by": row["closed_by"],
        "confirmation": row["confirmation"],
        "updated_at": iso(row["updated_at"]),
    }


def list_tickets(
    engine: Engine,
    *,
    open_only: bool = False,
    order_no: str | None = None,
    category: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Tickets, newest first: every field of ``tickets list --json``."""
    query = sa.select(tickets).order_by(tickets.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(tickets.c.state.in_(OPEN_STATES))
    if order_no is not None:
        query = query.where(tickets.c.order_no == order_no)
    if category is not None:
        query = query.where(tickets.c.category == category)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return [_public(r) for r in conn.execute(query).mappings()]


def ticket_detail(engine: Engine, ticket_id: int) -> dict[str, Any]:
    """One ticket with its ``history`` (oldest first). Raises :class:`TicketNotFound`."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        row = conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id)).mappings().first()
        if row is None:
            raise TicketNotFound(f"no ticket #{ticket_id}")
        entries = history_entries(conn, ticket_history, ticket_history.c.ticket_id, ticket_id)
    return {**_public(row), "history": entries}
