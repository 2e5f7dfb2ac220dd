"""Shipping exceptions (D3–D6): what went wrong, who handles it, and its history.

An exception has a type (:class:`~central.watch.rules.ExceptionType`), the order and
customer (masked) if any, a description, when and by whom it was found, a cause class,
a severity and a responsible department; the routing table gives the defaults per
type. Its states:

    open → acknowledged → plan_posted → resolved → closed

Acknowledging stops the repeats of its alert; posting a plan (which acknowledges too)
stops the climb; resolving needs a report (cause, action, outcome) and sends
``resolved``; closing needs it resolved. A new breach of an order whose
``shipping_delay`` was resolved reopens it. Every step is a new row of
``exception_history``, which the database keeps append-only.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import READ_ONLY, orders
from central.watch import escalation
from central.watch.context import Watch, history_entries, insert_ignoring, iso, when
from central.watch.escalation import Escalation
from central.watch.rules import (
    CAUSE_CLASSES,
    EscalationPolicy,
    ExceptionType,
    Severity,
    allowed_to_ack,
    topic_word,
)
from central.watch.tables import escalations, exception_history, exceptions
from sync.errors import UserError

__all__ = [
    "OPEN_STATES",
    "STATES",
    "ExceptionNotFound",
    "ExceptionRefused",
    "NotAllowed",
    "acknowledge_exception",
    "add_note",
    "assign_exception",
    "close_exception",
    "customer_of",
    "dedup_key",
    "exception_detail",
    "find_by_source",
    "list_exceptions",
    "mask_name",
    "mask_phone",
    "open_exception",
    "post_plan",
    "reopen_exception",
    "resolve_exception",
]

log = logging.getLogger(__name__)

STATES = ("open", "acknowledged", "plan_posted", "resolved", "closed")
#: States in which an exception still needs someone.
OPEN_STATES = ("open", "acknowledged", "plan_posted")

DESCRIPTION_MAX = 2000
TEXT_MAX = 2000


class ExceptionNotFound(UserError, LookupError):
    """No exception with that id."""


class ExceptionRefused(UserError, ValueError):
    """A step the exception's state or the input does not allow; ``str()`` says why."""


class NotAllowed(UserError, PermissionError):
    """The person is not on the policy's list of who may acknowledge."""


def dedup_key(exception_id: int) -> str:
    """The ``dedup_key`` of an exception's alerts."""
    return f"exception:{exception_id}"


# --------------------------------------------------------------------------- masking
# The waybill's rule (drivers/labels/masking.py), repeated here: central does not
# import drivers.


