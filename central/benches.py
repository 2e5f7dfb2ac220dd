"""Refused scans and integrity per bench (A2): what shows a misconfigured bench.

For each station of the site: its recent ``scan.rejected`` events (what was scanned,
the code and the words the packer saw, at the bench's time), the refusals of the last
``window`` counted by code, the messages central set aside for it (dead letters, by
reason; ``integrity`` — an event at a seq central holds under another id — first) and
a two-bench name conflict. A bench refusing most scans for one reason usually has a
setting wrong; :data:`HINTS` says which.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, dead_letters, events, stations

__all__ = ["HINTS", "bench_problems"]

#: Refusal code → what to check on the bench when it dominates.
HINTS: dict[str, str] = {
    "unknown_code": "codes match no order: are the orders reaching the bench "
    "(orders cursor), and is the scanner's keyboard layout right?",
    "label_does_not_fit": "the label size in station.toml differs from the roll in the printer",
    "printer_not_ready": "the printer is not ready: check it (see the equipment page)",
    "no_operator": "packers scan items before their badge",
    "bad_command": "a command barcode this bench does not know: an old command sheet?",
    "not_packable": "orders come blocked (incomplete or held): see the orders page",
}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def _at(row: Any) -> str | None:
    if row.at_corrected is not None:
        return _iso(row.at_corrected)
    return dt.datetime.fromtimestamp(row.at_wall, dt.UTC).isoformat()


def bench_problems(
    engine: Engine,
    *,
    now: dt.datetime,
    site: str | None = None,
    shown: int = 20,
    window: dt.timedelta = dt.timedelta(hours=24),
) -> dict[str, Any]:
    """``{"benches": [...], "unassigned": [...]}``.

    Each bench: ``station``, ``online``, ``name_conflict``, ``refused`` (the latest
    ``shown`` refusals, newest first: ``at``, ``code``, ``reason``, ``text``,
    ``order_no``, ``operator``), ``refused_recent`` (count in ``window``),
    ``refused_by_code`` (``[{code, count, hint}]`` in ``window``, most first),
    ``integrity`` (count), ``dead_letters`` (latest ``shown``) and
    ``dead_letters_by_reason``. ``unassigned``: dead letters naming no station.
    """
    since = now - window
    with engine.connect().execution_options(**READ_ONLY) as conn:
        query = sa.select(stations.c.station, stations.c.online, stations.c.name_conflict)
        if site is not None:
            query = query.where(stations.c.site == site)
        benches = {
            r.station: {
                "station": r.station,
                "online": bool(r.online),
                "name_conflict": r.name_conflict,
                "refused": [],
                "refused_recent": 0,
                "refused_by_code": [],
                "integrity": 0,
                "dead_letters": [],
                "dead_letters_by_reason": {},
            }
            for r in conn.execute(query.order_by(stations.c.station))
        }
        names = list(benches)
        recent: dict[str, Counter[str]] = defaultdict(Counter)
        if names:
            rows = conn.execute(
                sa.select(
                    events.c.station,
                    events.c.at_wall,
                    events.c.at_corrected,
                    events.c.received_at,
                    events.c.payload,
                )
                .where(events.c.type == "scan.rejected", events.c.station.in_(names))
                .order_by(events.c.id.desc())
                .limit(max(shown * len(names), 500))
            ).all()
            for r in rows:
                p = r.payload if isinstance(r.payload, dict) else {}
                bench = benches[r.station]
                received = r.received_at
                if received.tzinfo is None:
                    received = received.replace(tzinfo=dt.UTC)
                if received >= since:
                    recent[r.station][str(p.get("code") or "")] += 1
                if len(bench["refused"]) < shown:
                    bench["refused"].append(
                        {
                            "at": _at(r),
                            "code": str(p.get("code") or ""),
                            "reason": str(p.get("reason") or ""),
                            "text": str(p.get("text") or ""),
                            "order_no": p.get("order_no"),
                            "operator": p.get("operator"),
                        }
                    )
        letters = conn.execute(
            sa.select(
                dead_letters.c.station,
                dead_letters.c.reason,
                dead_letters.c.detail,
                dead_letters.c.repeats,
                dead_letters.c.first_at,
                dead_letters.c.last_at,
                dead_letters.c.topic,
                dead_letters.c.size,
            ).order_by(dead_letters.c.last_at.desc(), dead_letters.c.id.desc())
        ).all()
    unassigned: list[dict[str, Any]] = []
    for d in letters:
        item = {
            "reason": d.reason,
            "detail": d.detail,
            "repeats": int(d.repeats),
            "first_at": _iso(d.first_at),
            "last_at": _iso(d.last_at),
            "topic": d.topic,
            "size": int(d.size),
        }
        owner = benches.get(d.station) if d.station else None
        if owner is None:
            if d.station is None and len(unassigned) < shown:
                unassigned.append(item)
            continue
        by_reason = owner["dead_letters_by_reason"]
        by_reason[d.reason] = by_reason.get(d.reason, 0) + int(d.repeats)
        if d.reason == "integrity":
            owner["integrity"] += int(d.repeats)
        if len(owner["dead_letters"]) < shown:
            owner["dead_letters"].append(item)
    for name, bench in benches.items():
        counts = recent.get(name, Counter())
        bench["refused_recent"] = sum(counts.values())
        bench["refused_by_code"] = [
            {"code": code, "count": n, "hint": HINTS.get(code, "")}
            for code, n in counts.most_common()
        ]
    return {"benches": list(benches.values()), "unassigned": unassigned}
