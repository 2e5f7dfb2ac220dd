"""Property: central judges a batch's deadlines once, when the batch is stored, and the
verdict is the one judging its events one at a time reaches (hypothesis, on SQLite and
PostgreSQL).

Two worlds hold the same orders (their parcel counts generated) and are ticked at the
same moments; then the same packings and shipments (any order, any parcel, any time,
late or in time, a parcel shipped twice) reach world "one" as ONE batch and world
"each" as a batch per event. Every deadline must end the same in both — state, when
and by which bench and event it was met, when central heard — and so must the timers
still to fire (a late deadline's breach, a false alarm to resolve). Only a note on a
breached deadline may differ: one batch that holds a late shipment and an earlier one
gives the false alarm alone.
"""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from central.watch.tables import deadlines, timers
from tests.support.watch import PAID, M, bench_batch, bench_event, make_order, put_orders, ticks

_case = itertools.count()

facts = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2),  # which order
        st.sampled_from(["order.packed", "shipment.shipped"]),
        st.integers(min_value=1, max_value=3),  # parcel
        st.integers(min_value=0, max_value=60 * 60),  # minutes after payment
    ),
    min_size=1,
    max_size=12,
)
cases = st.tuples(
    st.lists(st.integers(min_value=1, max_value=3), min_size=3, max_size=3),
    facts,
    st.lists(st.integers(min_value=0, max_value=60 * 60), max_size=2),  # ticks first
)


def _facts(world: str, generated: list[tuple[int, str, int, int]]) -> list[Any]:
    out = []
    for order, type, parcel, minutes in generated:
        payload: dict[str, Any] = {"order_no": f"{world}-{order}", "operator": "li"}
        if type == "shipment.shipped":
            payload |= {"parcel_no": parcel, "parcel_count": 3, "tracking_no": f"SF{parcel}"}
        else:
            payload["parcel_count"] = 1
        out.append((type, PAID + minutes * M, payload))
    return out


def _deadlines(engine: Engine, world: str) -> dict[Any, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deadlines).where(deadlines.c.order_no.like(f"{world}-%"))
        ).mappings()
        return {
            (r["order_no"].removeprefix(world), r["which"]): (
                r["state"],
                r["met_at"],
                r["met_station"] and r["met_station"].removeprefix(world),
                r["met_event_id"] is None,
                r["heard_at"] is None,
                r["breached_at"],
            )
            for r in rows
        }


def _armed(engine: Engine, world: str) -> dict[Any, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(timers.c.kind, timers.c.subject, timers.c.next_fire_at).where(
                timers.c.subject.like(f"{world}-%"), timers.c.next_fire_at.is_not(None)
            )
        )
        return {(r.kind, r.subject.removeprefix(world)): r.next_fire_at for r in rows}


def _event_ids(engine: Engine, world: str) -> list[str | None]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(deadlines.c.met_event_id)
                .where(deadlines.c.order_no.like(f"{world}-%"))
                .order_by(deadlines.c.order_no, deadlines.c.which)
            ).scalars()
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases)
# A two-parcel order whose parcels come in one batch; a late packing, then in time.
@example(case=([2, 1, 1], [(0, "shipment.shipped", 1, 60), (0, "shipment.shipped", 2, 70)], []))
@example(case=([1, 1, 1], [(0, "order.packed", 1, 30 * 60), (0, "order.packed", 1, 60)], []))
# Breached first, then one batch: a late shipment and an in-time packing of one order.
@example(
    case=(
        [1, 1, 1],
        [(1, "shipment.shipped", 1, 50 * 60), (1, "order.packed", 1, 20 * 60)],
        [49 * 60],
    )
)
def test_one_batch_and_one_event_at_a_time_meet_the_same_deadlines(
    engine: Engine, case: tuple[list[int], list[tuple[int, str, int, int]], list[int]]
) -> None:
    parcels, generated, tick_minutes = case
    n = next(_case)
    one, each = f"one{n}", f"each{n}"
    put_orders(
        engine,
        *(make_order(f"{w}-{i}", parcels=p) for w in (one, each) for i, p in enumerate(parcels)),
    )
    ticks(engine, *(PAID + m * M for m in sorted(tick_minutes)))

    events = bench_batch(engine, f"{one}-bench", _facts(one, generated))
    for type, at, payload in _facts(each, generated):
        bench_event(engine, f"{each}-bench", type, at=at, **payload)

    judged = _deadlines(engine, one)
    assert judged == _deadlines(engine, each)
    assert _armed(engine, one) == _armed(engine, each)
    # Met by the batch's own events, and at least one deadline was judged by them.
    ids = {e.event_id for e in events}
    assert all(i is None or i in ids for i in _event_ids(engine, one))
    if any(t == "shipment.shipped" for _, t, _, _ in generated):
        assert any(state[1] is not None for state in judged.values())
