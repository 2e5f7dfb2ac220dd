"""A week of packing to report on (2026-W48, Asia/Shanghai), known numbers included.

Five orders paid on Monday 2026-11-23 10:00 (site time): pack by Tuesday, ship by
Wednesday 10:00. A, C and E (two parcels) ship on time, B late (Wednesday 13:00), D
never. The tick on Tuesday 11:00 opens a ``shipping_delay`` for B and for D; B's is
acknowledged after 30 min and resolved after 2 h; a ``damaged`` one (carrier, major) is
opened by hand on Thursday and stays open.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine

from central.watch import WatchRules, tick
from central.watch.context import Watch
from central.watch.exceptions import acknowledge_exception, open_exception, resolve_exception
from tests.support.watch import bench_event, make_order, put_orders

__all__ = ["EXPECTED", "NOW", "PAID_W48", "WEEK", "week_of_packing"]

WEEK = "2026-W48"
#: Monday 10:00 in Shanghai.
PAID_W48 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
#: When the report is asked for: Saturday 20:00 in Shanghai.
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)

#: What the weekly report of the scenario says.
EXPECTED: dict[str, Any] = {
    "orders_shipped": 4,
    "parcels_shipped": 5,
    "on_time": 3,
    "on_time_rate": 0.75,
    "orders_due": 5,
    "timed_out": 2,
    "timeout_rate": 0.4,
    "exceptions_opened": 3,
    "exceptions_major": 1,
    "exceptions_resolved": 1,
    "exceptions_open_at_end": 2,
    "mean_ack_s": 1800.0,
    "mean_resolve_s": 7200.0,
}


def _ship(engine: Engine, order_no: str, at: dt.datetime, *, parcels: int = 1) -> None:
    for n in range(1, parcels + 1):
        bench_event(
            engine, "bench-01", "shipment.shipped", at=at, site="wh1", order_no=order_no,
            tracking_no=f"SF{order_no}{n}", parcel_no=n, parcel_count=parcels,
        )  # fmt: skip


def week_of_packing(engine: Engine, *, site: str = "wh1") -> dict[str, int]:
    """Load the scenario; the exception ids by name (``B``, ``D``, ``damaged``)."""
    put_orders(engine, *(make_order(f"W48-{x}", paid_at=PAID_W48) for x in "ABCD"))
    put_orders(engine, make_order("W48-E", paid_at=PAID_W48, parcels=2))
    _ship(engine, "W48-A", PAID_W48 + 4 * H)
    _ship(engine, "W48-E", PAID_W48 + 6 * H, parcels=2)
    _ship(engine, "W48-C", PAID_W48 + 23 * H)
    tick(engine, now=PAID_W48 + 25 * H, site=site)  # B and D missed their pack deadline
    _ship(engine, "W48-B", PAID_W48 + 51 * H)
    from central.watch.exceptions import list_exceptions

    ids = {x["order_no"][-1]: x["id"] for x in list_exceptions(engine) if x["order_no"]}
    rules = WatchRules()
    opened = PAID_W48 + 25 * H
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=opened + 0.5 * H, rules=rules, site=site)
        acknowledge_exception(watch, ids["B"], by="li.wei")
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=opened + 2 * H, rules=rules, site=site)
        resolve_exception(
            watch, ids["B"], cause="wave started late", action="packed first next morning",
            outcome="shipped a day late", by="li.wei",
        )  # fmt: skip
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=PAID_W48 + 72 * H, rules=rules, site=site)
        damaged = open_exception(
            watch, type="damaged", order_no="W48-A", description="box crushed in transit",
            severity="major", cause_class="carrier_delay", found_by="cs.zhou",
        )  # fmt: skip
    assert damaged is not None
    return {"B": ids["B"], "D": ids["D"], "damaged": damaged}