def mask_name(name: str) -> str:
    """``张三丰`` → ``张*丰``."""
    name = name.strip()
    n = len(name)
    if n <= 1:
        return "*" * n
    if n == 2:
        return name[0] + "*"
    return name[0] + "*" * (n - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``."""
    phone = phone.strip()
    positions = [i for i, ch in enumerate(phone) if ch.isdigit()]
    n = len(positions)
    head, tail = (3, 4) if n >= 8 else (0, min(4, n // 2))
    hidden = set(positions[head : n - tail])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(phone))


def customer_of(conn: Connection, order_no: str | None) -> str:
    """The order's recipient, masked (``张* 138****5678``), or ``""``."""
    if not order_no:
        return ""
    body = conn.execute(sa.select(orders.c.body).where(orders.c.order_no == order_no)).scalar()
    if not isinstance(body, dict):
        return ""
    recipient = body.get("recipient") or {}
    parts = [
        mask_name(str(recipient.get("name") or "")),
        mask_phone(str(recipient.get("phone") or "")),
    ]
    return " ".join(p for p in parts if p)[:128]


# --------------------------------------------------------------------------- writing


def _history(
    watch: Watch,
    exception_id: int,
    *,
    entry: str,
    state: str,
    by: str,
    text: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    watch.conn.execute(
        exception_history.insert().values(
            exception_id=exception_id,
            at=watch.now,
            by=by[:64],
            entry=entry,
            state=state,
            text=text[:TEXT_MAX],
            data=data,
        )
    )


def _title(row: sa.RowMapping | dict[str, Any]) -> str:
    about = f" {row['order_no']}" if row.get("order_no") else ""
    return f"exception #{row['id']} {row['type']}{about}: {row['description']}"


def _clean(value: str, what: str, *, limit: int = TEXT_MAX) -> str:
    value = " ".join(str(value).split())
    if not value:
        raise ExceptionRefused(f"{what} must not be empty")
    return value[:limit]


def open_exception(
    watch: Watch,
    *,
    type: str,
    description: str,
    found_by: str,
    order_no: str | None = None,
    found_at: dt.datetime | None = None,
    severity: str | None = None,
    dept: str | None = None,
    cause_class: str | None = None,
    due_at: dt.datetime | None = None,
    source_key: str | None = None,
) -> int | None:
    """Open an exception and send its ``opened`` alert; its id.

    Department, severity and cause class default to the routing table's for ``type``.
    With ``source_key`` (what raised it, e.g. ``shipping_delay:PDD-1``) there is at most
    one exception per key: None when one exists already (see :func:`find_by_source`).
    Raises :class:`ExceptionRefused` for an unknown type, severity or cause class.
    """
    try:
        kind = ExceptionType(type)
    except ValueError:
        raise ExceptionRefused(
            f"unknown exception type {type!r}; the types are "
            f"{', '.join(t.value for t in ExceptionType)}"
        ) from None
    route = watch.rules.route(kind.value)
    try:
        level_severity = Severity(severity or route.severity)
    except ValueError:
        raise ExceptionRefused(f"severity must be general or major, not {severity!r}") from None
    cause = cause_class or route.cause_class
    if cause not in CAUSE_CLASSES:
        raise ExceptionRefused(
            f"unknown cause class {cause!r}; the classes are {', '.join(CAUSE_CLASSES)}"
        )
    department = route.dept
    if dept is not None:
        try:
            department = topic_word(dept.strip())
        except ValueError as exc:
            raise ExceptionRefused(f"dept {exc}") from None
    text = _clean(description, "description", limit=DESCRIPTION_MAX)
    who = _clean(found_by, "found by (--by)", limit=64)
    # A severity chosen by hand brings its own policy (a major one reaches management).
    policy_name = route.policy_name if severity is None else str(level_severity)
    policy: EscalationPolicy = watch.rules.policy(policy_name)
    plan_due = watch.now + policy.levels[1].after if len(policy.levels) > 1 else None
    values = {
        "type": kind.value,
        "order_no": order_no,
        "customer": customer_of(watch.conn, order_no),
        "description": text,
        "found_at": found_at or watch.now,
        "found_by": who,
        "cause_class": cause,
        "severity": str(level_severity),
        "dept": department,
        "state": "open",
        "level": 1,
        "policy": policy.model_dump(mode="json"),
        "opened_at": watch.now,
        "due_at": due_at,
        "plan_due_at": plan_due,
        "source_key": source_key,
        "updated_at": watch.now,
    }
    if source_key is not None:
        new_id = insert_ignoring(
            watch.conn, exceptions, values, keys=["source_key"], returning=exceptions.c.id
        )
        if new_id is None:
            return None
    else:
        new_id = watch.conn.execute(
            exceptions.insert().values(values).returning(exceptions.c.id)
        ).scalar_one()
    exception_id = int(new_id)
    _history(watch, exception_id, entry="opened", state="open", by=who, text=text)
    _start_alarm(watch, {**values, "id": exception_id}, policy=policy, reopened=False)
    return exception_id


def _start_alarm(
    watch: Watch, row: dict[str, Any], *, policy: EscalationPolicy, reopened: bool
) -> None:
    verb = "reopened" if reopened else "opened"
    escalation.start(
        watch,
        dedup_key=dedup_key(row["id"]),
        subject=f"exception:{row['id']}",
        title=_title(row),
        dept=row["dept"],
        severity=row["severity"],
        policy=policy,
        message=f"Exception #{row['id']} {verb} ({row['type']}, {row['severity']}, "
        f"{row['dept']}): {row['description']}",
        order_no=row.get("order_no"),
        exception_id=row["id"],
        due_at=row.get("due_at"),
    )


def _lock(watch: Watch, exception_id: int) -> sa.RowMapping:
    row = (
        watch.conn.execute(
            sa.select(exceptions).where(exceptions.c.id == exception_id).with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ExceptionNotFound(f"no exception #{exception_id}")
    return row


def _alarm(watch: Watch, exception_id: int) -> Escalation | None:
    return escalation.active(watch.conn, dedup_key(exception_id), lock=True)


def _update(watch: Watch, exception_id: int, **values: Any) -> None:
    watch.conn.execute(
        exceptions.update()
        .where(exceptions.c.id == exception_id)
        .values(updated_at=watch.now, **values)
    )


def acknowledge_exception(
    watch: Watch, exception_id: int, *, by: str, check_allowed: bool = False
) -> bool:
    """``by`` acknowledges the exception: its alert stops repeating.

    Never changes a resolved or closed exception's state (it only records who saw it).
    ``check_allowed`` (API, MQTT): refuse with :class:`NotAllowed` anyone not on the
    policy's list. Raises :class:`ExceptionRefused` when it was acknowledged already.
    """
    row = _lock(watch, exception_id)
    who = _clean(by, "by (who acknowledges)", limit=64)
    policy = EscalationPolicy.model_validate(row["policy"])
    if check_allowed and not allowed_to_ack(policy, who):
        raise NotAllowed(f"{who} may not acknowledge exception #{exception_id}")
    if row["acknowledged_at"] is not None:
        raise ExceptionRefused(
            f"exception #{exception_id} was acknowledged already by "
            f"{row['acknowledged_by']} at {when(row['acknowledged_at'])}"
        )
    state = "acknowledged" if row["state"] == "open" else row["state"]
    _update(watch, exception_id, state=state, acknowledged_at=watch.now, acknowledged_by=who)
    _history(watch, exception_id, entry="acknowledged", state=state, by=who)
    alarm = _alarm(watch, exception_id)
    if alarm is not None:
        escalation.acknowledge(watch, alarm, by=who)
    return True


def post_plan(watch: Watch, exception_id: int, *, text: str, by: str) -> None:
    """The department's plan (D5): stops the climb (and the repeats: it acknowledges)."""
    row = _lock(watch, exception_id)
    who = _clean(by, "by (who posts the plan)", limit=64)
    plan = _clean(text, "the plan (--text)")
    if row["state"] not in OPEN_STATES:
        raise ExceptionRefused(f"exception #{exception_id} is {row['state']}: no plan to post")
    values: dict[str, Any] = {
        "state": "plan_posted",
        "plan": plan,
        "plan_at": watch.now,
        "plan_by": who,
    }
    if row["acknowledged_at"] is None:
        values.update(acknowledged_at=watch.now, acknowledged_by=who)
    _update(watch, exception_id, **values)
    _history(watch, exception_id, entry="plan", state="plan_posted", by=who, text=plan)
    alarm = _alarm(watch, exception_id)
    if alarm is not None:
        escalation.acknowledge(watch, alarm, by=who)
        escalation.settle(watch, alarm)


def resolve_exception(
    watch: Watch,
    exception_id: int,
    *,
    cause: str,
    action: str,
    outcome: str,
    by: str,
    cause_class: str | None = None,
) -> None:
    """Resolve with a report (D6): cause, what was done, outcome; sends ``resolved``."""
    row = _lock(watch, exception_id)
    missing = [name for name, value in (("cause", cause), ("action", action),
               ("outcome", outcome)) if not " ".join(str(value or "").split())]  # fmt: skip
    if missing:
        raise ExceptionRefused(
            f"a resolution report needs cause, action and outcome: {', '.join(missing)} missing"
        )
    who = _clean(by, "by (who resolves)", limit=64)
    if row["state"] not in OPEN_STATES:
        raise ExceptionRefused(f"exception #{exception_id} is {row['state']} already")
    if cause_class is not None and cause_class not in CAUSE_CLASSES:
        raise ExceptionRefused(
            f"unknown cause class {cause_class!r}; the classes are {', '.join(CAUSE_CLASSES)}"
        )
    report = {
        "cause": _clean(cause, "cause"),
        "action": _clean(action, "action"),
        "outcome": _clean(outcome, "outcome"),
    }
    values: dict[str, Any] = {
        "state": "resolved",
        "resolved_at": watch.now,
        "resolved_by": who,
        "report": report,
    }
    if cause_class is not None:
        values["cause_class"] = cause_class
    _update(watch, exception_id, **values)
    _history(
        watch,
        exception_id,
        entry="resolved",
        state="resolved",
        by=who,
        text=f"cause: {report['cause']}; action: {report['action']}; outcome: {report['outcome']}",
        data=report,
    )
    alarm = _alarm(watch, exception_id)
    if alarm is not None:
        escalation.finish(
            watch,
            alarm,
            message=f"Exception #{exception_id} resolved by {who}: {report['outcome']} "
            f"(cause: {report['cause']}; action: {report['action']})",
        )


def assign_exception(
    watch: Watch, exception_id: int, *, by: str, dept: str | None = None, to: str = ""
) -> None:
    """Hand the exception to department ``dept`` and/or person ``to`` (a history entry).

    A new department takes over its alarm too: the next repeats and levels go to its
    topics. Refused for a resolved or closed exception and when nothing changes.
    """
    row = _lock(watch, exception_id)
    who = _clean(by, "by (who assigns)", limit=64)
    if row["state"] not in OPEN_STATES:
        raise ExceptionRefused(f"exception #{exception_id} is {row['state']}: nothing to assign")
    new_dept = row["dept"]
    if dept is not None and dept.strip():
        try:
            new_dept = topic_word(dept.strip())
        except ValueError as exc:
            raise ExceptionRefused(f"dept {exc}") from None
    person = " ".join(str(to or "").split())[:64]
    if new_dept == row["dept"] and not person:
        raise ExceptionRefused(
            f"exception #{exception_id} is with {row['dept']} already: name another "
            "department or a person"
        )
    if new_dept != row["dept"]:
        _update(watch, exception_id, dept=new_dept)
        watch.conn.execute(
            escalations.update()
            .where(
                escalations.c.dedup_key == dedup_key(exception_id),
                escalations.c.ended_at.is_(None),
            )
            .values(dept=new_dept)
        )
    else:
        _update(watch, exception_id)
    words = f"assigned to {new_dept}" + (f" ({person})" if person else "")
    if new_dept != row["dept"]:
        words += f", was {row['dept']}"
    _history(
        watch,
        exception_id,
        entry="assigned",
        state=row["state"],
        by=who,
        text=words,
        data={"dept": new_dept, "to": person or None, "from": row["dept"]},
    )


def close_exception(watch: Watch, exception_id: int, *, by: str) -> None:
    """Close a resolved exception."""
    row = _lock(watch, exception_id)
    who = _clean(by, "by (who closes)", limit=64)
    if row["state"] != "resolved":
        raise ExceptionRefused(
            f"exception #{exception_id} is {row['state']}: resolve it first, with a report "
            "(cause, action, outcome)"
            if row["state"] in OPEN_STATES
            else f"exception #{exception_id} is closed already"
        )
    _update(watch, exception_id, state="closed", closed_at=watch.now, closed_by=who)
    _history(watch, exception_id, entry="closed", state="closed", by=who)


def add_note(
    watch: Watch,
    exception_id: int,
    *,
    entry: str,
    text: str,
    by: str = "central",
    data: dict[str, Any] | None = None,
) -> None:
    """Append a history entry (a later breach, a printer back, a correction)."""
    row = _lock(watch, exception_id)
    _history(watch, exception_id, entry=entry, state=row["state"], by=by, text=text, data=data)
    _update(watch, exception_id)


def reopen_exception(watch: Watch, exception_id: int, *, text: str, by: str = "central") -> None:
    """Open a resolved or closed exception again (a new breach): its alarm starts anew."""
    row = _lock(watch, exception_id)
    if row["state"] in OPEN_STATES:
        return
    policy = EscalationPolicy.model_validate(row["policy"])
    plan_due = watch.now + policy.levels[1].after if len(policy.levels) > 1 else None
    _update(
        watch,
        exception_id,
        state="open",
        level=1,
        opened_at=watch.now,
        plan_due_at=plan_due,
        acknowledged_at=None,
        acknowledged_by=None,
        resolved_at=None,
        resolved_by=None,
        closed_at=None,
        closed_by=None,
    )
    _history(watch, exception_id, entry="reopened", state="open", by=by, text=text)
    fresh = dict(row)
    fresh.update(description=text)
    _start_alarm(watch, fresh, policy=policy, reopened=True)


@escalation.follower("exception")
def _escalated(watch: Watch, esc: Escalation, level: int) -> None:
    if esc.exception_id is None:
        return
    _update(watch, esc.exception_id, level=level)
    state = watch.conn.execute(
        sa.select(exceptions.c.state).where(exceptions.c.id == esc.exception_id)
    ).scalar_one()
    _history(
        watch,
        esc.exception_id,
        entry="escalated",
        state=state,
        by="central",
        text=f"escalated to level {level} ({esc.policy.levels[level - 1].name})",
    )


# --------------------------------------------------------------------------- reading


def find_by_source(conn: Connection, source_key: str) -> sa.RowMapping | None:
    """The exception raised under ``source_key``, if any."""
    return (
        conn.execute(sa.select(exceptions).where(exceptions.c.source_key == source_key))
        .mappings()
        .first()
    )


def _public(row: sa.RowMapping) -> dict[str, Any]:
    policy = EscalationPolicy.model_validate(row["policy"])
    level = int(row["level"])
    return {
        "id": int(row["id"]),
        "type": row["type"],
        "order_no": row["order_no"],
        "state": row["state"],
        "severity": row["severity"],
        "dept": row["dept"],
        "level": level,
        "level_name": policy.levels[min(level, len(policy.levels)) - 1].name,
        "opened_at": iso(row["opened_at"]),
        "customer": row["customer"],
        "description": row["description"],
        "found_at": iso(row["found_at"]),
        "found_by": row["found_by"],
        "cause_class": row["cause_class"],
        "cause_kind": CAUSE_CLASSES.get(row["cause_class"], "internal"),
        "due_at": iso(row["due_at"]),
        "plan_due_at": iso(row["plan_due_at"]) if row["plan_at"] is None else None,
        "acknowledged_at": iso(row["acknowledged_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "plan": row["plan"],
        "plan_at": iso(row["plan_at"]),
        "plan_by": row["plan_by"],
        "resolved_at": iso(row["resolved_at"]),
        "resolved_by": row["resolved_by"],
        "report": row["report"],
        "closed_at": iso(row["closed_at"]),
        "closed_by": row["closed_by"],
        "updated_at": iso(row["updated_at"]),
    }


def list_exceptions(
    engine: Engine,
    *,
    open_only: bool = False,
    state: str | None = None,
    order_no: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Exceptions, newest first: every field of ``exceptions list --json``.

    ``open_only``: those still needing someone (open, acknowledged, plan posted).
    """
    query = sa.select(exceptions).order_by(exceptions.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(exceptions.c.state.in_(OPEN_STATES))
    if state is not None:
        query = query.where(exceptions.c.state == state)
    if order_no is not None:
        query = query.where(exceptions.c.order_no == order_no)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return [_public(r) for r in conn.execute(query).mappings()]


def exception_detail(engine: Engine, exception_id: int) -> dict[str, Any]:
    """One exception with its ``history`` (oldest first) and alarm state.

    Raises :class:`ExceptionNotFound`.
    """
    with engine.connect().execution_options(**READ_ONLY) as conn:
        row = (
            conn.execute(sa.select(exceptions).where(exceptions.c.id == exception_id))
            .mappings()
            .first()
        )
        if row is None:
            raise ExceptionNotFound(f"no exception #{exception_id}")
        entries = history_entries(
            conn, exception_history, exception_history.c.exception_id, exception_id
        )
    return {**_public(row), "history": entries}
