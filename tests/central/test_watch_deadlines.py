"""Deadlines (D1, D2) by time travel, on SQLite and PostgreSQL.

Each test imports orders paid at a fixed instant and ticks the watch at chosen
instants; nothing sleeps. Bench events carry the time they happened at the bench.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central import timefix
from central.db import station_boots, stations
from central.ingest import record_status
from central.orders import get_order, orders_after
from central.watch import reevaluate_order
from central.watch.deadlines import list_deadlines
from central.watch.exceptions import exception_detail, list_exceptions
from sync.messages import StationStatus
from tests.support.watch import PAID, H, M, bench_event, kinds, make_order, put_orders, ticks

PACK_BY, SHIP_BY = PAID + 24 * H, PAID + 48 * H


def test_pack_and_ship_by_are_stored_and_sent_to_the_stations(engine: Engine) -> None:
    put_orders(engine, make_order("A"), make_order("P", order_type="presale",
               promised_ship_at=(PAID + 72 * H).isoformat()))  # fmt: skip
    sent = {o.order_no: o for _, o in orders_after(engine, cursor=0)}
    assert (sent["A"].pack_by, sent["A"].ship_by) == (PACK_BY, SHIP_BY)
    # A presale order is packed and shipped by its promised date.
    assert sent["P"].pack_by == sent["P"].ship_by == PAID + 72 * H
    stored = {d["order_no"] + ":" + d["which"]: d for d in list_deadlines(engine)}
    assert stored["A:pack"]["due_at"] == PACK_BY.isoformat()
    assert stored["A:pack"]["warn_at"] == (PACK_BY - 6 * H).isoformat()
    assert stored["A:ship"]["rule"] == "normal" and stored["A:ship"]["rule_version"]
    # Shipping meets both for a presale order: its pack deadline is not watched alone.
    assert "P:pack" not in stored and stored["P:ship"]["due_at"] == (PAID + 72 * H).isoformat()


def test_warning_then_breach_each_once_never_early(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    assert ticks(engine, PACK_BY - 6 * H - M) == []  # a minute before the warning
    fired = ticks(engine, PACK_BY - 6 * H, PACK_BY - 6 * H, PACK_BY - M)
    assert kinds(fired) == [("warning", "A")]
    warning = fired[0]
    assert warning.due_at == PACK_BY and warning.at == PACK_BY - 6 * H
    assert "A must be packed by 2026-03-03 00:00 UTC, in 6 h" in warning.message
    assert (warning.dept, warning.to, warning.severity, warning.level) == (
        "warehouse", "warehouse", "general", 1,
    )  # fmt: skip
    assert warning.dedup_key == "deadline:A:pack"
    fired = ticks(engine, PACK_BY, PACK_BY)  # the same instant twice: once
    assert kinds(fired) == [("opened", "A")]
    assert fired[0].exception_id is not None and fired[0].due_at == PACK_BY
    assert "A was not packed by its deadline 2026-03-03 00:00 UTC" in fired[0].message
    breached = list_deadlines(engine, state="breached")
    assert [(d["order_no"], d["which"]) for d in breached] == [("A", "pack")]
    assert list_deadlines(engine, state="warned") == []


def test_a_deadline_first_seen_breached_sends_the_breach_not_a_warning(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    fired = ticks(engine, PACK_BY + 3 * H)
    assert [a.kind for a in fired] == ["opened"]
    assert fired[0].due_at == PACK_BY  # the true due time, though found three hours late
    assert "2026-03-03 00:00 UTC" in fired[0].message


def test_after_downtime_each_missed_timer_fires_once_with_its_due_time(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    ticks(engine, PACK_BY - 6 * H, PACK_BY)
    # Central was down for 3 h 10 min: 12 repeats and 2 escalations were missed.
    fired = ticks(engine, PACK_BY + 3 * H + 10 * M)
    assert [a.kind for a in fired] == ["repeat", "escalated", "escalated"]
    assert fired[0].due_at == PACK_BY  # an exception's alerts carry the missed deadline
    assert "(due 2026-03-03 00:15 UTC)" in fired[0].message  # the first missed repeat
    assert (
        "department head" in fired[1].message and "(due 2026-03-03 01:00 UTC)" in fired[1].message
    )
    assert "management" in fired[2].message and "(due 2026-03-03 02:00 UTC)" in fired[2].message
    assert [a.to for a in fired] == ["warehouse", "warehouse-head", "management"]
    # The next repeat keeps the rhythm from the opening and goes to the current level.
    assert ticks(engine, PACK_BY + 3 * H + 14 * M) == []
    again = ticks(engine, PACK_BY + 3 * H + 15 * M)
    assert [(a.kind, a.to, a.level) for a in again] == [("repeat", "management", 3)]


def test_cancelled_orders_stop_and_start_again_when_ready(engine: Engine) -> None:
    put_orders(engine, make_order("A"), make_order("B"))
    ticks(engine, PACK_BY - 6 * H)
    put_orders(engine, make_order("A", status="cancelled"), make_order("B", status="refunded"))
    assert ticks(engine, PACK_BY, SHIP_BY + H) == []
    assert {d["state"] for d in list_deadlines(engine)} == {"stopped"}
    put_orders(engine, make_order("A"))  # the buyer changed their mind
    assert kinds(ticks(engine, SHIP_BY + 2 * H)) == [("opened", "A")]


def test_held_orders_keep_running_and_name_the_hold(engine: Engine) -> None:
    put_orders(engine, make_order("H", status="held", hold_reason="buyer moved"))
    fired = ticks(engine, PACK_BY - 6 * H, PACK_BY)
    assert kinds(fired) == [("warning", "H"), ("opened", "H")]
    assert all("order is on hold: buyer moved" in a.message for a in fired)


def test_an_order_packed_in_time_is_never_breached(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    bench_event(engine, "bench-01", "order.packed", at=PACK_BY - H,
                order_no="A", operator="li", parcel_count=1)  # fmt: skip
    fired = ticks(engine, PACK_BY - 6 * H, PACK_BY + H, SHIP_BY - 6 * H)
    # The pack deadline was met before its warning; the ship deadline still runs.
    assert kinds(fired) == [("warning", "A")] and "shipped by" in fired[0].message
    (pack,) = list_deadlines(engine, order_no="A", state="met")
    assert pack["which"] == "pack" and pack["met_station"] == "bench-01" and pack["on_time"]


def test_the_ship_deadline_is_met_by_the_last_parcel(engine: Engine) -> None:
    put_orders(engine, make_order("A", parcels=2))
    bench_event(engine, "bench-01", "shipment.shipped", at=PACK_BY - 2 * H, order_no="A",
                parcel_no=1, parcel_count=2, tracking_no="SF1")  # fmt: skip
    # One parcel of two: packing has started (pack met), shipping has not.
    assert kinds(ticks(engine, SHIP_BY - 6 * H)) == [("warning", "A")]
    bench_event(engine, "bench-01", "shipment.shipped", at=SHIP_BY - 5 * H, order_no="A",
                parcel_no=2, parcel_count=2, tracking_no="SF2")  # fmt: skip
    assert ticks(engine, SHIP_BY + H) == []
    ship = list_deadlines(engine, order_no="A")
    assert [(d["which"], d["state"]) for d in ship] == [("pack", "met"), ("ship", "met")]
    assert ship[1]["met_at"] == (SHIP_BY - 5 * H).isoformat()


def test_judged_by_the_bench_clock_a_late_heard_shipment_is_a_false_alarm(
    engine: Engine,
) -> None:
    put_orders(engine, make_order("A"))
    record_status(engine, StationStatus(station="bench-02", online=True), site="wh1")
    bench_event(engine, "bench-02", "order.started", at=PAID + H, order_no="A", operator="li")
    record_status(engine, StationStatus(station="bench-02", online=False), site="wh1")
    opened = ticks(engine, PACK_BY)
    assert kinds(opened) == [("opened", "A")]
    # The order's bench is offline: it may have done it.
    assert "bench-02 offline since" in opened[0].message
    assert "it may have packed it" in opened[0].message
    # The bench comes back: it shipped at PACK_BY - 1 h by its clock.
    bench_event(engine, "bench-02", "shipment.shipped", at=PACK_BY - H, order_no="A")
    fired = ticks(engine, PACK_BY + 2 * M)
    assert [a.kind for a in fired] == ["resolved"]
    assert fired[0].exception_id == opened[0].exception_id
    assert "false alarm" in fired[0].message
    assert "bench-02 at 2026-03-02 23:00 UTC" in fired[0].message
    (x,) = list_exceptions(engine)
    assert x["state"] == "resolved" and x["resolved_by"] == "central"
    assert x["report"]["cause"].startswith("false alarm")
    # Nothing more: no repeats, no ship deadline (the shipment met it too).
    assert ticks(engine, PACK_BY + 5 * H, SHIP_BY + H) == []


def test_a_late_shipment_is_a_breach_even_before_the_tick_saw_it(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    ticks(engine, PACK_BY - 6 * H)
    bench_event(engine, "bench-01", "shipment.shipped", at=PACK_BY + 30 * M, order_no="A")
    fired = ticks(engine, PACK_BY + 31 * M)
    assert kinds(fired) == [("opened", "A")]
    assert "A was packed late: at 2026-03-03 00:30 UTC at bench-01" in fired[0].message
    later = ticks(engine, SHIP_BY + H)  # the ship deadline was met in time by it
    assert later and not any("not shipped" in a.message for a in later)
    assert len(list_exceptions(engine)) == 1


def test_one_shipping_delay_per_order_a_second_breach_is_history(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    first = ticks(engine, PACK_BY)
    ticks(engine, SHIP_BY - 6 * H)
    ship = ticks(engine, SHIP_BY)
    assert [a.kind for a in ship if "shipped by its deadline" in a.message] == ["repeat"]
    assert {a.exception_id for a in ship} == {first[0].exception_id}
    (x,) = list_exceptions(engine)
    entries = [h["entry"] for h in exception_detail(engine, x["id"])["history"]]
    assert entries.count("opened") == 1 and entries.count("breach") == 1


def test_a_rule_change_applies_to_orders_imported_after_it(engine: Engine) -> None:
    from central.watch.rules import DeadlineRules

    put_orders(engine, make_order("OLD"))
    faster = DeadlineRules.model_validate(
        {"shops": {"pdd-main": {"normal": {"ship_within": "24h"}}}}
    )
    put_orders(engine, make_order("OLD", note="changed"), make_order("NEW"), deadlines=faster)
    old, new = get_order(engine, "OLD"), get_order(engine, "NEW")
    assert old is not None and old.order is not None and old.revision == 2
    assert new is not None and new.order is not None
    assert old.order.ship_by == SHIP_BY  # keeps the rule it started with
    assert new.order.ship_by == PAID + 24 * H
    versions = {d["order_no"]: d["rule_version"] for d in list_deadlines(engine)}
    assert versions["OLD"] != versions["NEW"]
    rules = {d["order_no"]: d["rule"] for d in list_deadlines(engine)}
    assert rules == {"OLD": "normal", "NEW": "pdd-main/normal"}


def test_an_order_without_paid_at_counts_from_its_import(engine: Engine) -> None:
    put_orders(engine, make_order("A", paid_at=None))
    stored = get_order(engine, "A")
    assert stored is not None and stored.order is not None and stored.order.pack_by is not None
    assert stored.order.pack_by == stored.created_at + 24 * H
    put_orders(engine, make_order("A", paid_at=None))  # the same file again: unchanged
    again = get_order(engine, "A")
    assert again is not None and again.revision == 1


@pytest.mark.parametrize("later", [True, False])
def test_a_clock_correction_that_changes_the_verdict_acts(engine: Engine, later: bool) -> None:
    put_orders(engine, make_order("A"))
    # bench-03's clock said 23:30 (in time) or 00:30 (late); the truth is the other.
    claimed = PACK_BY - 30 * M if later else PACK_BY + 30 * M
    shipped = bench_event(engine, "bench-03", "shipment.shipped", at=claimed, order_no="A")
    first = ticks(engine, PACK_BY + H)
    assert kinds(first) == ([] if later else [("opened", "A")])
    # Central learns the boot's clock: its monotonic time maps an hour off the claim.
    shift = dt.timedelta(hours=1) if later else -dt.timedelta(hours=1)
    truth = claimed + shift
    with engine.begin() as conn:
        conn.execute(
            station_boots.insert().values(
                station="bench-03", boot_id=shipped.boot_id,
                mono_offset=truth.timestamp() - shipped.at_mono, wall_skew_s=-shift.total_seconds(),
                samples=1, first_seen=PACK_BY + H, updated_at=PACK_BY + H,
            )
        )  # fmt: skip
        assert timefix.event_time(
            conn, station="bench-03", boot_id=shipped.boot_id, at_wall=shipped.at_wall,
            at_mono=shipped.at_mono,
        ) == truth  # fmt: skip
        reevaluate_order(conn, "A", PACK_BY + 2 * H)
    fired = ticks(engine, PACK_BY + 2 * H)
    if later:  # it was late after all: the breach opens now
        assert kinds(fired) == [("opened", "A")] and "packed late" in fired[0].message
    else:  # it was in time: the breach was a false alarm
        assert [a.kind for a in fired] == ["resolved"] and "false alarm" in fired[0].message


def test_the_offline_note_names_every_offline_bench_when_none_is_known(engine: Engine) -> None:
    put_orders(engine, make_order("A"))
    for name in ("bench-01", "bench-02"):
        record_status(engine, StationStatus(station=name, online=False), site="wh1")
    record_status(engine, StationStatus(station="bench-09", online=False), site="other")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(stations)).scalar() == 3
    (opened,) = ticks(engine, PACK_BY)
    assert "bench-01 offline since" in opened.message and "bench-02 offline" in opened.message
    assert "bench-09" not in opened.message  # another site's bench
    assert "one of them may have packed it" in opened.message
