"""Property: over any paid times and any tick sequence, every due timer fires exactly
once and none early (hypothesis, on SQLite and PostgreSQL).

For each generated case a model computes, from the tick instants alone, what must have
fired: a warning only when some tick falls between the warning time and the deadline
(and then once), the breach at the first tick at or after the deadline, the order's
repeats in their 15-minute rhythm (one per tick however many were missed), each
escalation level once at the first tick at or after it. The real watch must agree
exactly, and no alert may be earlier than what it is about.
"""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from central.watch.alerts import Alert
from central.watch.tables import timers
from tests.support.watch import H, M, make_order, put_orders, ticks

BASE = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
EVERY = 15 * M
_case = itertools.count()


def first_tick(moments: list[dt.datetime], at_or_after: dt.datetime) -> dt.datetime | None:
    later = [t for t in moments if t >= at_or_after]
    return min(later) if later else None


def expected(paid: dt.datetime, moments: list[dt.datetime]) -> dict[str, list[dt.datetime]]:
    """When each kind of alert about one order must fire, from the ticks alone."""
    out: dict[str, list[dt.datetime]] = {"warning": [], "opened": [], "repeat": [],
                                         "escalated": [], "also": []}  # fmt: skip
    breach: dict[str, dt.datetime | None] = {}
    for which, within in (("pack", 24 * H), ("ship", 48 * H)):
        due = paid + within
        seen = first_tick(moments, due - 6 * H)
        if seen is not None and seen < due:
            out["warning"].append(seen)
        breach[which] = first_tick(moments, due)
    opened = breach["pack"]
    if opened is None:
        return out
    out["opened"].append(opened)
    if breach["ship"] is not None and breach["ship"] != opened:
        out["also"].append(breach["ship"])
    step = opened + EVERY
    for t in sorted(set(moments)):
        if t >= step:
            out["repeat"].append(t)
            step += ((t - step) // EVERY + 1) * EVERY
    for level_due in (opened + H, opened + 2 * H):
        fired = first_tick(moments, level_due)
        if fired is not None:
            out["escalated"].append(fired)
    return out


cases = st.tuples(
    st.lists(st.integers(min_value=0, max_value=48 * 60), min_size=1, max_size=3),
    st.lists(st.integers(min_value=0, max_value=110 * 60), min_size=1, max_size=14),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases)
# The edges: a minute before and at each step, and a tick that sees a deadline past.
@example(case=([0], [17 * 60 + 59, 18 * 60, 23 * 60 + 59, 24 * 60, 24 * 60 + 15, 25 * 60]))
@example(case=([0, 30], [24 * 60, 24 * 60, 42 * 60 + 30, 48 * 60 + 30, 100 * 60]))
@example(case=([5], [110 * 60]))
def test_every_due_timer_fires_exactly_once_and_never_early(
    engine: Engine, case: tuple[list[int], list[int]]
) -> None:
    paid_minutes, tick_minutes = case
    n = next(_case)
    # Each example lives in its own stretch of time with its own orders; the timers of
    # the ones before are cleared so they do not fire in this one.
    base = BASE + n * 400 * H
    with engine.begin() as conn:
        conn.execute(timers.delete())
    orders = {f"E{n}-{i}": base + m * M for i, m in enumerate(paid_minutes)}
    put_orders(engine, *(make_order(no, paid_at=paid) for no, paid in orders.items()))
    moments = [base + m * M for m in sorted(tick_minutes)]
    fired = ticks(engine, *moments)
    for alert in fired:
        assert alert.order_no in orders, alert
    for order_no, paid in orders.items():
        mine = [a for a in fired if a.order_no == order_no]
        got = _by_kind(mine)
        want = expected(paid, moments)
        assert got == want, (order_no, paid, moments)
        for alert in mine:
            assert alert.due_at is not None
            if alert.kind in ("warning", "opened"):
                lead = 6 * H if alert.kind == "warning" else dt.timedelta(0)
                assert alert.at >= alert.due_at - lead  # never early
    # Nothing due at the last tick was left behind.
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(timers.c.next_fire_at <= moments[-1])
        ).scalar_one()
    assert left == 0


def _by_kind(alerts: list[Alert]) -> dict[str, list[dt.datetime]]:
    out: dict[str, list[dt.datetime]] = {"warning": [], "opened": [], "repeat": [],
                                         "escalated": [], "also": []}  # fmt: skip
    for a in alerts:
        kind = "also" if a.kind == "repeat" and ", also:" in a.message else a.kind
        out[kind].append(a.at)
    return out
