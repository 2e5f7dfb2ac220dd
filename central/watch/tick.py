"""One pass of the watch at one instant: :func:`tick`.

``packline central tick --now …`` runs one; ``packline central serve`` runs one every
``tick_every`` seconds. A pass first reacts to the stored events the watch has not
reacted to yet (:mod:`central.watch.reactor`: a deadline a stored shipment met is met
before its timer is looked at), runs the sweeps (station offline, label stock) and then
fires every timer due at ``now`` (deadlines, escalation steps, repeats, follow-ups of
bench events). Running it twice at one instant fires nothing the second time; two
processes running it at once fire each timer once between them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

from sqlalchemy.engine import Engine

from central.watch.alerts import Alert
from central.watch.conditions import SWEEPS
from central.watch.context import Watch
from central.watch.reactor import react_pending
from central.watch.rules import WatchRules
from central.watch.timers import fire_due

__all__ = ["TickResult", "tick"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TickResult:
    """What one pass did: its instant, the alerts it wrote (in order), how long it took."""

    now: dt.datetime
    alerts: list[Alert]
    seconds: float


def tick(
    engine: Engine,
    *,
    now: dt.datetime,
    site: str,
    rules: WatchRules | None = None,
    batch: int = 100,
) -> TickResult:
    """Run the watch once at ``now`` for ``site``; the alerts are in the outbox when it
    returns (send them with :func:`central.watch.alerts.publish_pending`)."""
    if now.tzinfo is None:
        raise ValueError(f"tick needs a timezone-aware time, got {now!r}")
    rules = rules or WatchRules()
    started = time.perf_counter()
    fired: list[Alert] = []
    # Waits for a reactor busy with a station rather than judge without its events.
    react_pending(engine, skip_locked=False)
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=now, rules=rules, site=site)
        for check in SWEEPS:
            mark = len(watch.fired)
            try:
                with conn.begin_nested():
                    check(watch, site)
            except Exception:
                del watch.fired[mark:]
                log.exception("watch check %s failed; the others go on", check.__name__)
    fired.extend(watch.fired)
    fired.extend(fire_due(engine, now=now, rules=rules, site=site, batch=batch))
    return TickResult(now=now, alerts=fired, seconds=time.perf_counter() - started)
