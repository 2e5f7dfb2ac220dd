"""Sample orders for the demo and the benchmarks (realistic, reproducible by seed)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["packing_scans", "sample_orders"]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛"]
PLACES = [
    ("广东省", "深圳市", "南山区", "科技园南区高新南一道 {n} 号"),
    ("浙江省", "杭州市", "余杭区", "文一西路 {n} 号 阿里巴巴西溪园区"),
    ("上海市", "上海市", "浦东新区", "张江路 {n} 弄 {m} 号 {k} 室"),
    ("北京市", "北京市", "朝阳区", "建国路 {n} 号 SOHO 现代城 {m} 号楼"),
    ("四川省", "成都市", "武侯区", "天府大道北段 {n} 号 {m} 栋 {k} 单元"),
]
CARRIERS = [
    ("SF Express", "Standard", "SF"),
    ("ZTO Express", "Economy", "ZTO"),
    ("YTO Express", "Standard", "YT"),
    ("JD Logistics", "Next day", "JDV"),
]
PRODUCTS = [
    ("TEE-BLK-M", "纯棉T恤", "黑色 / M"),
    ("TEE-WHT-L", "纯棉T恤", "白色 / L"),
    ("CAP-RED", "棒球帽", "红色 / 均码"),
    ("SOCK-3P", "运动袜 3 双装", "灰色"),
    ("MUG-350", "陶瓷马克杯", "350 ml"),
    ("BAG-TOTE", "帆布托特包", "米色"),
]


def sample_orders(
    count: int, *, seed: int = 7, prefix: str = "PDD", paid_from: datetime | None = None
) -> list[dict[str, Any]]:
    """``count`` complete orders in the shape of docs/examples/order.json."""
    rng = random.Random(seed)
    start = paid_from or datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    orders: list[dict[str, Any]] = []
    for i in range(count):
        province, city, district, street = rng.choice(PLACES)
        carrier, service, tprefix = rng.choice(CARRIERS)
        lines = []
        for sku, name, spec in rng.sample(PRODUCTS, k=rng.randint(1, 3)):
            ean = f"690{rng.randrange(10**9):09d}"
            lines.append(
                {"sku": sku, "name": name, "spec": spec, "qty": rng.randint(1, 3), "barcode": ean}
            )
        orders.append(
            {
                "order_no": f"{prefix}{start:%Y%m%d}{i + 1:06d}",
                "shop": "pdd-main",
                "order_type": "normal",
                "status": "ready",
                "revision": 1,
                "paid_at": (start + timedelta(minutes=7 * i)).isoformat(),
                "carrier": carrier,
                "service": service,
                "tracking_no": f"{tprefix}{rng.randrange(10**12):012d}",
                "recipient": {
                    "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
                    "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                    "province": province,
                    "city": city,
                    "district": district,
                    "address": street.format(
                        n=rng.randint(1, 999), m=rng.randint(1, 30), k=rng.randint(100, 2999)
                    ),
                    "postcode": f"{rng.randrange(100000, 999999)}",
                },
                "sender": {
                    "name": "Packline Demo Store",
                    "phone": "02088886666",
                    "province": "广东省",
                    "city": "广州市",
                    "district": "白云区",
                    "address": "太和镇 物流园 3 号仓",
                    "postcode": "510000",
                },
                "lines": lines,
                "parcels": 1,
                "note": "",
            }
        )
    return orders


def packing_scans(order: Mapping[str, Any]) -> list[str]:
    """What a packer scans to pack ``order`` (an order object as JSON data), after
    logging in: the order number, then each item (its barcode, else its SKU) once per
    piece; an order in several parcels closes each with ``CMD-NEXT-PARCEL`` (one item
    in each parcel but the last, which takes the rest)."""
    items = [
        line.get("barcode") or line["sku"]
        for line in order.get("lines", [])
        for _ in range(line.get("qty") or 1)
    ]
    parcels = order.get("parcels") or 1
    count = parcels if isinstance(parcels, int) else len(parcels)
    scans = [str(order["order_no"])]
    for n, item in enumerate(items):
        scans.append(item)
        if n < count - 1:
            scans.append("CMD-NEXT-PARCEL")
    return scans
