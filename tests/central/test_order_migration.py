"""Migration 0002: orders stored before it get their blocked reasons; none is lost."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from central.db import MIGRATIONS, open_db
from central.orders import blocked_orders, get_order, orders_after

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/examples/order.json").read_text()
)
# The orders table as migration 0001 created it.
OLD_ORDERS = sa.table(
    "orders",
    sa.column("order_no", sa.String),
    sa.column("order_seq", sa.BigInteger),
    sa.column("revision", sa.Integer),
    sa.column("shop", sa.String),
    sa.column("order_type", sa.String),
    sa.column("status", sa.String),
    sa.column("body", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def body(no: str, **changes: Any) -> dict[str, Any]:
    data = {**EXAMPLE, "order_no": no, **changes}
    data.pop("revision")
    return data


def test_existing_orders_get_their_reasons(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = sa.create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_initial")
    now = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    stored = [
        body("A"),
        # What the old model stored for an order without sender or tracking number.
        body("B", tracking_no="", sender={"name": "", "phone": ""}),
        # Accepted by the old import, refused by the order rules now.
        body("C", status="weird", parcels=1_000_000),
    ]
    with engine.begin() as conn:
        for seq, data in enumerate(stored, start=1):
            conn.execute(
                OLD_ORDERS.insert().values(
                    order_no=data["order_no"],
                    order_seq=seq,
                    revision=1,
                    shop="pdd-main",
                    order_type="normal",
                    status=data["status"],
                    body=data,
                    created_at=now,
                    updated_at=now,
                )
            )
    engine.dispose()

    engine = open_db(db_url)  # migrates to head
    try:
        a, b, c = (get_order(engine, no) for no in "ABC")
        assert a is not None and a.blocked_reasons == [] and a.order is not None
        assert b is not None and b.blocked_reasons == ["missing tracking number"]
        assert b.order is not None and b.order.sender is None
        assert c is not None and c.order is None
        assert c.blocked_reasons == [
            "stored order breaks the order rules (status: must be one of 'ready', 'held', "
            "'address_change', 'cancelled' or 'refunded', got \"weird\"): import it again"
        ]
        assert [s.order_no for s in blocked_orders(engine)] == ["B", "C"]
        # The invalid one is not sent to the stations, and says so in the log.
        with caplog.at_level(logging.WARNING, logger="central.orders"):
            assert [o.order_no for _, o in orders_after(engine, cursor=0)] == ["A", "B"]
        assert "order C not sent: stored body is invalid: status" in caplog.text
    finally:
        engine.dispose()
