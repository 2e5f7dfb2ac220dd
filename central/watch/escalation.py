"""Escalation: an alarm that repeats and climbs its policy's levels until someone acts.

An escalation is opened for something that needs a person (an exception, a station
condition; tickets the same way) with a snapshot of its :class:`EscalationPolicy`:

- ``opened`` goes to level 1 at once;
- ``repeat`` every ``repeat_every`` at the current level while nobody acknowledged it;
- ``escalated`` to the next level ``after`` that level's delay while it is not
  *settled* (an exception settles when a plan is posted; a condition when it is
  acknowledged), one level per step, each at its own due time;
- ``escalated`` to the top level at ``reach_top_within`` whatever happens (major
  exceptions reach management within the hour);
- ``resolved`` when it ends; nothing after that.

Each of these is a timer (``escalation.repeat``, ``escalation.climb``,
``escalation.top``) on the escalation's id, so they follow the tick's rules: claimed
once, missed steps fire once with their own due time. What the escalation is about
registers a :func:`follower` to hear of level changes (an exception writes them to its
history and keeps its ``level``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.watch.alerts import AlertKind, queue_alert
from central.watch.context import Watch, insert_ignoring, when
from central.watch.rules import EscalationPolicy
from central.watch.tables import escalations
from central.watch.timers import Timer, arm, disarm, timer_kind

__all__ = [
    "Escalation",
    "acknowledge",
    "active",
    "finish",
    "follower",
    "settle",
    "start",
]

log = logging.getLogger(__name__)

REPEAT, CLIMB, TOP = "escalation.repeat", "escalation.climb", "escalation.top"

#: A late step says when it was due once it is this late (a tick is every 15 s).
LATE = dt.timedelta(minutes=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Escalation:
    """An escalation row, read."""

    id: int
    dedup_key: str
    subject: str
    title: str
    dept: str
    severity: str
    level: int
    policy: EscalationPolicy
    order_no: str | None
    exception_id: int | None
    due_at: dt.datetime | None
    settle_on_ack: bool
    opened_at: dt.datetime
    acked_at: dt.datetime | None
    acked_by: str | None
    settled_at: dt.datetime | None
    ended_at: dt.datetime | None

    @property
    def level_name(self) -> str:
        """The current level's name (``supervisor``...)."""
        return self.policy.levels[self.level - 1].name

    def audience(self, level: int | None = None) -> str:
        """The topic level of ``level`` (the current one by default)."""
        return self.policy.levels[(level or self.level) - 1].audience(self.dept)


#: Subject prefix → what settles its alarm, in words (``no plan posted within 1 h``).
WAITED_FOR: dict[str, str] = {"ticket": "response"}

Follower = Callable[[Watch, Escalation, int], None]
#: Subject prefix (``exception``) → called with the new level when one is reached.
FOLLOWERS: dict[str, Follower] = {}


def follower(prefix: str) -> Callable[[Follower], Follower]:
    """Register the decorated function to hear of level changes of subjects
    ``prefix:…``."""

    def register(fn: Follower) -> Follower:
        FOLLOWERS[prefix] = fn
        return fn

    return register


def _read(row: sa.RowMapping) -> Escalation:
    return Escalation(
        id=int(row["id"]),
        dedup_key=row["dedup_key"],
        subject=row["subject"],
        title=row["title"],
        dept=row["dept"],
        severity=row["severity"],
        level=int(row["level"]),
        policy=EscalationPolicy.model_validate(row["policy"]),
        order_no=row["order_no"],
        exception_id=row["exception_id"],
        due_at=row["due_at"],
        settle_on_ack=bool(row["settle_on_ack"]),
        opened_at=row["opened_at"],
        acked_at=row["acked_at"],
        acked_by=row["acked_by"],
        settled_at=row["settled_at"],
        ended_at=row["ended_at"],
    )


def _lock(conn: Connection, escalation_id: int) -> Escalation | None:
    row = (
        conn.execute(
            sa.select(escalations).where(escalations.c.id == escalation_id).with_for_update()
        )
        .mappings()
        .first()
    )
    return _read(row) if row is not None else None


def active(conn: Connection, dedup_key: str, *, lock: bool = False) -> Escalation | None:
    """The escalation of ``dedup_key`` that has not ended, if any."""
    query = sa.select(escalations).where(
        escalations.c.dedup_key == dedup_key, escalations.c.ended_at.is_(None)
    )
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return _read(row) if row is not None else None


def _alert(
    watch: Watch,
    esc: Escalation,
    *,
    kind: AlertKind,
    message: str,
    level: int | None = None,
    due_at: dt.datetime | None = None,
) -> None:
    lvl = level or esc.level
    queue_alert(
        watch,
        dedup_key=esc.dedup_key,
        kind=kind,
        level=lvl,
        level_name=esc.policy.levels[lvl - 1].name,
        dept=esc.dept,
        to=esc.audience(lvl),
        severity=esc.severity,
        message=message,
        due_at=due_at if due_at is not None else esc.due_at,
        order_no=esc.order_no,
        exception_id=esc.exception_id,
    )


