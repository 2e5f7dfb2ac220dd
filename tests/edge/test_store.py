"""The station store: one transaction per fact, outbox kept until central's ack."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge.clock import Clock
from edge.store import MIGRATIONS, WRITERS, StationStore
from sync.events import BadEventPayload, ScanRejected, ShipmentShipped
from sync.messages import Event, OrdersMessage
from sync.order import Order


class FixedClock:
    """A clock the test sets by hand."""

    boot_id = "boot-test"

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now - 1_699_999_000.0


@pytest.fixture
def store(tmp_path: Path) -> StationStore:
    clock: Clock = FixedClock()
    return StationStore(tmp_path / "st.sqlite", station="bench-01", clock=clock)


def test_events_get_contiguous_seq_and_stay_until_acknowledged(store: StationStore) -> None:
    events = [store.record("t", {"n": i}) for i in range(5)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert len({e.event_id for e in events}) == 5
    assert [e.seq for e in store.pending()] == [1, 2, 3, 4, 5]
    assert store.acknowledge(3) == 3
    assert [e.seq for e in store.pending()] == [4, 5]
    # The events themselves are kept: acks drop only outbox rows.
    assert len(store.events()) == 5


def test_ack_beyond_what_was_recorded_is_ignored(store: StationStore) -> None:
    store.record("t", {})
    assert store.acknowledge(99) == 0
    assert store.backlog() == 1


def test_failed_state_change_stores_nothing(store: StationStore) -> None:
    def broken(db: sqlite3.Connection, event: Event) -> None:
        db.execute("INSERT INTO settings (key, value) VALUES ('x', '1')")
        raise RuntimeError("disk said no")

    with pytest.raises(RuntimeError):
        store.record("t", {}, write=broken)
    assert store.events() == []
    assert store.backlog() == 0
    # And the next event still gets seq 1: nothing half-written is left behind.
    assert store.record("t", {}).seq == 1


def test_store_settings_are_durable(store: StationStore) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    mode = store._db.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == 2  # FULL


def _order(no: str, rev: int, **kw: object) -> Order:
    return Order(order_no=no, revision=rev, tracking_no=f"T{no}", **kw)  # type: ignore[arg-type]


def test_late_order_revision_never_overwrites_newer(store: StationStore) -> None:
    store.apply_orders(OrdersMessage(orders=[_order("A", 2, note="new")], cursor=5))
    changed = store.apply_orders(OrdersMessage(orders=[_order("A", 1, note="old")], cursor=3))
    assert changed == 0
    held = store.order("A")
    assert held is not None and held.note == "new" and held.revision == 2
    assert store.orders_cursor() == 5  # the cursor never goes back either
    store.apply_orders(OrdersMessage(orders=[_order("A", 3, note="newer")], cursor=7))
    assert store.order("A").note == "newer"  # type: ignore[union-attr]
    assert store.find_order("TA") == store.order("A")
    assert store.find_order("nope") is None


WRITER = textwrap.dedent(
    """
    import sys, sqlite3
    from edge.clock import SystemClock
    from edge.store import StationStore
    store = StationStore(__import__("pathlib").Path(sys.argv[1]), station="b", clock=SystemClock())
    def ship(db, event):
        db.execute(
            "INSERT INTO shipments (order_no, parcel_no, parcel_count, tracking_no, carrier,"
            " service, operator, shipped_at, event_seq) VALUES (?, 1, 1, 't', 'c', 's', 'o', ?, ?)",
            (f"O{event.seq}", event.at_wall, event.seq))
    i = 0
    while True:
        store.record("t.padded", {"order_no": f"O{i}", "pad": "x" * 500}, write=ship)
        i += 1
        if i == 20:
            print("ready", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 0.9])
