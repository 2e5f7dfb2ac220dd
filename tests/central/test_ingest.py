"""store_batch: dedup, contiguous projection, integrity conflicts (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import events, shipments, station_history, stations
from central.ingest import BatchRejected, record_status, record_statuses, store_batch
from central.watch.reactor import react_pending
from sync.messages import EventBatch, StationStatus, decode, encode
from tests.support.central import batch, event


def count(engine: Engine, table: sa.Table, **where: object) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def shipment_seqs(engine: Engine, station: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.seq)
            .join(shipments, shipments.c.event_id == events.c.event_id)
            .where(shipments.c.station == station)
            .order_by(shipments.c.id)
        )
        return [r.seq for r in rows]


def test_in_order_batch_is_stored_projected_and_acked(engine: Engine) -> None:
    evs = [event("b1", seq) for seq in (1, 2, 3)]
    assert store_batch(engine, batch("b1", *evs), site="s") == 3
    assert count(engine, events) == 3
    assert shipment_seqs(engine, "b1") == [1, 2, 3]
    with engine.connect() as conn:
        row = conn.execute(sa.select(stations).where(stations.c.station == "b1")).one()
    assert (row.acked_seq, row.site) == (3, "s")
    assert row.last_seen is not None


def test_duplicate_batch_counts_once(engine: Engine) -> None:
    evs = [event("b1", seq) for seq in (1, 2)]
    assert store_batch(engine, batch("b1", *evs)) == 2
    assert store_batch(engine, batch("b1", *evs)) == 2  # the station resent it
    # and a batch overlapping what is held, plus one new event
    assert store_batch(engine, batch("b1", evs[1], event("b1", 3))) == 3
    # the same event twice within one batch
    dup = event("b1", 4)
    assert store_batch(engine, batch("b1", dup, dup)) == 4
    assert count(engine, events) == 4
    assert shipment_seqs(engine, "b1") == [1, 2, 3, 4]


def test_events_after_a_gap_wait_for_it(engine: Engine) -> None:
    first, second, third, fourth = (event("b1", seq) for seq in (1, 2, 3, 4))
    assert store_batch(engine, batch("b1", third, fourth)) == 0
    assert count(engine, events) == 2
    assert shipment_seqs(engine, "b1") == []  # held, not projected
    assert store_batch(engine, batch("b1", second)) == 0
    assert store_batch(engine, batch("b1", first)) == 4
    assert shipment_seqs(engine, "b1") == [1, 2, 3, 4]  # applied in seq order


def test_stations_are_independent(engine: Engine) -> None:
    assert store_batch(engine, batch("b1", event("b1", 1), event("b1", 2))) == 2
    assert store_batch(engine, batch("b2", event("b2", 2))) == 0
    assert store_batch(engine, batch("b2", event("b2", 1))) == 2
    assert shipment_seqs(engine, "b1") == [1, 2]
    assert shipment_seqs(engine, "b2") == [1, 2]


def test_integrity_conflict_is_logged_and_never_overwrites(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    original = event("b1", 1, order_no="KEEP")
    assert store_batch(engine, batch("b1", original)) == 1
    impostor = event("b1", 1, order_no="IMPOSTOR")
    with caplog.at_level(logging.ERROR, logger="central.ingest"):
        assert store_batch(engine, batch("b1", impostor, event("b1", 2))) == 2
    assert any("INTEGRITY" in r.message and impostor.event_id in r.message for r in caplog.records)
    with engine.connect() as conn:
        held = conn.execute(sa.select(events.c.event_id).where(events.c.seq == 1)).scalar_one()
        orders = conn.execute(sa.select(shipments.c.order_no).order_by(shipments.c.id)).all()
    assert held == original.event_id
    assert [r.order_no for r in orders] == ["KEEP", "ORD-b1-2"]


def test_event_id_reused_at_another_seq_is_an_integrity_error(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    one = event("b1", 1)
    store_batch(engine, batch("b1", one))
    moved = event("b1", 2, event_id=one.event_id)
    with caplog.at_level(logging.ERROR, logger="central.ingest"):
        assert store_batch(engine, batch("b1", moved)) == 1
    assert "INTEGRITY" in caplog.text
    assert count(engine, events) == 1


def test_other_types_are_stored_without_shipments(engine: Engine) -> None:
    evs = [
        event(
            "b1", 1, type="label.printed", order_no="A", job_id="j1", kind="waybill", verified=True
        ),
        event("b1", 2, type="scan.rejected", text="garbage", reason="unknown order"),
        event("b1", 3, type="something.new", whatever=[1, 2]),
        event("b1", 4),
    ]
    assert store_batch(engine, batch("b1", *evs)) == 4
    assert count(engine, events) == 4
    assert shipment_seqs(engine, "b1") == [4]
    with engine.connect() as conn:
        payload = conn.execute(sa.select(events.c.payload).where(events.c.seq == 3)).scalar_one()
    assert payload == {"whatever": [1, 2]}


def test_shipment_without_order_no_is_stored_and_passed(engine: Engine) -> None:
    bad = event("b1", 1, order_no="")
    assert store_batch(engine, batch("b1", bad, event("b1", 2))) == 2
    assert shipment_seqs(engine, "b1") == [2]
    assert count(engine, events) == 2


def test_event_of_another_station_rejects_the_batch(engine: Engine) -> None:
    with pytest.raises(BatchRejected):
        store_batch(engine, batch("b1", event("b1", 1), event("b2", 2)))
    assert count(engine, events) == 0


def test_status_upsert_and_offline_keeps_last_health(engine: Engine) -> None:
    up = record_status(
        engine,
        StationStatus(
            station="b1", online=True, printer="no_media", labels_left=0, backlog=4, orders_cursor=7
        ),
        site="s",
    )
    assert up.came_online and up.orders_cursor == 7
    again = record_status(
        engine, StationStatus(station="b1", online=True, printer="ready"), site="s"
    )
    assert not again.came_online
    record_status(engine, StationStatus(station="b1", online=False), site="s")
    with engine.connect() as conn:
        row = conn.execute(sa.select(stations).where(stations.c.station == "b1")).one()
    assert (row.online, row.printer, row.site) == (False, "ready", "s")


def test_a_nul_character_on_the_wire_is_dropped_and_the_batch_stored(engine: Engine) -> None:
    """PostgreSQL cannot store a NUL in text: the batch holding one was refused at every
    resend and held up its station's stream. The wire drops it (both databases)."""
    sent = batch("b1", event("b1", 1, order_no="A\x00B", tracking_no="SF\x001"), event("b1", 2))
    got = decode(EventBatch, encode(sent))
    assert store_batch(engine, got) == 2
    assert got.events[0].payload["order_no"] == "AB"
    with engine.connect() as conn:
        row = conn.execute(sa.select(shipments.c.order_no, shipments.c.tracking_no)).first()
    assert row is not None and (row.order_no, row.tracking_no) == ("AB", "SF1")
    status = StationStatus(station="b1", online=True, printer_detail="QL-820NWB\x00\x00")
    update = record_status(engine, decode(StationStatus, encode(status)), site="s")
    assert update.accepted
    with engine.connect() as conn:
        detail = conn.execute(sa.select(stations.c.printer_detail)).scalar_one()
    assert detail == "QL-820NWB"


