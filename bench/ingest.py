"""Central ingest: events/s committed and acked, against a bare batched INSERT into the
same database, same run, on SQLite and PostgreSQL.

Ours is what central does with each station batch off the wire, minus the broker:
decode the ``EventBatch``, :func:`central.ingest.ingest_batch` (station row locked,
name claim, clock sample, dedup on ``event_id``, insert, projections applied in seq
order, the high-water mark moved, one commit) and encode the ``Ack``. The watch reacts
to stored events after the ack (:mod:`central.watch.reactor`); a second table adds the
time it then takes to react to all of them (deadlines met, timers armed) — what a
station's outbox does not wait for, but central must keep up with. Three mixes, from
several stations, in batches of 200 as the uplink sends them: a real packing's (order
started, two labels, items, packed, shipped: the shipment projection, and the watch
reacts to packed and shipped) and scans only (labels and items: stored and
deduplicated, no projection) — no orders are imported for these two, so the watch
finds no deadlines to meet — and "with orders": the packing mix for orders imported
beforehand (paid an hour ago), whose pack and ship deadlines each packing meets, as at
a real site.
The baseline writes the same rows with the same columns and a commit per batch, as
cheaply as the driver allows: one ``executemany`` of a prepared INSERT on the raw
DBAPI connection, no dedup, no projections, into a copy of the events table made just
before each mix's run (same columns, keys, indexes and rows: a fresh table's indexes
are cheaper to write). Every timed run, either side's, starts from a checkpointed
database (SQLite's WAL copied back and truncated, PostgreSQL's CHECKPOINT), so no run
pays for the pages of what came before it. The best round of each is compared. Not a test.

    .venv/bin/python bench/ingest.py [--events 10000] [--rounds 3] [--backend sqlite,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import events, open_db
from central.ingest import ingest_batch
from central.orders import import_orders
from central.watch.reactor import react_pending
from packline.samples import sample_orders
from sync.events import (
    EventPayload,
    ItemVerified,
    LabelPrinted,
    OrderPacked,
    OrderStarted,
    ShipmentShipped,
)
from sync.messages import Ack, Event, EventBatch, decode, encode, new_event_id
from sync.order import validate_order

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STATIONS = 5
BATCH = 200


def packing_facts(count: int, prefix: str, *, mix: str = "packing") -> list[EventPayload]:
    """``count`` facts as a bench records them.

    ``packing``: seven per order packed — started, two labels, two item scans, packed,
    shipped (a projection and the deadline watch's reactions). ``scans``: the labels
    and item scans of each order only, which central stores without a projection.
    """
    facts: list[EventPayload] = []
    n = 0
    while len(facts) < count:
        order = f"{prefix}{n:06d}"
        labels: list[EventPayload] = [
            LabelPrinted(order_no=order, job_id=f"{order}-w", kind="waybill", verified=True),
            LabelPrinted(order_no=order, job_id=f"{order}-p", kind="packing_list", verified=True),
        ]
        items: list[EventPayload] = [
            ItemVerified(
                order_no=order, parcel_no=1, sku=f"SKU-{k}", barcode=f"69012345{k:05d}", qty=1
            )
            for k in range(2 if mix == "packing" else 4)
        ]
        if mix == "scans":
            facts += labels + items
        else:
            facts += [
                OrderStarted(order_no=order, operator="OP-0042"),
                *labels,
                *items,
                OrderPacked(order_no=order, parcel_count=1, operator="OP-0042"),
                ShipmentShipped(
                    order_no=order,
                    tracking_no=f"SF{n:010d}",
                    carrier="SF Express",
                    parcel_no=1,
                    parcel_count=1,
                    operator="OP-0042",
                    print_job_id=f"{order}-w",
                    print_verified=True,
                ),
            ]
        n += 1
    return facts[:count]


def wire_batches(count: int, tag: str, mix: str) -> list[bytes]:
    """Encoded batches of ``STATIONS`` stations, interleaved as they would arrive."""
    per_station = count // STATIONS
    boot = str(uuid.uuid4())
    now = time.time()
    streams: list[list[bytes]] = []
    for s in range(STATIONS):
        station = f"bench-{tag}-{s:02d}"
        facts = packing_facts(per_station, prefix=f"{tag}{s}-", mix=mix)
        events = [
            Event(
                event_id=new_event_id(),
                station=station,
                seq=i + 1,
                type=f.TYPE,
                version=f.VERSION,
                at_wall=now + i * 0.01,
                at_mono=1000.0 + i * 0.01,
                boot_id=boot,
                payload=f.model_dump(mode="json"),
            )
            for i, f in enumerate(facts)
        ]
        streams.append(
            [
                encode(
                    EventBatch(
                        station=station,
                        events=events[i : i + BATCH],
                        instance_id=f"inst-{station}",
                        boot_id=boot,
                        # A backlog goes out within seconds, long after it was recorded.
                        sent_mono=1000.0 + per_station * 0.01,
                        sent_wall=now + per_station * 0.01,
                    )
                )
                for i in range(0, len(events), BATCH)
            ]
        )
    return [b for group in zip(*streams, strict=True) for b in group]


def ours(engine: Engine, batches: list[bytes]) -> tuple[float, float]:
    """Seconds to store and acknowledge ``batches``, then for the watch to react to
    them (:func:`central.watch.reactor.react_pending`, as central's reactor thread
    does once a batch is acknowledged)."""
    t0 = time.perf_counter()
    for body in batches:
        batch = decode(EventBatch, body)
        result = ingest_batch(engine, batch, site="bench", payload=body)
        encode(Ack(station=batch.station, seq=result.acked, at=time.time()))
    t1 = time.perf_counter()
    reacted = react_pending(engine)
    assert reacted == sum(len(decode(EventBatch, b).events) for b in batches), reacted
    return t1 - t0, time.perf_counter() - t1


BARE_COLUMNS = (
    "event_id, station, seq, type, version, instance_id, at_wall, at_mono, at_corrected,"
    " boot_id, payload, received_at"
)


def bare(engine: Engine, batches: list[bytes], table: str) -> float:
    """The same rows, one prepared executemany and one commit per batch, raw DBAPI."""
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        sql = f"INSERT INTO {table} ({BARE_COLUMNS}) VALUES ({', '.join([mark] * 12)})"
        t0 = time.perf_counter()
        for body in batches:
            batch = decode(EventBatch, body)
            now = dt.datetime.now(dt.UTC)
            rows = [
                (
                    e.event_id,
                    e.station,
                    e.seq,
                    e.type,
                    e.version,
                    batch.instance_id,
                    e.at_wall,
                    e.at_mono,
                    None,
                    e.boot_id,
                    json.dumps(e.payload),
                    now,
                )
                for e in batch.events
            ]
            cur = dbapi.cursor()
            if engine.dialect.name == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(sql, rows)
            dbapi.commit()
        return time.perf_counter() - t0
    finally:
        raw.close()


def bare_table(engine: Engine, name: str) -> None:
    """A table of the events table's shape: its columns, keys and indexes."""
    copy = sa.Table(
        name,
        sa.MetaData(),
        *(c._copy() for c in events.columns),  # `type` keeps its index
        sa.UniqueConstraint("station", "seq"),
        sa.Index(f"ix_{name}_station_boot_id", "station", "boot_id"),
    )
    copy.create(engine)


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        engine = open_db(f"sqlite:///{tmp / 'central.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"bench_ingest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        engine = open_db(f"{PG_URL}?options=-csearch_path%3D{schema}")
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


MIXES = ("packing", "scans", "orders")


def import_their_orders(engine: Engine, batches: list[bytes]) -> None:
    """Import an order, paid an hour ago, for every order the batches speak of: their
    deadlines are then armed, and every shipment meets them, as at a real site."""
    numbers = sorted(
        {
            str(e.payload["order_no"])
            for body in batches
            for e in decode(EventBatch, body).events
            if "order_no" in e.payload
        }
    )
    paid = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    samples = sample_orders(len(numbers), prefix="BENCH", paid_from=paid)
    for start in range(0, len(numbers), 1000):
        import_orders(
            engine,
            [
                validate_order({**sample, "order_no": number, "paid_at": paid.isoformat()})
                for sample, number in zip(
                    samples[start : start + 1000], numbers[start : start + 1000], strict=True
                )
            ],
        )


def settle(engine: Engine) -> None:
    """Checkpoint the database, so the next timed run starts from the same state."""
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        if engine.dialect.name == "sqlite":
            dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            dbapi.rollback()
            dbapi.autocommit = True
            try:
                dbapi.execute("CHECKPOINT")
            except psycopg.errors.InsufficientPrivilege:
                pass  # a site's own database user may not; its checkpoints come by time
            finally:
                dbapi.autocommit = False
    finally:
        raw.close()


@dataclasses.dataclass
class Rates:
    """Events/s of one mix: the bare INSERT run just before it, ingest (committed and
    acked), and ingest with the watch's reactions after it."""

    bare: float
    stored: float
    watched: float


def copy_of_events(engine: Engine, name: str) -> None:
    """:func:`bare_table` holding what the events table holds: the baseline's inserts
    then meet indexes as big as ours do (a fresh table's are cheaper to write, and a
    SQLite commit writes and syncs every page a batch touched)."""
    bare_table(engine, name)
    with engine.begin() as conn:
        columns = ", ".join(c.name for c in events.columns if c.name != "id")
        conn.exec_driver_sql(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM events")


def run(backend: str, count: int, rounds: int) -> dict[str, Rates]:
    with (
        tempfile.TemporaryDirectory(prefix="packline-ingest-") as name,
        database(backend, Path(name)) as engine,
    ):
        times: dict[str, list[tuple[float, float, float]]] = {mix: [] for mix in MIXES}
        for r in range(rounds):
            for mix in MIXES:
                batches = wire_batches(count, f"{mix[0]}{r}", "packing" if mix == "orders" else mix)
                if mix == "orders":
                    import_their_orders(engine, batches)
                table = f"bare_events_{r}_{mix}"
                copy_of_events(engine, table)
                settle(engine)
                base = bare(engine, wire_batches(count, f"b{r}{mix}", "packing"), table)
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP TABLE {table}")
                settle(engine)
                stored, reacted = ours(engine, batches)
                times[mix].append((base, stored, stored + reacted))
    return {
        mix: Rates(
            bare=count / min(t[0] for t in ts),
            stored=count / min(t[1] for t in ts),
            watched=count / min(t[2] for t in ts),
        )
        for mix, ts in times.items()
    }


LABELS = {"packing": "a packing", "scans": "scans only", "orders": "with orders"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="sqlite,postgres")
    args = parser.parse_args()
    print(
        f"central ingest: {args.events:,} events per round ({STATIONS} stations, batches of "
        f"{BATCH}), best of {args.rounds} rounds; events/s"
    )
    print(
        f"{'':10}{'mix':<13}{'bare INSERT':>12}{'committed+acked':>17}{'ratio':>7}"
        f"{'+ the watch':>13}{'ratio':>7}"
    )
    for backend in args.backend.split(","):
        try:
            rates = run(backend, args.events, args.rounds)
        except psycopg.OperationalError as exc:
            print(f"{backend:10}skipped: {str(exc).strip().splitlines()[0]}")
            continue
        for mix, r in rates.items():
            print(
                f"{backend:10}{LABELS[mix]:<13}{r.bare:>12,.0f}{r.stored:>17,.0f}"
                f"{r.stored / r.bare:>7.2f}{r.watched:>13,.0f}{r.watched / r.bare:>7.2f}"
            )
    print(
        "a packing: started, labels, items, packed, shipped (the shipment projection; the "
        "watch reacts to packed and shipped); scans only: labels and items (stored, no "
        "projection); with orders: a packing of imported orders, whose deadlines each "
        "shipment meets. + the watch: until the watch has also reacted to every event. "
        "Goal: ratio ≥ 0.5 (committed and acked)"
    )


if __name__ == "__main__":
    main()