def test_sigkill_mid_write_leaves_no_half_record(tmp_path: Path, delay: float) -> None:
    db_path = tmp_path / "kill.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store = StationStore(db_path, station="b", clock=FixedClock())
    events = store.events()
    seqs = [e.seq for e in events]
    assert len(seqs) >= 20
    assert seqs == list(range(1, len(seqs) + 1)), "seq must have no gaps"
    assert [e.seq for e in store.pending(limit=100_000)] == seqs, "every event in the outbox"
    shipped = store.shipments()
    assert sorted(s.order_no for s in shipped) == sorted(f"O{s}" for s in seqs)
    assert all(json.dumps(e.payload) for e in events)
    # The store keeps working after the crash.
    assert store.record("t", {}).seq == len(seqs) + 1


def test_a_payload_that_does_not_fit_its_type_records_nothing(store: StationStore) -> None:
    with pytest.raises(BadEventPayload, match="reason"):
        store.record("scan.rejected", {"text": "X1"})
    with pytest.raises(BadEventPayload, match="unknown field"):
        store.record("scan.rejected", {"text": "X1", "reason": "r", "oops": 1})
    assert store.events() == [] and store.backlog() == 0
    event = store.record(ScanRejected(text="X1", reason="unknown order X1"))
    assert (event.seq, event.type, event.version) == (1, "scan.rejected", 1)
    # The stored payload is the model's, defaults included: what central decodes.
    assert store.pending()[0].payload == {
        "text": "X1",
        "reason": "unknown order X1",
        "order_no": None,
        "code": "",
        "operator": None,
    }


def test_events_recorded_before_the_catalogue_are_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY)")
    db.executescript(MIGRATIONS[0][1])
    db.execute("INSERT INTO _migrations VALUES ('0001_initial')")
    db.execute(
        "INSERT INTO events (seq, event_id, type, at_wall, at_mono, boot_id, payload)"
        " VALUES (1, 'e1', 'scan.rejected', 1.0, 1.0, 'b', '{\"text\": \"x\", \"reason\": \"r\"}')"
    )
    db.execute("INSERT INTO outbox (seq) VALUES (1)")
    db.close()
    store = StationStore(path, station="old", clock=FixedClock())
    try:
        assert [(e.seq, e.version) for e in store.pending()] == [(1, 1)]
        assert store.record(ScanRejected(text="y", reason="r")).seq == 2
    finally:
        store.close()


def test_next_to_pack_is_soonest_deadline_first_and_leaves_out_the_shipped(
    store: StationStore,
) -> None:
    from sync.order import validate_order

    def order(no: str, **fields: object) -> Order:
        return validate_order({"order_no": no, "lines": [{"sku": "A"}], **fields})

    store.apply_orders(
        OrdersMessage(
            orders=[
                order("NO-DEADLINE"),
                # +08:00 and Z: the earliest moment wins, not the earliest text.
                order("LATE", ship_by="2026-11-24T18:00:00Z"),
                order("SOON", pack_by="2026-11-25T01:00:00+08:00"),
                order("HELD", status="held", pack_by="2026-11-20T00:00:00Z"),
                order("SHIPPED", pack_by="2026-11-21T00:00:00Z"),
            ],
            cursor=5,
        )
    )
    store.record(
        ShipmentShipped(
            order_no="SHIPPED",
            tracking_no="",
            carrier="",
            parcel_no=1,
            parcel_count=1,
            operator="op",
            print_job_id="j",
            print_verified=False,
        ),
        write=WRITERS["shipment.shipped"],
    )
    assert [o.order_no for o in store.next_to_pack()] == ["SOON", "LATE", "NO-DEADLINE"]
    assert [o.order_no for o in store.next_to_pack(exclude="SOON", limit=1)] == ["LATE"]


