"""Weekly and monthly reports (A3) on SQLite and PostgreSQL, from a known week."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy.engine import Engine

from central.reports import (
    BadPeriod,
    build_report,
    month_period,
    report_csv,
    site_zone,
    table_csv,
    week_period,
)
from tests.support.reports import EXPECTED, NOW, PAID_W48, WEEK, week_of_packing
from tests.support.watch import bench_event, make_order, put_orders

SHANGHAI = site_zone("Asia/Shanghai")


def test_week_and_month_bounds_are_site_midnights() -> None:
    week = week_period("2026-W48", SHANGHAI)
    assert week.start == dt.datetime(2026, 11, 22, 16, 0, tzinfo=dt.UTC)
    assert week.end == dt.datetime(2026, 11, 29, 16, 0, tzinfo=dt.UTC)
    assert [d.isoformat() for d, _, _ in week.days()][::6] == ["2026-11-23", "2026-11-29"]
    month = month_period("2026-12", SHANGHAI)
    assert month.start == dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)
    assert month.end == dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC)
    # A zone with summer time: the day of the change has 23 hours.
    berlin = week_period("2026-W13", site_zone("Europe/Berlin"))
    sunday = berlin.days()[-1]
    assert sunday[2] - sunday[1] == dt.timedelta(hours=23)


@pytest.mark.parametrize(
    ("maker", "text", "words"),
    [
        (week_period, "2026-48", "YYYY-Www"),
        (week_period, "2026-W54", "has no week 54"),
        (month_period, "2026-13", "YYYY-MM"),
        (month_period, "November", "YYYY-MM"),
    ],
)
def test_bad_periods_say_what_is_expected(maker, text, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadPeriod, match=words):
        maker(text, SHANGHAI)
    with pytest.raises(BadPeriod, match="unknown time zone"):
        site_zone("Mars/Olympus")


def test_weekly_report_of_a_known_week(engine: Engine) -> None:
    ids = week_of_packing(engine)
    report = build_report(
        engine, week_period(WEEK, SHANGHAI), now=NOW, departments=["customer_service"]
    )
    assert {k: report.summary[k] for k in EXPECTED} == EXPECTED
    daily = report.table("daily").as_dicts()
    assert [(d["day"], d["orders_shipped"], d["parcels_shipped"]) for d in daily[:3]] == [
        ("2026-11-23", 2, 3),
        ("2026-11-24", 1, 1),
        ("2026-11-25", 1, 1),
    ]
    assert daily[2]["on_time_rate"] == 0.0  # B, a day late
    assert report.table("timeouts_by_dept").rows == [
        ["customer_service", 5, 0, 0.0],
        ["warehouse", 5, 2, 0.4],
    ]
    assert report.table("exceptions_by_type").rows == [
        ["shipping_delay", 2, 0, 1, 1],
        ["damaged", 1, 1, 0, 1],
    ]
    assert report.table("exceptions_by_cause").as_dicts() == [
        {"cause_class": "process_delay", "kind": "internal", "count": 2},
        {"cause_class": "carrier_delay", "kind": "external", "count": 1},
    ]
    assert report.table("exceptions_by_outcome").rows == [["open", 2], ["resolved", 1]]
    times = {r["dept"]: r for r in report.table("response_times").as_dicts()}
    assert times["warehouse"]["mean_ack_s"] == 1800.0
    assert times["warehouse"]["mean_resolve_s"] == 7200.0
    assert ids["damaged"] > ids["B"]


def test_outcome_is_the_state_at_the_end_of_the_week(engine: Engine) -> None:
    """What happened after the week does not change that week's report."""
    ids = week_of_packing(engine)
    from central.watch import WatchRules
    from central.watch.context import Watch
    from central.watch.exceptions import close_exception

    with engine.begin() as conn:
        later = Watch(conn=conn, now=NOW + dt.timedelta(days=3), rules=WatchRules(), site="wh1")
        close_exception(later, ids["B"], by="boss")
    report = build_report(engine, week_period(WEEK, SHANGHAI), now=NOW + dt.timedelta(days=4))
    assert report.table("exceptions_by_outcome").rows == [["open", 2], ["resolved", 1]]
    nextweek = build_report(engine, week_period("2026-W49", SHANGHAI), now=NOW)
    assert nextweek.summary["exceptions_opened"] == 0


def test_a_parcel_at_sunday_midnight_belongs_to_its_local_day(engine: Engine) -> None:
    put_orders(engine, make_order("LATE-SUN", paid_at=None), make_order("EARLY-MON", paid_at=None))
    # Sunday 23:30 and Monday 00:30 in Shanghai.
    sunday = dt.datetime(2026, 11, 29, 15, 30, tzinfo=dt.UTC)
    bench_event(engine, "bench-09", "shipment.shipped", at=sunday, order_no="LATE-SUN")
    bench_event(engine, "bench-09", "shipment.shipped", at=sunday + dt.timedelta(hours=1),
                order_no="EARLY-MON")  # fmt: skip
    w48 = build_report(engine, week_period("2026-W48", SHANGHAI), now=NOW)
    w49 = build_report(engine, week_period("2026-W49", SHANGHAI), now=NOW)
    assert (w48.summary["orders_shipped"], w49.summary["orders_shipped"]) == (1, 1)
    assert w48.table("daily").rows[-1][:3] == ["2026-11-29", 1, 1]


def test_monthly_summary_goes_week_by_week(engine: Engine) -> None:
    week_of_packing(engine)
    month = build_report(engine, month_period("2026-11", SHANGHAI), now=NOW)
    assert {k: month.summary[k] for k in EXPECTED} == EXPECTED
    weeks = month.table("weekly").as_dicts()
    assert [w["week"] for w in weeks] == [f"2026-W{n}" for n in range(44, 50)]
    (w48,) = [w for w in weeks if w["week"] == "2026-W48"]
    assert (w48["orders_shipped"], w48["on_time_rate"], w48["timeout_rate"]) == (4, 0.75, 0.4)
    assert sum(w["orders_shipped"] for w in weeks) == 4
    december = build_report(engine, month_period("2026-12", SHANGHAI), now=NOW)
    assert december.summary["orders_shipped"] == 0


def test_csv_has_every_table(engine: Engine) -> None:
    week_of_packing(engine)
    report = build_report(engine, week_period(WEEK, SHANGHAI), now=NOW)
    text = report_csv(report)
    for table in report.tables:
        assert table.title in text
    rows = list(csv.reader(io.StringIO(table_csv(report.table("summary")))))
    assert rows[0] == ["metric", "value"]
    assert ["on_time_rate", "0.75"] in rows
    data = report.as_json()
    assert data["period"] == WEEK and data["timezone"] == "Asia/Shanghai"
    assert data["tables"]["summary"]["rows"][0] == {"metric": "orders_shipped", "value": 4}
    assert PAID_W48.isoformat() < data["to"]
