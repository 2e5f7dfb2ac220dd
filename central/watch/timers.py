"""Timers: one table, handlers by kind, claimed exactly once.

A timer is a row ``(kind, subject)`` with the true due time of its next step
(``due_at``) and ``next_fire_at``, NULL once nothing is left to do. A kind is a
handler registered with :func:`timer_kind`; new kinds (a ticket's first response, a
parcel without a carrier scan) plug in by registering one, and arm their timers with
:func:`arm`. The tick (:func:`fire_due`) finds due timers with one range query on the
partial index over ``next_fire_at``, and claims each with

    UPDATE timers SET next_fire_at = NULL … WHERE id = :id AND next_fire_at = :seen
    RETURNING id

in the same transaction as the handler's work and the alerts it writes; PostgreSQL
also selects them ``FOR UPDATE SKIP LOCKED``, so a second process ticking at the same
moment takes other timers instead of waiting. A timer fires once per claim: a handler
that has a further step arms the timer again for it, at the true due time of that step
(after downtime, every missed step fires once, in due order, with its own due time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import by_keys
from central.watch.context import Watch, upsert, upsert_many
from central.watch.rules import WatchRules
from central.watch.tables import timers

__all__ = [
    "KINDS",
    "RETRYABLE",
    "RETRY_AFTER",
    "Timer",
    "TimerKind",
    "arm",
    "arm_many",
    "disarm",
    "disarm_many",
    "due_query",
    "fire_due",
    "timer_kind",
]

log = logging.getLogger(__name__)

#: PostgreSQL's "deadlock detected" and "could not serialize": the batch is run again.
RETRYABLE = frozenset({"40P01", "40001"})

#: A timer whose handler failed is tried again this long after the instant it ran at.
RETRY_AFTER = dt.timedelta(minutes=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Timer:
    """A claimed timer as its handler sees it."""

    id: int
    kind: str
    subject: str
    due_at: dt.datetime
    fired: int
    data: dict[str, Any]


Handler = Callable[[Watch, Timer], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TimerKind:
    """A registered kind: its handler and its rank among timers due at one instant."""

    name: str
    handler: Handler
    rank: int


#: Timer kind → its handler.
KINDS: dict[str, TimerKind] = {}


def timer_kind(name: str, *, rank: int = 50) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of timers of kind ``name``.

    Among timers due at the same instant, lower ``rank`` fires first (a repeat at the
    current level before the escalation due at the same minute).
    """

    def register(handler: Handler) -> Handler:
        if name in KINDS:
            raise ValueError(f"timer kind {name!r} is registered twice")
        KINDS[name] = TimerKind(name=name, handler=handler, rank=rank)
        return handler

    return register


def arm(
    conn: Connection,
    *,
    kind: str,
    subject: str,
    due_at: dt.datetime,
    data: dict[str, Any] | None = None,
    keep_earlier: bool = False,
) -> None:
    """Set timer ``(kind, subject)`` to fire at ``due_at`` (creating it if need be).

    ``keep_earlier``: when the timer is already armed for an earlier time, leave it
    (several events asking for one follow-up make one).
    """
    if kind not in KINDS:
        raise KeyError(f"no timer kind {kind!r}")
    if keep_earlier:
        armed = conn.execute(
            sa.select(timers.c.next_fire_at).where(
                timers.c.kind == kind, timers.c.subject == subject
            )
        ).scalar()
        if armed is not None and armed <= due_at:
            return
    upsert(
        conn,
        timers,
        {
            "kind": kind,
            "subject": subject,
            "due_at": due_at,
            "next_fire_at": due_at,
            "rank": KINDS[kind].rank,
            "fired": 0,
            "data": data or {},
        },
        keys=["kind", "subject"],
        update=["due_at", "next_fire_at", "rank", "data"],
    )


#: Subjects per statement when :func:`arm_many` looks up or writes timers.
_CHUNK = 500


def arm_many(
    conn: Connection,
    *,
    kind: str,
    due: Mapping[str, tuple[dt.datetime, dict[str, Any]]],
    keep_earlier: bool = False,
) -> int:
    """:func:`arm` for many subjects of one ``kind`` at once (``due``: subject → when
    and data): one query for the timers already armed and one executemany, per 500
    subjects, instead of two statements per subject. Returns how many were armed."""
    if kind not in KINDS:
        raise KeyError(f"no timer kind {kind!r}")
    subjects = sorted(due)
    armed = 0
    for start in range(0, len(subjects), _CHUNK):
        chunk = subjects[start : start + _CHUNK]
        earlier: set[str] = set()
        if keep_earlier:
            earlier = {
                subject
                for subject, at in conn.execute(
                    _armed_query(conn.dialect.name), {"kind": kind, "subjects": chunk}
                )
                if at is not None and at <= due[subject][0]
            }
        rows = [
            {
                "kind": kind,
                "subject": subject,
                "due_at": due[subject][0],
                "next_fire_at": due[subject][0],
                "rank": KINDS[kind].rank,
                "fired": 0,
                "data": due[subject][1],
            }
            for subject in chunk
            if subject not in earlier
        ]
        if rows:
            upsert_many(
                conn,
                timers,
                rows,
                keys=["kind", "subject"],
                update=["due_at", "next_fire_at", "rank", "data"],
            )
        armed += len(rows)
    return armed


@functools.cache
def _armed_query(dialect: str) -> sa.Select[Any]:
    query = sa.select(timers.c.subject, timers.c.next_fire_at).where(
        timers.c.kind == sa.bindparam("kind")
    )
    return by_keys(dialect, query, timers.c.subject, "subjects")