def test_a_store_from_before_the_bench_workflow_is_migrated_with_its_orders(
    tmp_path: Path,
) -> None:
    from sync.order import validate_order

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY)")
    for name, sql in MIGRATIONS[:2]:
        assert isinstance(sql, str)
        db.executescript(sql)
        db.execute("INSERT INTO _migrations VALUES (?)", (name,))
    order = validate_order(
        {
            "order_no": "OLD-1",
            "tracking_no": "SF-OLD-1",
            "lines": [{"sku": "A", "barcode": "6901234567892"}],
            "pack_by": "2026-11-24T09:00:00+08:00",
        }
    )
    db.execute(
        "INSERT INTO orders (order_no, revision, status, data, received_at) VALUES (?, 1, ?, ?, 1)",
        (order.order_no, order.status, order.model_dump_json()),
    )
    db.commit()
    db.close()
    store = StationStore(path, station="old", clock=FixedClock())
    try:
        assert store.find_order("SF-OLD-1") == order  # its codes were indexed
        assert store.product_name(["06901234567892"]) == "A"
        assert [o.order_no for o in store.next_to_pack()] == ["OLD-1"]
        assert store.bench_state() is None
    finally:
        store.close()


def _shipped(store: StationStore, order_no: str, parcel_no: int, parcel_count: int) -> None:
    store.record(
        ShipmentShipped(
            order_no=order_no,
            tracking_no="",
            carrier="",
            parcel_no=parcel_no,
            parcel_count=parcel_count,
            operator="op",
            print_job_id=f"j-{order_no}-{parcel_no}",
            print_verified=False,
        ),
        write=WRITERS["shipment.shipped"],
    )


def test_the_screens_waiting_orders_are_one_index_range_stopped_at_the_list(
    store: StationStore,
) -> None:
    from edge.store import NEXT_TO_PACK_SQL
    from sync.order import validate_order

    # Many shipped orders with the earliest deadlines (yesterday's work), an order with
    # one of two parcels shipped, and the waiting ones after them.
    orders = [
        validate_order(
            {
                "order_no": f"W{i:05d}",
                "lines": [{"sku": "A"}],
                "parcels": 2 if i == 300 else 1,
                "pack_by": f"2026-11-{20 + i // 200:02d}T{(i // 10) % 24:02d}:{i % 10:02d}:00Z",
            }
        )
        for i in range(600)
    ]
    store.apply_orders(OrdersMessage(orders=orders, cursor=600))
    for o in orders[:300]:
        _shipped(store, o.order_no, 1, 1)
    _shipped(store, "W00300", 1, 2)
    assert [o.order_no for o in store.next_to_pack(limit=3)] == ["W00300", "W00301", "W00302"]
    _shipped(store, "W00300", 2, 2)
    assert [o.order_no for o in store.next_to_pack(limit=2)] == ["W00301", "W00302"]

    reader = store.screen_reader()
    try:
        assert [o.order_no for o in reader.next_to_pack(limit=2, exclude="W00301")] == [
            "W00302",
            "W00303",
        ]
    finally:
        reader.close()
    # How SQLite reads it: walking the partial index, no sort of every ready order and
    # no count of every shipment (what the screen did before, at every change).
    db = sqlite3.connect(store.path)
    try:
        plan = [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {NEXT_TO_PACK_SQL}", (None, 8))]
    finally:
        db.close()
    assert plan == ["SCAN orders USING INDEX ix_orders_waiting"], plan


def test_a_store_with_shipments_gets_its_waiting_orders_counted_when_migrated(
    tmp_path: Path,
) -> None:
    from sync.order import validate_order

    path = tmp_path / "old.sqlite"
    store = StationStore(path, station="old", clock=FixedClock())
    try:
        store.apply_orders(
            OrdersMessage(
                orders=[
                    validate_order({"order_no": n, "lines": [{"sku": "A"}], "parcels": 2})
                    for n in ("DONE", "HALF", "OPEN")
                ],
                cursor=3,
            )
        )
        _shipped(store, "DONE", 1, 2)
        _shipped(store, "DONE", 2, 2)
        _shipped(store, "HALF", 1, 2)
    finally:
        store.close()
    # As a store written before the waiting-orders migration: no counts, no index.
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP INDEX ix_orders_waiting")
    db.execute("ALTER TABLE orders DROP COLUMN shipped_parcels")
    db.execute("DELETE FROM _migrations WHERE name = '0004_waiting_orders'")
    db.close()
    store = StationStore(path, station="old", clock=FixedClock())
    try:
        assert [o.order_no for o in store.next_to_pack()] == ["HALF", "OPEN"]
    finally:
        store.close()
