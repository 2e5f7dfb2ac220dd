"""The timers of open alarms as a supervisor reads them (A2, D5): for the web pages.

For each exception (or other alarm, by ``dedup_key``) still running: the level it is at
and its name, when the next ``repeat`` is due (none once acknowledged), when it climbs
to the next level (none once a plan settles it), when it reaches the top whatever
happens, and who acknowledged it. Read from the ``escalations`` and ``timers`` tables
the tick works on, so the page shows exactly what the tick will do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY
from central.watch.escalation import CLIMB, REPEAT, TOP
from central.watch.rules import EscalationPolicy
from central.watch.tables import escalations, timers

__all__ = ["alarm_timers"]


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def alarm_timers(engine: Engine, dedup_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{dedup_key: timers}`` for the active alarms among ``dedup_keys``.

    Each: ``level``, ``level_name``, ``levels`` (how many), ``acked_at``, ``acked_by``,
    ``next_repeat_at``, ``next_climb_at`` (and ``next_level_name``), ``top_at``,
    ``repeat_every_s``. Keys without an active alarm are left out.
    """
    keys = list(dict.fromkeys(dedup_keys))
    if not keys:
        return {}
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = (
            conn.execute(
                sa.select(escalations).where(
                    escalations.c.dedup_key.in_(keys), escalations.c.ended_at.is_(None)
                )
            )
            .mappings()
            .all()
        )
        subjects = [str(r["id"]) for r in rows]
        due: dict[tuple[str, str], dt.datetime] = {}
        if subjects:
            for t in conn.execute(
                sa.select(timers.c.kind, timers.c.subject, timers.c.next_fire_at).where(
                    timers.c.kind.in_((REPEAT, CLIMB, TOP)),
                    timers.c.subject.in_(subjects),
                    timers.c.next_fire_at.is_not(None),
                )
            ):
                due[(t.kind, t.subject)] = t.next_fire_at
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        policy = EscalationPolicy.model_validate(r["policy"])
        level = int(r["level"])
        subject = str(r["id"])
        climb = due.get((CLIMB, subject))
        out[r["dedup_key"]] = {
            "level": level,
            "level_name": policy.levels[min(level, len(policy.levels)) - 1].name,
            "levels": len(policy.levels),
            "acked_at": _iso(r["acked_at"]),
            "acked_by": r["acked_by"],
            "next_repeat_at": _iso(due.get((REPEAT, subject))),
            "repeat_every_s": policy.repeat_every.total_seconds(),
            "next_climb_at": _iso(climb),
            "next_level_name": policy.levels[level].name
            if climb is not None and level < len(policy.levels)
            else None,
            "top_at": _iso(due.get((TOP, subject))),
        }
    return out