def disarm(conn: Connection, *, kind: str, subject: str, skip_locked: bool = False) -> None:
    """Stop timer ``(kind, subject)`` (nothing happens when it does not exist).

    ``skip_locked`` (PostgreSQL): leave it alone when a tick holds it right now rather
    than wait; that tick's handler re-reads the state and finds nothing to do.
    """
    params = {"disarm_kind": kind, "disarm_subject": subject}
    if skip_locked and conn.dialect.name == "postgresql":
        conn.execute(_DISARM_UNLOCKED, params)
        return
    conn.execute(_DISARM, params)


def disarm_many(
    conn: Connection, *, kind: str, subjects: Collection[str], skip_locked: bool = False
) -> None:
    """:func:`disarm` for many subjects of one ``kind``, in one executemany (an update
    by key each, which PostgreSQL's driver sends in one pipeline)."""
    if not subjects:
        return
    stmt = _DISARM_UNLOCKED if skip_locked and conn.dialect.name == "postgresql" else _DISARM
    conn.execute(stmt, [{"disarm_kind": kind, "disarm_subject": s} for s in sorted(subjects)])


# Built once: deadlines met disarm a timer for every order packed and shipped.
_DISARM_WHERE = sa.and_(
    timers.c.kind == sa.bindparam("disarm_kind"),
    timers.c.subject == sa.bindparam("disarm_subject"),
)
_DISARM = timers.update().where(_DISARM_WHERE).values(next_fire_at=None)
_DISARM_UNLOCKED = (
    timers.update()
    .where(
        timers.c.id
        == sa.select(timers.c.id)
        .where(_DISARM_WHERE)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(next_fire_at=None)
)


def due_query(now: dt.datetime, *, limit: int) -> sa.Select[Any]:
    """The timers due at ``now``, next first: a range scan of ``ix_timers_next_fire_at``."""
    return (
        sa.select(
            timers.c.id,
            timers.c.kind,
            timers.c.subject,
            timers.c.due_at,
            timers.c.next_fire_at,
            timers.c.fired,
            timers.c.data,
        )
        .where(timers.c.next_fire_at <= now)
        .order_by(timers.c.next_fire_at, timers.c.rank, timers.c.id)
        .limit(limit)
    )


def _claim(conn: Connection, row: sa.Row[Any], now: dt.datetime) -> bool:
    claimed = conn.execute(
        timers.update()
        .where(timers.c.id == row.id, timers.c.next_fire_at == row.next_fire_at)
        .values(next_fire_at=None, fired=timers.c.fired + 1, last_fired_at=now)
        .returning(timers.c.id)
    ).first()
    return claimed is not None


def fire_due(
    engine: Engine,
    *,
    now: dt.datetime,
    rules: WatchRules,
    site: str | None = None,
    batch: int = 100,
    limit: int = 100_000,
) -> list[Any]:
    """Fire every timer due at ``now``; the alerts written, in order.

    Timers are claimed and handled ``batch`` at a time, each batch one transaction; a
    handler that raises is rolled back to its savepoint, logged, and its timer tried
    again :data:`RETRY_AFTER` later (the others of the batch go on). ``limit`` bounds
    the timers fired in one call (the rest wait for the next tick).
    """
    fired: list[Any] = []
    count = 0
    retries = 0
    while count < limit:
        try:
            with engine.begin() as conn:
                query = due_query(now, limit=min(batch, limit - count))
                rows = conn.execute(query.with_for_update(skip_locked=True)).all()
                if not rows:
                    break
                watch = Watch(conn=conn, now=now, rules=rules, site=site)
                claimed = 0
                for row in rows:
                    if not _claim(conn, row, now):
                        continue  # another process took it between our select and update
                    claimed += 1
                    _run(watch, row)
        except sa.exc.DBAPIError as exc:
            # Two processes whose handlers lock the same rows in opposite order: the
            # database ends one transaction; its claims were undone, so run it again.
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE or retries >= 5:
                raise
            retries += 1
            log.warning("a batch of timers met another process (%s); trying it again", exc.orig)
            continue
        count += claimed
        fired.extend(watch.fired)
    return fired


def _run(watch: Watch, row: sa.Row[Any]) -> None:
    kind = KINDS.get(row.kind)
    if kind is None:
        log.error("timer %s %s has no handler (kind unknown here); left stopped", row.kind, row.id)
        return
    timer = Timer(
        id=row.id,
        kind=row.kind,
        subject=row.subject,
        due_at=row.due_at,
        fired=row.fired + 1,
        data=dict(row.data or {}),
    )
    mark = len(watch.fired)
    try:
        with watch.conn.begin_nested():
            kind.handler(watch, timer)
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in RETRYABLE:
            raise  # the whole batch goes again (see fire_due)
        _failed(watch, row, mark)
    except Exception:
        _failed(watch, row, mark)


def _failed(watch: Watch, row: sa.Row[Any], mark: int) -> None:
    """Undo what the handler queued, log it, and try the timer again later."""
    del watch.fired[mark:]
    log.exception(
        "timer %s %r (due %s) failed; trying again after %s",
        row.kind,
        row.subject,
        row.due_at.isoformat(),
        RETRY_AFTER,
    )
    watch.conn.execute(
        timers.update().where(timers.c.id == row.id).values(next_fire_at=watch.now + RETRY_AFTER)
    )
