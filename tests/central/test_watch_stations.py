"""What the benches report and how they are: problems, printer faults, double shipments,
stations offline, label stock, and the generic condition API — both backends."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import stations, utcnow
from central.ingest import record_status
from central.watch import clear_condition, raise_condition
from central.watch.exceptions import exception_detail, list_exceptions
from sync.messages import StationStatus
from tests.support.watch import (
    PAID,
    H,
    M,
    bench_batch,
    bench_event,
    make_order,
    put_orders,
    ticks,
)

T0 = PAID + 2 * H  # well before any deadline of the test orders


def test_a_problem_reported_at_the_bench_opens_its_exception(engine: Engine) -> None:
    put_orders(engine, make_order("A"), make_order("B"))
    bench_event(engine, "bench-01", "problem.reported", at=T0, order_no="A",
                problem="damaged", note="box crushed", operator="li")  # fmt: skip
    bench_event(engine, "bench-02", "problem.reported", at=T0 + M, order_no="B",
                problem="stock_out", note="", operator=None)  # fmt: skip
    bench_event(engine, "bench-01", "problem.reported", at=T0 + 2 * M, order_no="A",
                problem="damaged", note="second box too", operator="li")  # fmt: skip
    bench_event(engine, "bench-01", "problem.reported", at=T0, order_no="A",
                problem="on_fire", note="", operator="li")  # fmt: skip
    fired = ticks(engine, T0 + 3 * M)
    assert [(a.kind, a.order_no, a.to) for a in fired] == [
        ("opened", "A", "warehouse"), ("opened", "B", "warehouse"),
    ]  # fmt: skip
    found = {x["order_no"]: x for x in list_exceptions(engine)}
    assert (found["A"]["type"], found["B"]["type"]) == ("damaged", "stock_out")
    assert found["A"]["found_by"] == "li" and found["A"]["found_at"] == T0.isoformat()
    assert found["B"]["found_by"] == "bench-02"  # nobody logged in: the bench
    assert "box crushed" in found["A"]["description"]
    history = exception_detail(engine, found["A"]["id"])["history"]
    assert "second box too" in history[-1]["text"]  # the same problem again: history
    assert ticks(engine, T0 + 3 * M) == []


def test_a_printer_fault_over_five_minutes_is_an_equipment_fault(engine: Engine) -> None:
    def printer(station: str, state: str, at: dt.datetime) -> None:
        bench_event(engine, station, "device.state", at=at, device="printer", state=state,
                    detail="" if state == "ready" else "no labels loaded",
                    model="QL-820NWB", serial="K1234")  # fmt: skip

    printer("bench-01", "no_media", T0)
    printer("bench-01", "ready", T0 + 4 * M)  # fixed within five minutes: nothing
    printer("bench-02", "no_media", T0)
    printer("bench-02", "cover_open", T0 + 2 * M)  # still a fault: the first one counts
    assert ticks(engine, T0 + 5 * M - dt.timedelta(seconds=1)) == []
    fired = ticks(engine, T0 + 5 * M)
    assert [(a.kind, a.to) for a in fired] == [("opened", "operations")]
    (x,) = list_exceptions(engine)
    assert x["type"] == "equipment_fault" and x["order_no"] is None
    assert "printer of bench-02 QL-820NWB K1234 is no_media" in x["description"]
    assert x["found_at"] == T0.isoformat()
    printer("bench-02", "ready", T0 + 20 * M)
    assert exception_detail(engine, x["id"])["history"][-1]["text"].startswith(
        "printer of bench-02 is ready again"
    )


def test_more_confirmed_parcels_than_the_order_has_is_a_double_shipment(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    for n, bench in enumerate(("bench-01", "bench-02", "bench-03", "bench-04")):
        bench_event(engine, bench, "shipment.shipped", at=T0 + n * M, order_no="A",
                    tracking_no=f"SF00{n}")  # fmt: skip
    fired = ticks(engine, T0 + 5 * M)
    assert [(a.kind, a.order_no, a.severity) for a in fired] == [("opened", "A", "major")]
    (x,) = list_exceptions(engine)
    assert x["type"] == "double_shipment"
    assert "A ships in 1 parcel but 4 were confirmed" in x["description"]
    for bench, tracking in (("bench-01", "SF000"), ("bench-04", "SF003")):
        assert bench in x["description"] and tracking in x["description"]
    bench_event(engine, "bench-05", "shipment.shipped", at=T0 + 6 * M, order_no="A",
                tracking_no="SF005")  # fmt: skip
    assert ticks(engine, T0 + 7 * M) == []  # one exception per order; the fifth is history
    assert "bench-05" in exception_detail(engine, x["id"])["history"][-1]["text"]


def test_a_split_shipment_is_not_a_double_one(engine: Engine) -> None:
    put_orders(engine, make_order("A", parcels=2))
    for n in (1, 2):
        bench_event(engine, "bench-01", "shipment.shipped", at=T0, order_no="A",
                    parcel_no=n, parcel_count=2, tracking_no=f"SF{n}")  # fmt: skip
    assert ticks(engine, T0 + M) == []


def test_double_shipments_within_one_batch_are_counted_in_seq_order(engine: Engine) -> None:
    """A backlog sent in one batch: each shipment counts those before it, in the batch
    and stored earlier, as when they come one by one."""
    put_orders(engine, make_order("A"), make_order("B", parcels=2), make_order("C"))
    bench_event(engine, "bench-01", "shipment.shipped", at=T0, order_no="C", tracking_no="SF-C1")
    ship = "shipment.shipped"
    bench_batch(engine, "bench-02", [
        (ship, T0 + M, {"order_no": "A", "tracking_no": "SF-A1"}),
        (ship, T0 + M, {"order_no": "B", "tracking_no": "SF-B1", "parcel_no": 1,
                        "parcel_count": 2}),
        (ship, T0 + 2 * M, {"order_no": "A", "tracking_no": "SF-A2"}),
        (ship, T0 + 2 * M, {"order_no": "B", "tracking_no": "SF-B2", "parcel_no": 2,
                            "parcel_count": 2}),
        (ship, T0 + 3 * M, {"order_no": "C", "tracking_no": "SF-C2"}),
    ])  # fmt: skip
    fired = ticks(engine, T0 + 5 * M)
    assert sorted((a.kind, a.order_no) for a in fired) == [("opened", "A"), ("opened", "C")]
    found = {x["order_no"]: x for x in list_exceptions(engine)}
    assert set(found) == {"A", "C"}  # B's two parcels are its split, not a double
    assert "A ships in 1 parcel but 2 were confirmed" in found["A"]["description"]
    assert "bench-01" in found["C"]["description"] and "bench-02" in found["C"]["description"]


def _last_seen(engine: Engine, station: str, moment: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(stations.update().where(stations.c.station == station)
                     .values(last_seen=moment))  # fmt: skip


def test_a_station_offline_over_five_minutes_alerts_once_and_resolves(engine: Engine) -> None:
    now = utcnow()
    record_status(engine, StationStatus(station="bench-07", online=True, labels_left=300),
                  site="wh1")  # fmt: skip
    record_status(engine, StationStatus(station="bench-07", online=False), site="wh1")
    _last_seen(engine, "bench-07", now)
    assert ticks(engine, now + 5 * M) == []
    fired = ticks(engine, now + 5 * M + dt.timedelta(seconds=1), now + 6 * M)
    assert [(a.kind, a.dedup_key, a.to) for a in fired] == [
        ("opened", "station_offline:bench-07", "operations"),
    ]
    assert fired[0].message.startswith("bench-07 offline since")
    assert [a.kind for a in ticks(engine, now + 21 * M)] == ["repeat"]
    record_status(engine, StationStatus(station="bench-07", online=True, labels_left=300),
                  site="wh1")  # fmt: skip
    fired = ticks(engine, now + 22 * M, now + 23 * M)
    assert [(a.kind, a.message) for a in fired] == [("resolved", "bench-07 is back online")]


def test_label_stock_below_the_line_alerts_per_printer(engine: Engine) -> None:
    now = utcnow()
    for name, left in (("bench-01", 49), ("bench-02", 50), ("bench-03", None)):
        record_status(engine, StationStatus(station=name, online=True, labels_left=left),
                      site="wh1")  # fmt: skip
    fired = ticks(engine, now, now + M)
    assert [(a.kind, a.dedup_key) for a in fired] == [("opened", "labels_low:bench-01")]
    assert "49 labels left" in fired[0].message
    record_status(engine, StationStatus(station="bench-01", online=True, labels_left=400),
                  site="wh1")  # fmt: skip
    assert [a.kind for a in ticks(engine, now + 2 * M)] == ["resolved"]


def test_raise_and_clear_a_condition_from_anywhere(engine: Engine) -> None:
    with engine.begin() as conn:
        first = raise_condition(conn, key="backlog:bench-03", dept="operations",
                                severity="general", message="bench-03 backlog 40 min old",
                                now=T0)  # fmt: skip
        again = raise_condition(conn, key="backlog:bench-03", dept="operations",
                                severity="general", message="still", now=T0 + M)  # fmt: skip
    assert first is not None and first.kind == "opened" and again is None
    assert [a.kind for a in ticks(engine, T0 + 15 * M)] == ["repeat"]
    with engine.begin() as conn:
        cleared = clear_condition(conn, key="backlog:bench-03", now=T0 + 16 * M)
        twice = clear_condition(conn, key="backlog:bench-03", now=T0 + 17 * M)
    assert cleared is not None and cleared.kind == "resolved" and twice is None
    assert ticks(engine, T0 + 5 * H) == []
    with engine.begin() as conn:  # raised again later: a new alarm, the same key
        assert raise_condition(conn, key="backlog:bench-03", dept="operations",
                               severity="major", message="again", now=T0 + 6 * H)  # fmt: skip
        rows = conn.execute(sa.text("SELECT count(*) FROM escalations")).scalar_one()
    assert rows == 2
