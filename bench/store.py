"""The station store's durable record against a bare SQLite insert loop, same process.

Each ``StationStore.record`` writes an event, its outbox row and a shipment row in one
``synchronous=FULL`` WAL transaction. The baseline is the cheapest durable loop SQLite
allows with the same settings: one plain INSERT per committed transaction. The ratio
says what the event envelope, seq allocation and outbox cost per fact. Not a test.

    .venv/bin/python bench/store.py [--count 2000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from edge.clock import SystemClock
from edge.store import StationStore
from sync.events import ShipmentShipped
from sync.messages import Event


def bare_loop(path: Path, count: int) -> list[float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (payload) VALUES (?)", (f'{{"order_no": "O{i}"}}',))
        db.execute("COMMIT")
        times.append(time.perf_counter() - t0)
    db.close()
    return times


def store_loop(path: Path, count: int) -> list[float]:
    store = StationStore(path, station="bench", clock=SystemClock())

    def ship(db: sqlite3.Connection, event: Event) -> None:
        db.execute(
            "INSERT INTO shipments (order_no, parcel_no, parcel_count, tracking_no, carrier,"
            " service, operator, shipped_at, event_seq) VALUES (?, 1, 1, ?, 'SF', 'Std', 'op',"
            " ?, ?)",
            (f"O{event.seq}", f"T{event.seq}", event.at_wall, event.seq),
        )

    times = []
    for i in range(count):
        shipped = ShipmentShipped(
            order_no=f"O{i}",
            tracking_no=f"T{i}",
            carrier="SF Express",
            parcel_no=1,
            parcel_count=1,
            operator="op",
            print_job_id=f"O{i}-r1-waybill-1",
            print_verified=True,
        )
        t0 = time.perf_counter()
        store.record(shipped, write=ship)
        times.append(time.perf_counter() - t0)
    store.close()
    return times


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Interleave rounds so machine noise hits both sides alike.
        bare: list[float] = []
        ours: list[float] = []
        for r in range(4):
            bare += bare_loop(Path(tmp) / f"bare{r}.sqlite", args.count // 4)
            ours += store_loop(Path(tmp) / f"store{r}.sqlite", args.count // 4)
    print(f"durable facts: {len(ours)} per side, synchronous=FULL, WAL")
    print(f"{'':24}{'p50 ms':>10}{'p99 ms':>10}")
    for name, xs in (("bare SQLite insert", bare), ("StationStore.record", ours)):
        print(f"{name:24}{p(xs, 50) * 1e3:>10.3f}{p(xs, 99) * 1e3:>10.3f}")
    print(
        f"ratio record/bare: p50 {p(ours, 50) / p(bare, 50):.2f}  "
        f"p99 {p(ours, 99) / p(bare, 99):.2f}  "
        f"throughput {sum(bare) / sum(ours):.2f}x of bare"
    )


if __name__ == "__main__":
    main()