def test_a_burst_of_statuses_is_recorded_in_order_in_one_go(engine: Engine) -> None:
    t0 = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
    updates = record_statuses(
        engine,
        [
            (StationStatus(station="b1", online=True, printer="ready", labels_left=9), t0),
            (StationStatus(station="b2", online=True, printer="ready"), t0),
            (StationStatus(station="b1", online=True, printer="no_media", labels_left=0), t0),
            (StationStatus(station="b2", online=False), t0 + dt.timedelta(seconds=1)),
        ],
        site="s",
    )
    assert [(u.station, u.came_online) for u in updates] == [
        ("b1", True), ("b2", True), ("b1", False), ("b2", False),
    ]  # fmt: skip
    with engine.connect() as conn:
        rows = {r.station: r for r in conn.execute(sa.select(stations))}
        printer_changes = conn.execute(
            sa.select(station_history.c.new_value)
            .where(station_history.c.station == "b1", station_history.c.field == "printer")
            .order_by(station_history.c.id)
        ).scalars().all()  # fmt: skip
    assert (rows["b1"].online, rows["b1"].printer, rows["b1"].labels_left) == (True, "no_media", 0)
    assert (rows["b2"].online, rows["b2"].printer) == (False, "ready")  # the will keeps health
    assert printer_changes == ["ready", "no_media"]  # each status in its turn


def test_a_payload_that_does_not_fit_its_model_is_stored_not_projected_and_logged_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    bad_shipment = event("b1", 1, parcel_no="two")
    bad_label = event("b1", 2, type="label.printed", order_no="A", job_id="j1", kind="waybill")
    unknown = event("b1", 3, type="pallet.wrapped", film_m=12)
    future = event("b1", 4).model_copy(update={"version": 2})
    with caplog.at_level(logging.WARNING, logger="central"):
        assert store_batch(engine, batch("b1", bad_shipment, bad_label, unknown, future)) == 4
        # The station did not see the ack and resends: nothing is decoded twice.
        assert store_batch(engine, batch("b1", bad_shipment, bad_label, unknown, future)) == 4
        # The watch reacts to them once: ingest logged the shipments, the watch the label.
        assert react_pending(engine) == 4
        assert react_pending(engine) == 0
    assert count(engine, events) == 4
    assert shipment_seqs(engine, "b1") == []
    warnings = sorted(r.getMessage() for r in caplog.records)
    assert len(warnings) == 3, warnings
    assert "seq 1: shipment.shipped: parcel_no" in warnings[0]
    assert "seq 2: label.printed: verified: Field required" in warnings[1]
    assert "seq 4: shipment.shipped: version 2 is not known" in warnings[2]
    assert all("stored, not projected" in w for w in warnings)
    with engine.connect() as conn:
        payload = conn.execute(sa.select(events.c.payload).where(events.c.seq == 1)).scalar_one()
    assert payload["parcel_no"] == "two"  # stored as it came
