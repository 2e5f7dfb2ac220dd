"""Conditions: a state of the world that needs a person while it lasts.

A station offline for more than ``offline_after``, a printer with fewer than
``labels_low`` labels, a backlog that does not drain: each is a condition with a stable
key. :func:`raise_condition` opens one alarm per key (``opened``; repeats and climbs by
its policy until acknowledged) however often it is called; :func:`clear_condition` ends
it (``resolved``). Other parts of central raise their own conditions through these two
functions.

Sweeps are checks the tick runs every time over small tables (the stations of the
site), registered with :func:`sweep`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db import stations
from central.views import not_retired
from central.watch import escalation
from central.watch.alerts import Alert
from central.watch.context import Watch, when
from central.watch.rules import Severity, WatchRules, topic_word
from central.watch.tables import escalations

__all__ = [
    "SWEEPS",
    "active_conditions",
    "check_stations",
    "clear_condition",
    "raise_condition",
    "sweep",
]

log = logging.getLogger(__name__)

Sweep = Callable[[Watch, str], None]
#: Checks run by every tick, in order, with the tick's watch and site.
SWEEPS: list[Sweep] = []


def sweep(fn: Sweep) -> Sweep:
    """Register ``fn(watch, site)`` to run on every tick."""
    SWEEPS.append(fn)
    return fn


def _raise(
    watch: Watch,
    *,
    key: str,
    dept: str,
    severity: str,
    message: str,
    order_no: str | None = None,
) -> Alert | None:
    mark = len(watch.fired)
    started = escalation.start(
        watch,
        dedup_key=key,
        subject=f"condition:{key}",
        title=message,
        dept=topic_word(dept),
        severity=str(Severity(severity)),
        policy=watch.rules.policy(str(Severity(severity))),
        message=message,
        order_no=order_no,
        settle_on_ack=True,
    )
    return watch.fired[mark] if started is not None else None


def _clear(watch: Watch, *, key: str, message: str | None) -> Alert | None:
    alarm = escalation.active(watch.conn, key, lock=True)
    if alarm is None:
        return None
    mark = len(watch.fired)
    ended = escalation.finish(watch, alarm, message=message or f"Cleared: {alarm.title}")
    return watch.fired[mark] if ended else None


def raise_condition(
    conn: Connection,
    *,
    key: str,
    dept: str,
    severity: str,
    message: str,
    now: dt.datetime,
    rules: WatchRules | None = None,
    order_no: str | None = None,
) -> Alert | None:
    """Raise condition ``key`` in ``conn``'s transaction: the ``opened`` alert, or None
    when it is raised already (deduplicated by ``key``).

    ``dept`` is the department whose people hear it, ``severity`` ``general`` or
    ``major`` (it picks the escalation policy from ``rules``, the defaults without).
    The alert is sent once the transaction commits.
    """
    watch = Watch(conn=conn, now=now, rules=rules or WatchRules())
    return _raise(watch, key=key, dept=dept, severity=severity, message=message, order_no=order_no)


def clear_condition(
    conn: Connection,
    *,
    key: str,
    now: dt.datetime,
    message: str | None = None,
    rules: WatchRules | None = None,
) -> Alert | None:
    """End condition ``key``: the ``resolved`` alert, or None when it was not raised."""
    watch = Watch(conn=conn, now=now, rules=rules or WatchRules())
    return _clear(watch, key=key, message=message)


def active_conditions(conn: Connection) -> set[str]:
    """The keys of every condition raised and not cleared."""
    return set(
        conn.execute(
            sa.select(escalations.c.dedup_key).where(
                escalations.c.ended_at.is_(None), escalations.c.subject.like("condition:%")
            )
        ).scalars()
    )


@sweep
def check_stations(watch: Watch, site: str) -> None:
    """Station offline for more than ``offline_after``; labels below ``labels_low``."""
    rules = watch.rules
    dept = rules.route("equipment_fault").dept
    raised = active_conditions(watch.conn)
    rows = watch.conn.execute(
        sa.select(
            stations.c.station,
            stations.c.online,
            stations.c.last_seen,
            stations.c.created_at,
            stations.c.labels_left,
        ).where(stations.c.site == site, not_retired())
    ).all()
    for row in rows:
        offline_key = f"station_offline:{row.station}"
        since = row.last_seen or row.created_at
        if not row.online and watch.now - since > rules.offline_after:
            if offline_key not in raised:
                _raise(
                    watch,
                    key=offline_key,
                    dept=dept,
                    severity="general",
                    message=f"{row.station} offline since {when(since)}",
                )
        elif row.online and offline_key in raised:
            _clear(watch, key=offline_key, message=f"{row.station} is back online")
        labels_key = f"labels_low:{row.station}"
        left = row.labels_left
        if left is None:
            continue
        if row.online and left < rules.labels_low:
            if labels_key not in raised:
                _raise(
                    watch,
                    key=labels_key,
                    dept=dept,
                    severity="general",
                    message=f"{row.station}: {left} labels left in the printer "
                    f"(below {rules.labels_low}); load a new roll",
                )
        elif left >= rules.labels_low and labels_key in raised:
            _clear(watch, key=labels_key, message=f"{row.station}: labels refilled ({left} left)")
