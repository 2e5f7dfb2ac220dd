"""Two writers at once (two ingest workers, two imports): still exactly once, seqs in order."""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import events, orders, shipments
from central.ingest import store_batch
from central.orders import import_orders
from sync.order import Order
from tests.support.central import batch, event


def together(*jobs: Callable[[], object]) -> None:
    """Run ``jobs`` in threads released at the same moment; re-raise the first failure."""
    gate = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        gate.wait()
        try:
            job()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


def test_two_workers_storing_the_same_station(engine: Engine) -> None:
    evs = [event("b1", seq) for seq in range(1, 41)]
    # Overlapping, out-of-order batches from two workers (as with a shared subscription).
    jobs = [
        lambda: [store_batch(engine, batch("b1", *evs[i : i + 5])) for i in range(0, 40, 5)],
        lambda: [store_batch(engine, batch("b1", *evs[i : i + 8])) for i in range(32, -1, -8)],
    ]
    together(*jobs)
    with engine.connect() as conn:
        n_events = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        n_ships = conn.execute(
            sa.select(sa.func.count(sa.distinct(shipments.c.event_id)), sa.func.count())
        ).one()
    assert n_events == 40
    assert tuple(n_ships) == (40, 40)
    assert store_batch(engine, batch("b1")) == 40


def test_concurrent_imports_take_distinct_contiguous_seqs(engine: Engine) -> None:
    def importer(prefix: str) -> Callable[[], object]:
        return lambda: [import_orders(engine, [Order(order_no=f"{prefix}-{i}")]) for i in range(10)]

    together(importer("A"), importer("B"))
    with engine.connect() as conn:
        seqs = sorted(conn.execute(sa.select(orders.c.order_seq)).scalars())
    assert seqs == list(range(1, 21))
