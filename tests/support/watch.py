"""Helpers for the watch's tests: orders at a time, bench events at a time, ticks."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import stations
from central.ingest import store_batch
from central.orders import import_orders
from central.watch import WatchRules, tick
from central.watch.alerts import Alert
from central.watch.reactor import react_pending
from central.watch.rules import DeadlineRules
from sync import topics
from sync.messages import Event, new_event_id
from sync.mqtt import make_client
from sync.order import Order, validate_order
from tests.support.central import batch
from tests.support.waiting import wait_for

__all__ = [
    "PAID",
    "AlertListener",
    "H",
    "M",
    "bench_event",
    "kinds",
    "make_order",
    "put_orders",
    "ticks",
]

#: When the test orders were paid (a fixed instant: tests travel from here).
PAID = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def make_order(order_no: str, *, paid_at: dt.datetime | None = PAID, **fields: Any) -> Order:
    """A packable order paid at ``paid_at`` (other fields as given)."""
    data: dict[str, Any] = {
        "order_no": order_no,
        "shop": "pdd-main",
        "carrier": "SF Express",
        "tracking_no": f"SF{abs(hash(order_no)) % 10**10:010d}",
        "recipient": {"name": "张三", "phone": "13812345678", "address": "科技园 8 号"},
        "lines": [{"sku": "TEE-BLK-M", "qty": 1}],
        **fields,
    }
    if paid_at is not None:
        data["paid_at"] = paid_at.isoformat()
    return validate_order(data)


def put_orders(engine: Engine, *orders: Order, deadlines: DeadlineRules | None = None) -> None:
    """Import ``orders`` as ``packline central import-orders`` does."""
    import_orders(engine, list(orders), deadlines=deadlines)


def ticks(
    engine: Engine,
    *moments: dt.datetime,
    site: str = "wh1",
    rules: WatchRules | None = None,
) -> list[Alert]:
    """Tick at each of ``moments`` in turn; every alert fired, in order."""
    fired: list[Alert] = []
    for moment in moments:
        fired += tick(engine, now=moment, site=site, rules=rules).alerts
    return fired


def kinds(alerts: list[Alert]) -> list[tuple[str, str | None]]:
    """``(kind, order_no)`` of each alert."""
    return [(a.kind, a.order_no) for a in alerts]


def bench_event(
    engine: Engine,
    station: str,
    type: str,
    *,
    at: dt.datetime,
    site: str = "wh1",
    **payload: Any,
) -> Event:
    """Record one event of ``station`` that happened at ``at`` (its clock) and store it
    as central's ingest does (the next seq after what central holds)."""
    (event,) = bench_batch(engine, station, [(type, at, payload)], site=site)
    return event


def bench_batch(
    engine: Engine,
    station: str,
    facts: list[tuple[str, dt.datetime, dict[str, Any]]],
    *,
    site: str = "wh1",
    react: bool = True,
) -> list[Event]:
    """Record ``facts`` (type, when at the bench, payload) of ``station`` as the next
    seqs after what central holds, and store them as ONE batch, as the uplink sends a
    backlog; then (``react``) the watch reacts to them, as central's reactor does once
    the batch is acknowledged."""
    with engine.connect() as conn:
        held = conn.execute(
            sa.select(stations.c.acked_seq).where(stations.c.station == station)
        ).scalar()
    events: list[Event] = []
    for n, (type, at, payload) in enumerate(facts, start=int(held or 0) + 1):
        if type == "shipment.shipped":
            payload = {
                "tracking_no": "SF1",
                "carrier": "SF Express",
                "service": "",
                "parcel_no": 1,
                "parcel_count": 1,
                "operator": "op-7",
                "print_job_id": f"job-{n}",
                "print_verified": True,
                **payload,
            }
        events.append(
            Event(
                event_id=new_event_id(),
                station=station,
                seq=n,
                type=type,
                at_wall=at.timestamp(),
                at_mono=float(n),
                boot_id="boot-1",
                payload=payload,
            )
        )
    store_batch(engine, batch(station, *events), site=site)
    if react:
        react_pending(engine)
    return events


class AlertListener:
    """A supervisor's phone: subscribed to every alert of ``site``, keeping what came."""

    def __init__(self, *, url: str, site: str, topic: str | None = None) -> None:
        self.site = site
        self.topic = topic or topics.alerts(site, "+", "+")
        self.received: list[dict[str, Any]] = []
        self.topics: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = make_client(
            client_id=f"test-alerts-{uuid.uuid4().hex[:8]}", url=url, session_expiry=0
        )
        self.client.on_connect = lambda c, *_a: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.loop_start()
        if not self._subscribed.wait(20):
            raise AssertionError("the alert listener could not subscribe")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(json.loads(msg.payload))
            self.topics.append(msg.topic)

    def alerts(self) -> list[dict[str, Any]]:
        """Everything received so far, in order."""
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``count`` alerts (or more) have come; all of them."""
        wait_for(lambda: len(self.alerts()) >= count, what=f"{count} alerts", timeout=timeout)
        return self.alerts()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
