"""Backups (C3): a full one, changes, two incrementals, restore — every table equal.

On a SQLite file and on PostgreSQL (a database of its own per side, as ``pg_dump``
dumps a whole database). The changes between backups touch every kind of table: new
events and shipments, events of an earlier boot rewritten by a clock correction,
orders added and changed, exceptions moving through their states with their
append-only history, timers, escalations and alerts from ticks, station health, dead
letters.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.backup import BackupError, backup, restore
from central.db import open_db
from central.ingest import ingest_batch, record_status
from central.watch import WatchRules
from central.watch.context import Watch
from central.watch.exceptions import (
    acknowledge_exception,
    open_exception,
    post_plan,
    resolve_exception,
)
from sync.messages import Event, EventBatch, StationStatus, new_event_id
from tests.support.central import PG_HOST, PG_PORT, postgres_reachable
from tests.support.watch import PAID, H, M, make_order, put_orders, ticks

T0 = PAID + 2 * H


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    return str(request.param)


@pytest.fixture
def new_db(backend: str, tmp_path: Path) -> Iterator[Any]:
    """Makes fresh empty databases of ``backend``; drops them after the test."""
    made: list[str] = []
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test"

    def make(label: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'{label}.db'}"
        name = f"bk_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"

    yield make
    for name in made:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def at(engine: Engine, moment: dt.datetime, step: Any) -> Any:
    with engine.begin() as conn:
        return step(Watch(conn=conn, now=moment, rules=WatchRules()))


def shipped(seq: int, *, mono: float, boot: str, order_no: str) -> Event:
    return Event(
        event_id=new_event_id(),
        station="b1",
        seq=seq,
        type="shipment.shipped",
        at_wall=PAID.timestamp() + mono + 7,  # the bench's wall clock is 7 s ahead
        at_mono=mono,
        boot_id=boot,
        payload={
            "order_no": order_no,
            "tracking_no": f"SF{seq}",
            "carrier": "SF Express",
            "parcel_no": 1,
            "parcel_count": 1,
            "operator": "op",
            "print_job_id": f"job-{seq}",
            "print_verified": True,
        },
    )


def send(engine: Engine, events: list[Event], *, sent_mono: float, delay: float) -> None:
    """Deliver ``events`` as one batch sent at ``sent_mono`` taking ``delay`` seconds."""
    received = dt.datetime.fromtimestamp(PAID.timestamp() + sent_mono + delay, dt.UTC)
    batch = EventBatch(
        station="b1",
        events=events,
        instance_id="store-1",
        boot_id=events[0].boot_id,
        sent_mono=sent_mono,
        sent_wall=PAID.timestamp() + sent_mono + 7,
    )
    ingest_batch(engine, batch, site="wh1", received_at=received)


def day_one(engine: Engine) -> None:
    put_orders(engine, *(make_order(f"A{i}") for i in range(6)))
    send(
        engine,
        [shipped(s, mono=10.0 * s, boot="boot-A", order_no=f"A{s}") for s in (1, 2, 3)],
        sent_mono=40.0,
        delay=5.0,
    )
    x = at(engine, T0, lambda w: open_exception(
        w, type="stock_out", order_no="A4", description="no tees", found_by="li"))  # fmt: skip
    at(engine, T0 + M, lambda w: acknowledge_exception(w, x, by="li"))
    ticks(engine, T0)


def day_two(engine: Engine) -> None:
    # A changed order, new orders; a faster delivery corrects the times of events
    # stored before the full backup (boot-A's offset moves).
    put_orders(
        engine,
        make_order("A5", lines=[{"sku": "TEE-BLK-L", "qty": 2}]),
        make_order("B1"),
        make_order("B2"),
    )
    send(engine, [shipped(4, mono=50.0, boot="boot-A", order_no="A4")], sent_mono=55.0, delay=1.0)
    x = 1
    at(engine, T0 + 5 * M, lambda w: post_plan(w, x, text="borrow from store 2", by="li"))
    ticks(engine, PAID + 30 * H)  # pack-by deadlines breached: exceptions, escalations
    record_status(
        engine,
        StationStatus(station="b1", online=True, orders_cursor=3, labels_left=120),
        site="wh1",
    )


def day_three(engine: Engine) -> None:
    report = {"cause": "miscount", "action": "moved stock", "outcome": "shipped"}
    at(engine, T0 + H, lambda w: resolve_exception(w, 1, by="li", **report))
    send(
        engine,
        [shipped(s, mono=100.0 + s, boot="boot-B", order_no=f"B{s - 4}") for s in (5, 6)],
        sent_mono=110.0,
        delay=2.0,
    )
    # The same seq under another event id: an integrity error kept as a dead letter.
    send(engine, [shipped(5, mono=120.0, boot="boot-B", order_no="B1")], sent_mono=121, delay=1)
    ticks(engine, PAID + 31 * H, PAID + 33 * H)
    record_status(
        engine,
        StationStatus(station="b1", online=True, orders_cursor=5, labels_left=80),
        site="wh1",
    )


def lines(path: Path) -> list[Any]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in a stable order."""
    meta = sa.MetaData()
    with engine.connect() as conn:
        meta.reflect(bind=conn)
        out = {}
        for t in meta.sorted_tables:
            rows = conn.execute(sa.select(t)).all()
            out[t.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def test_full_then_two_incrementals_restore_every_table_equal(new_db: Any, tmp_path: Path) -> None:
    source = open_db(new_db("source"))
    target = new_db("target")
    to = tmp_path / "backups"
    try:
        day_one(source)
        first = backup(str(source.url.render_as_string(hide_password=False)), to, full=True)
        day_two(source)
        url = source.url.render_as_string(hide_password=False)
        second = backup(url, to)
        day_three(source)
        third = backup(url, to)
        expected = dump(source)
    finally:
        source.dispose()
    assert [first.kind, second.kind, third.kind] == ["full", "incremental", "incremental"]
    # The incrementals hold changes, not the whole database: of 8 orders, the one
    # changed and the two new; the third backup none.
    assert [r[1][0] for r in lines(second.path / "tables/orders.jsonl.gz")] == ["A5", "B1", "B2"]
    assert lines(third.path / "tables/orders.jsonl.gz") == []
    # The second one carries events 1-3 again: their boot's clock was corrected.
    assert [r[1][3] for r in lines(second.path / "tables/events.jsonl.gz")] == [4, 1, 2, 3]
    assert [r[1][3] for r in lines(third.path / "tables/events.jsonl.gz")] == [5, 6]
    # Every kind of change happened between the backups.
    assert len(expected["exception_history"]) >= 4 and expected["dead_letters"]
    assert len(expected["events"]) == 6 and expected["alerts"] and expected["escalations"]

    result = restore(to, target)
    assert result.backups == [first.name, second.name, third.name]
    restored = open_db(target)  # already at head: nothing to migrate
    try:
        got = dump(restored)
    finally:
        restored.dispose()
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == expected[name], name


def test_a_restored_database_takes_new_rows(new_db: Any, tmp_path: Path) -> None:
    """Sequences (PostgreSQL) move past the rows the incrementals inserted."""
    url = new_db("source")
    source = open_db(url)
    try:
        day_one(source)
        backup(url, tmp_path / "b", full=True)
        day_two(source)
        backup(url, tmp_path / "b")
    finally:
        source.dispose()
    target = new_db("target")
    restore(tmp_path / "b", target)
    engine = open_db(target)
    try:
        day_three(engine)  # inserts events, history, alerts with new ids
        assert len(dump(engine)["events"]) == 6
    finally:
        engine.dispose()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(".venv/bin/packline").resolve()), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_corrupted_file_is_named_and_nothing_is_restored(new_db: Any, tmp_path: Path) -> None:
    url = new_db("source")
    source = open_db(url)
    try:
        day_one(source)
    finally:
        source.dispose()
    to = tmp_path / "b"
    assert _cli("central", "backup", "--to", str(to), "--full", "--db-url", url).returncode == 0
    assert _cli("central", "backup", "--to", str(to), "--db-url", url).returncode == 0
    (incr,) = to.glob("0002-incremental-*")
    damaged = incr / "tables" / "orders.jsonl.gz"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    target = new_db("target")
    done = _cli("central", "restore", "--from", str(to), "--db-url", target)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"packline: error: backup file {damaged} is corrupted: "
        "its checksum does not match the manifest"
    )
    assert "Traceback" not in done.stderr and done.stdout == ""
    with pytest.raises(BackupError, match="corrupted"):
        backup(url, to)  # an incremental needs the last backup whole
    engine = sa.create_engine(target)
    try:
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []  # untouched
    finally:
        engine.dispose()


