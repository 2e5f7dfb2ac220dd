"""The watch reacts to stored events after their batch is acknowledged
(:mod:`central.watch.reactor`): every event once, in seq order, whoever reacts and
however often a reactor is killed; a tick reacts to what waits before it judges."""

from __future__ import annotations

import collections
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import stations
from central.watch import WatchRules
from central.watch.context import Watch
from central.watch.deadlines import list_deadlines
from central.watch.reactions import REACTIONS
from central.watch.reactor import react_pending, waiting
from central.watch.tables import ticket_history, watch_cursors
from central.watch.tickets import open_ticket
from sync.events import OrderPacked
from tests.support.watch import PAID, H, M, bench_batch, kinds, make_order, put_orders, ticks

ROOT = Path(__file__).resolve().parents[2]
INSPECTED = {"tracking_no": "SF9", "outcome": "resellable", "operator": "0042",
             "items": [{"sku": "TEE-BLK-M", "qty": 1}]}  # fmt: skip
LABEL = {"kind": "waybill", "verified": True}


def test_a_batch_is_stored_first_and_a_tick_reacts_before_it_judges(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    bench_batch(engine, "bench-01", [("shipment.shipped", PAID + 2 * H, {"order_no": "A"})],
                react=False)  # fmt: skip
    assert waiting(engine) == {"bench-01": 1}
    assert {d["state"] for d in list_deadlines(engine, order_no="A")} == {"pending"}
    # Past both deadlines: the stored shipment met them, so nothing is late.
    assert kinds(ticks(engine, PAID + 49 * H)) == []
    assert waiting(engine) == {}
    met = list_deadlines(engine, order_no="A")
    assert [(d["which"], d["state"], d["on_time"]) for d in met] == [
        ("pack", "met", True),
        ("ship", "met", True),
    ]
    assert react_pending(engine) == 0  # reacted once: nothing left


def _open_return_tickets(engine: Engine, orders: list[str]) -> dict[str, int]:
    put_orders(engine, *(make_order(o) for o in orders))
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=PAID, rules=WatchRules())
        return {
            o: open_ticket(watch, category="return", description="torn", by="amy", order_no=o)
            for o in orders
        }


def _reactor(url: str) -> subprocess.Popen[bytes]:
    code = (
        "import sys; from central.db import open_db; "
        "from central.watch.reactor import react_pending; "
        "react_pending(open_db(sys.argv[1]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_reactors_killed_mid_backlog_react_to_every_event_once(engine: Engine, db_url: str) -> None:
    orders = [f"R{i:02d}" for i in range(20)]
    tickets = _open_return_tickets(engine, orders)
    inspected: dict[str, list[str]] = collections.defaultdict(list)
    rng = random.Random(7)
    for station in ("bench-01", "bench-02", "bench-03"):
        for start in range(0, 6000, 500):
            facts = []
            for n in range(start, start + 500):
                order = orders[n % len(orders)]
                at = PAID + n * M
                if n % 25 == 0:
                    facts.append(("return.inspected", at, {**INSPECTED, "order_no": order}))
                else:
                    facts.append(
                        ("label.printed", at, {**LABEL, "order_no": order, "job_id": f"j{n}"})
                    )
            events = bench_batch(engine, station, facts, react=False)
            for e in events:
                if e.type == "return.inspected":
                    inspected[str(e.payload["order_no"])].append(e.event_id)
    assert sum(waiting(engine).values()) == 18000

    # Two reactors at once, killed at a random moment after one has moved a cursor,
    # again and again.
    kills = 0
    while kills < 8 and (left := sum(waiting(engine).values())):
        procs = [_reactor(db_url) for _ in range(2)]
        deadline = time.monotonic() + 60
        while sum(waiting(engine).values()) == left and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
    assert kills >= 2, "the reactors finished before any was killed"
    # A killed reactor's PostgreSQL backend may still hold its station's row until it
    # notices the client is gone; the last pass waits for it rather than skip it.
    react_pending(engine, skip_locked=False)

    assert waiting(engine) == {}
    with engine.connect() as conn:
        acked = dict(conn.execute(sa.select(stations.c.station, stations.c.acked_seq)).all())
        reacted = dict(
            conn.execute(sa.select(watch_cursors.c.station, watch_cursors.c.reacted_seq)).all()
        )
        entries = conn.execute(
            sa.select(ticket_history.c.ticket_id, ticket_history.c.data).where(
                ticket_history.c.entry == "return_inspected"
            )
        ).all()
    assert reacted == acked == {"bench-01": 6000, "bench-02": 6000, "bench-03": 6000}
    by_ticket: dict[int, list[str]] = collections.defaultdict(list)
    for ticket_id, data in entries:
        by_ticket[ticket_id].append(data["event_id"])
    # Every inspection written once into its order's ticket: none lost, none twice.
    assert {o: sorted(by_ticket[t]) for o, t in tickets.items()} == {
        o: sorted(inspected[o]) for o in orders
    }


def test_a_reaction_that_fails_holds_up_its_station_only_and_is_logged_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    put_orders(engine, make_order("A"), make_order("B"))

    def faulty(_c: object, row: Any, payload: Any, _at: object, _now: object) -> None:
        if payload.order_no == "B":
            raise RuntimeError("a fault in a reaction")

    # A fault injected into one reaction (the reactor under test is left as it is).
    REACTIONS[OrderPacked.TYPE].insert(0, faulty)
    try:
        packed = {"operator": "li", "parcel_count": 1}
        bench_batch(engine, "bench-01", [("order.packed", PAID + H, {**packed, "order_no": "A"})],
                    react=False)  # fmt: skip
        bench_batch(engine, "bench-02", [("order.packed", PAID + H, {**packed, "order_no": "B"})],
                    react=False)  # fmt: skip
        with caplog.at_level(logging.ERROR, logger="central.watch.reactor"):
            assert react_pending(engine) == 1  # bench-01's
            assert react_pending(engine) == 0  # bench-02 still fails, said once
        errors = [r.getMessage() for r in caplog.records]
        # The tick goes on for everyone else.
        assert kinds(ticks(engine, PAID + 25 * H)) == [("opened", "B")]
        assert len(errors) == 1 and "station bench-02 after seq 0" in errors[0], errors
        assert "a fault in a reaction" in errors[0]
        assert waiting(engine) == {"bench-02": 1}
        assert list_deadlines(engine, order_no="A", state="met")[0]["which"] == "pack"
    finally:
        REACTIONS[OrderPacked.TYPE].remove(faulty)
    # Once the fault is gone, the waiting event is reacted to, once.
    assert react_pending(engine) == 1
    assert waiting(engine) == {}
    # Met in time by the bench's clock after the tick declared it late: a false alarm,
    # resolved by the next tick.
    ticks(engine, PAID + 25 * H + M)
    (pack,) = [d for d in list_deadlines(engine, order_no="B") if d["which"] == "pack"]
    assert pack["state"] == "met" and pack["on_time"] is True