def start(
    watch: Watch,
    *,
    dedup_key: str,
    subject: str,
    title: str,
    dept: str,
    severity: str,
    policy: EscalationPolicy,
    message: str,
    order_no: str | None = None,
    exception_id: int | None = None,
    due_at: dt.datetime | None = None,
    settle_on_ack: bool = False,
) -> Escalation | None:
    """Open an escalation and send its ``opened`` alert to level 1.

    Returns None (and sends nothing) when one with ``dedup_key`` is active already:
    one condition, one alarm, whoever raises it.
    """
    now = watch.now
    new_id = insert_ignoring(
        watch.conn,
        escalations,
        {
            "dedup_key": dedup_key,
            "subject": subject,
            "title": title,
            "dept": dept,
            "severity": severity,
            "level": 1,
            "policy": policy.model_dump(mode="json"),
            "order_no": order_no,
            "exception_id": exception_id,
            "due_at": due_at,
            "settle_on_ack": settle_on_ack,
            "opened_at": now,
        },
        keys=["dedup_key"],
        where=escalations.c.ended_at.is_(None),
        returning=escalations.c.id,
    )
    if new_id is None:
        return None
    esc = _lock(watch.conn, int(new_id))
    assert esc is not None
    _alert(watch, esc, kind="opened", message=message)
    key = str(esc.id)
    if policy.repeat_every > dt.timedelta(0):
        arm(watch.conn, kind=REPEAT, subject=key, due_at=now + policy.repeat_every)
    if len(policy.levels) > 1:
        arm(watch.conn, kind=CLIMB, subject=key, due_at=now + policy.levels[1].after)
        if policy.reach_top_within is not None:
            arm(watch.conn, kind=TOP, subject=key, due_at=now + policy.reach_top_within)
    return esc


def acknowledge(watch: Watch, esc: Escalation, *, by: str) -> bool:
    """Note that ``by`` took it: no more repeats (and, for a condition, no more
    climbing). False when it was acknowledged already."""
    if esc.acked_at is not None:
        return False
    values: dict[str, Any] = {"acked_at": watch.now, "acked_by": by[:64]}
    key = str(esc.id)
    disarm(watch.conn, kind=REPEAT, subject=key)
    if esc.settle_on_ack and esc.settled_at is None:
        values["settled_at"] = watch.now
        disarm(watch.conn, kind=CLIMB, subject=key)
    watch.conn.execute(escalations.update().where(escalations.c.id == esc.id).values(values))
    return True


def settle(watch: Watch, esc: Escalation) -> None:
    """Stop the climb (a plan was posted); repeats go on until it is acknowledged."""
    if esc.settled_at is not None:
        return
    watch.conn.execute(
        escalations.update().where(escalations.c.id == esc.id).values(settled_at=watch.now)
    )
    disarm(watch.conn, kind=CLIMB, subject=str(esc.id))


def finish(watch: Watch, esc: Escalation, *, message: str) -> bool:
    """End it and send ``resolved`` to its current level; False when it had ended."""
    ended = watch.conn.execute(
        escalations.update()
        .where(escalations.c.id == esc.id, escalations.c.ended_at.is_(None))
        .values(ended_at=watch.now)
        .returning(escalations.c.id)
    ).first()
    if ended is None:
        return False
    for kind in (REPEAT, CLIMB, TOP):
        disarm(watch.conn, kind=kind, subject=str(esc.id))
    _alert(watch, esc, kind="resolved", message=message)
    return True


def _late(watch: Watch, due: dt.datetime) -> str:
    return f" (due {when(due)})" if watch.now - due > LATE else ""


def _reach(watch: Watch, esc: Escalation, level: int, *, why: str, due: dt.datetime) -> None:
    watch.conn.execute(escalations.update().where(escalations.c.id == esc.id).values(level=level))
    name = esc.policy.levels[level - 1].name
    _alert(
        watch,
        esc,
        kind="escalated",
        level=level,
        message=f"Escalated to {name} ({why}){_late(watch, due)}: {esc.title}",
    )
    prefix = esc.subject.split(":", 1)[0]
    hook = FOLLOWERS.get(prefix)
    if hook is not None:
        hook(watch, dataclasses.replace(esc, level=level), level)


@timer_kind(REPEAT, rank=20)
def _repeat(watch: Watch, timer: Timer) -> None:
    esc = _lock(watch.conn, int(timer.subject))
    if esc is None or esc.ended_at is not None or esc.acked_at is not None:
        return
    every = esc.policy.repeat_every
    _alert(
        watch,
        esc,
        kind="repeat",
        message=f"Not acknowledged since {when(esc.opened_at)}{_late(watch, timer.due_at)}: "
        f"{esc.title}",
    )
    if every > dt.timedelta(0):
        # The next repeat in step with the first, after now: a long pause sends one
        # repeat, not one for every interval missed.
        steps = (watch.now - timer.due_at) // every + 1
        arm(watch.conn, kind=REPEAT, subject=timer.subject, due_at=timer.due_at + steps * every)


@timer_kind(CLIMB, rank=30)
def _climb(watch: Watch, timer: Timer) -> None:
    esc = _lock(watch.conn, int(timer.subject))
    if esc is None or esc.ended_at is not None or esc.settled_at is not None:
        return
    levels = esc.policy.levels
    if esc.level >= len(levels):
        return
    level = esc.level + 1
    waited = timer.due_at - esc.opened_at
    missing = WAITED_FOR.get(esc.subject.split(":", 1)[0], "plan posted")
    why = (
        f"no {missing} within {_span(waited)}"
        if not esc.settle_on_ack
        else f"not acknowledged within {_span(waited)}"
    )
    _reach(watch, esc, level, why=why, due=timer.due_at)
    if level < len(levels):
        arm(
            watch.conn,
            kind=CLIMB,
            subject=timer.subject,
            due_at=timer.due_at + levels[level].after,
        )


@timer_kind(TOP, rank=40)
def _top(watch: Watch, timer: Timer) -> None:
    esc = _lock(watch.conn, int(timer.subject))
    if esc is None or esc.ended_at is not None:
        return
    top = len(esc.policy.levels)
    if esc.level >= top:
        return
    _reach(
        watch,
        esc,
        top,
        why=f"{esc.severity}: within {_span(timer.due_at - esc.opened_at)} whatever happens",
        due=timer.due_at,
    )
    disarm(watch.conn, kind=CLIMB, subject=timer.subject)


def _span(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"