def test_restore_refuses_a_database_that_is_not_empty(new_db: Any, tmp_path: Path) -> None:
    url = new_db("source")
    open_db(url).dispose()
    to = tmp_path / "b"
    full = _cli("central", "backup", "--to", str(to), "--full", "--db-url", url)
    assert full.returncode == 0 and full.stdout.startswith("full backup 0001-full-")
    done = _cli("central", "restore", "--from", str(to), "--db-url", url)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("packline: error: ") and "is not empty" in line
    assert "restore needs an empty database" in line


def test_an_incremental_without_a_full_backup_is_taken_in_full(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_db(url).dispose()
    done = _cli("central", "backup", "--to", str(tmp_path / "b"), "--db-url", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("full backup 0001-full-")
    assert "no backup before it in this folder" in done.stdout
    manifest = json.loads(next((tmp_path / "b").glob("0001-*/manifest.json")).read_text())
    assert set(manifest["files"]) >= {"central.sqlite", "digests/orders.jsonl.gz"}


def test_backup_and_restore_mistakes_are_one_line(tmp_path: Path) -> None:
    none = _cli("central", "restore", "--from", str(tmp_path / "nothing"), "--db-url",
                f"sqlite:///{tmp_path / 'r.db'}")  # fmt: skip
    assert none.returncode == 2
    assert none.stderr.strip() == f"packline: error: no backup folder at {tmp_path / 'nothing'}"
    plain = tmp_path / "plain.db"
    plain.write_bytes(b"")
    sa.create_engine(f"sqlite:///{plain}").connect().close()
    odd = _cli("central", "backup", "--to", str(tmp_path / "b"), "--db-url", f"sqlite:///{plain}")
    assert odd.returncode == 2 and len(odd.stderr.splitlines()) == 1
    assert "not a packline central database" in odd.stderr
    assert not list((tmp_path / "b").iterdir())  # nothing half written left behind
