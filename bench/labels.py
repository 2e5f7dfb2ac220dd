"""Render + encode time per waybill, against the time a QL-820NWB takes to print one.

A Brother QL-820NWB prints a 62 mm waybill in about 0.55 s; rendering and encoding must
stay well below that so the printer, not the Pi, sets the pace of the bench. Goal: the
p99 per waybill is at most 0.10 of the print time. Not a test: prints the figures.

    .venv/bin/python bench/labels.py [--count 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from drivers.labels import render_waybill
from drivers.printers.ql.raster import encode_raster
from drivers.printers.zpl.graphics import image_to_zpl
from sync.order import Order

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "order.json"
QL_820NWB_PRINT_S = 0.55
GOAL = 0.10
WARM_UP = 10
PRINTED_AT = datetime(2026, 11, 23, 10, 30, tzinfo=timezone(timedelta(hours=8)))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
STREETS = [
    "科技园南区高新南一道 8 号",
    "天河路 385 号 太古汇 2 座",
    "人民南路四段 19 号",
    "滨江大道 1 号",
]


def orders(count: int, *, first: int = 0) -> list[Order]:
    """``count`` distinct waybills: other tracking and order numbers, names, addresses.

    Each case gets its own numbers (``first``) so that no barcode encoding is reused
    from an earlier case: at the bench every waybill is new.
    """
    base: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    out = []
    for i in range(first, first + count):
        data = json.loads(json.dumps(base))
        data["order_no"] = f"PDD20261123{i:06d}"
        data["tracking_no"] = f"SF14{(1_000_000_007 * (i + 1)) % 10**11:011d}"
        data["recipient"]["name"] = SURNAMES[i % len(SURNAMES)] + "小明"[: 1 + i % 2]
        data["recipient"]["address"] = STREETS[i % len(STREETS)] + f" {i % 30 + 1} 栋 {i:04d} 室"
        out.append(Order.model_validate(data))
    return out


def measure(job: Callable[[Order], bytes], items: list[Order]) -> list[float]:
    """Seconds per item, after :data:`WARM_UP` unmeasured runs on other orders."""
    for order in items[:WARM_UP]:
        job(order)
    times = []
    for order in items[WARM_UP:]:
        start = time.perf_counter()
        job(order)
        times.append(time.perf_counter() - start)
    return times


def ql_62(order: Order) -> bytes:
    """Waybill on a 62 mm roll, as QL-820NWB raster."""
    image = render_waybill(order, size="62", dpi=300, printed_at=PRINTED_AT)
    return encode_raster([image], model="QL-820NWB", label="62")


def zpl_100x180(order: Order) -> bytes:
    """Waybill on a 100 x 180 mm e-waybill, as ZPL for a 203 dpi printer."""
    image = render_waybill(order, size="100x180", dpi=203, printed_at=PRINTED_AT)
    return image_to_zpl(image, dpi=203)


def render_only(order: Order) -> bytes:
    """Rendering alone (62 mm, 300 dpi), to see where the time goes."""
    return render_waybill(order, size="62", dpi=300, printed_at=PRINTED_AT).tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="waybills per case")
    args = parser.parse_args()
    print(
        f"{args.count} waybills per case after {WARM_UP} warm-up; baseline: QL-820NWB "
        f"prints one label in {QL_820NWB_PRINT_S} s; goal p99 ratio <= {GOAL}"
    )
    print(f"{'case':<34}{'p50 ms':>9}{'p99 ms':>9}{'p50 ratio':>11}{'p99 ratio':>11}")
    for case, (name, job) in enumerate(
        [
            ("render only, 62 mm @300", render_only),
            ("render + QL raster, 62 mm @300", ql_62),
            ("render + ZPL, 100x180 @203", zpl_100x180),
        ]
    ):
        items = orders(WARM_UP + args.count, first=case * 100_000)
        times = sorted(measure(job, items))
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
        verdict = "ok" if p99 / QL_820NWB_PRINT_S <= GOAL else "OVER GOAL"
        print(
            f"{name:<34}{p50 * 1000:9.1f}{p99 * 1000:9.1f}"
            f"{p50 / QL_820NWB_PRINT_S:11.3f}{p99 / QL_820NWB_PRINT_S:11.3f}  {verdict}"
        )


if __name__ == "__main__":
    main()
