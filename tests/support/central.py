"""Helpers for central's tests: PostgreSQL schemas, event factories, a station-like client."""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from pydantic import BaseModel

from sync import topics
from sync.messages import Event, EventBatch, StationStatus, decode, encode, new_event_id
from sync.mqtt import make_client

M = TypeVar("M", bound=BaseModel)

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_DATABASE = "test"
PG_BASE = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"


def worker_database() -> str:
    """The PostgreSQL database this test process uses: ``test``, or under pytest-xdist
    (``make test`` runs two workers) ``test_gw0``, ``test_gw1``… made once from it.

    A schema per test keeps tables apart, but advisory locks (central's leader, its
    migration lock) are per database: two workers in one database would meet in them.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return PG_DATABASE
    name = f"{PG_DATABASE}_{worker}"
    dsn = f"host={PG_HOST} port={PG_PORT} user=postgres dbname={PG_DATABASE}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        made = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if made is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{name}"')
    return name


def postgres_reachable() -> bool:
    """Whether something listens on 127.0.0.1:5432."""
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema for one test; yields a URL whose search_path is that schema."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    database = worker_database()
    dsn = f"host={PG_HOST} port={PG_PORT} user=postgres dbname={database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        base = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{database}"
        yield f"{base}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def event(
    station: str,
    seq: int,
    *,
    type: str = "shipment.shipped",
    event_id: str | None = None,
    **payload: Any,
) -> Event:
    """An event as a station records it; shipments get a plausible payload."""
    if type == "shipment.shipped":
        payload = {
            "order_no": f"ORD-{station}-{seq}",
            "tracking_no": f"SF{seq:010d}",
            "carrier": "SF Express",
            "service": "Standard",
            "parcel_no": 1,
            "parcel_count": 1,
            "operator": "op-7",
            "print_job_id": f"job-{seq}",
            "print_verified": True,
            **payload,
        }
    return Event(
        event_id=event_id or new_event_id(),
        station=station,
        seq=seq,
        type=type,
        at_wall=time.time(),
        at_mono=time.monotonic(),
        boot_id="boot-1",
        payload=payload,
    )


def batch(station: str, *events: Event) -> EventBatch:
    """A batch of ``events`` from ``station``."""
    return EventBatch(station=station, events=list(events))


class FakeStation:
    """A station's MQTT side, enough to talk to central: publish, collect acks/orders."""

    def __init__(self, *, url: str, site: str, name: str) -> None:
        self.site = site
        self.name = name
        self.inbox: dict[str, queue.SimpleQueue[bytes]] = {
            "ack": queue.SimpleQueue(),
            "orders": queue.SimpleQueue(),
        }
        self._subscribed = queue.SimpleQueue[int]()
        self.client = make_client(
            client_id=f"test-{site}-{name}-{uuid.uuid4().hex[:6]}", url=url, session_expiry=0
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self._subscribed.put(1)
        self.client.on_message = self._on_message
        self.client.loop_start()
        self._subscribed.get(timeout=20)

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(
            [(topics.ack(self.site, self.name), 1), (topics.orders(self.site, self.name), 1)]
        )

    def _on_message(self, _client: mqtt.Client, _ud: object, msg: mqtt.MQTTMessage) -> None:
        leaf = topics.station_of(msg.topic)[2]
        self.inbox[leaf].put(bytes(msg.payload))

    def publish(self, topic_leaf: str, payload: bytes | BaseModel, *, retain: bool = False) -> None:
        """Publish on this station's ``topic_leaf`` (``events``, ``status``) and wait."""
        data = payload if isinstance(payload, bytes) else encode(payload)
        topic = getattr(topics, topic_leaf)(self.site, self.name)
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(timeout=10)

    def send(self, *events: Event) -> None:
        """Publish a batch of ``events``."""
        self.publish("events", batch(self.name, *events))

    def status(self, *, online: bool = True, cursor: int = 0, **fields: Any) -> None:
        """Publish a (retained) status."""
        status = StationStatus(station=self.name, online=online, orders_cursor=cursor, **fields)
        self.publish("status", status, retain=True)

    def next(self, leaf: str, cls: type[M], *, timeout: float = 20.0) -> M:
        """The next message received on ``leaf``, decoded."""
        try:
            return decode(cls, self.inbox[leaf].get(timeout=timeout))
        except queue.Empty:
            raise AssertionError(f"{self.name}: nothing on {leaf} within {timeout}s") from None

    def nothing_on(self, leaf: str, *, within: float) -> bool:
        """True when no message arrives on ``leaf`` for ``within`` seconds."""
        try:
            self.inbox[leaf].get(timeout=within)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        """Clear the retained status and disconnect."""
        self.client.publish(topics.status(self.site, self.name), b"", qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()
