"""Outbox drain: a 10k-event backlog through the real pump to central's ack, against a
bare paho QoS 1 publisher on the same broker, same run.

One private Mosquitto on a free port serves both sides. The baseline is the cheapest
way to get the same events to the broker reliably: a bare paho client publishes each
event (its JSON, as the station stores it) as one QoS 1 message and waits for every
PUBACK — nothing stored, nothing acknowledged end to end. Ours is the product's path:
a station store holding the backlog (the mix of a real packing: order started, two
labels, items, packed, shipped), its :class:`~edge.uplink.Uplink` with the given
window of batches in flight, and a real ``packline central serve`` process on a
SQLite file (or ``--db-url``), which stores each batch in one transaction, applies
the projections and acks; the clock stops when the station's outbox is empty, i.e.
when every event is committed at central and acknowledged back. Rounds alternate so
machine noise hits both alike; the best round of each side is compared. Not a test.

    .venv/bin/python bench/sync_drain.py [--events 10000] [--rounds 2] [--windows 1,4]
                                         [--db-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.clock import SystemClock
from edge.store import StationStore
from edge.uplink import Uplink, station_session
from packline.devbroker import MosquittoBroker, free_port, stop_process
from sync.events import (
    EventPayload,
    ItemVerified,
    LabelPrinted,
    OrderPacked,
    OrderStarted,
    ShipmentShipped,
)

PACKLINE = [sys.executable, "-m", "packline"]


def packing_facts(count: int) -> list[EventPayload]:
    """``count`` facts as a bench records them: seven per order packed."""
    facts: list[EventPayload] = []
    n = 0
    while len(facts) < count:
        order = f"DR{n:06d}"
        facts += [
            OrderStarted(order_no=order, operator="OP-0042"),
            LabelPrinted(order_no=order, job_id=f"{order}-w", kind="waybill", verified=True),
            LabelPrinted(order_no=order, job_id=f"{order}-p", kind="packing_list", verified=True),
            ItemVerified(order_no=order, parcel_no=1, sku="SKU-1", barcode="6901234567892", qty=1),
            ItemVerified(order_no=order, parcel_no=1, sku="SKU-2", barcode="6901234567908", qty=2),
            OrderPacked(order_no=order, parcel_count=1, operator="OP-0042"),
            ShipmentShipped(
                order_no=order,
                tracking_no=f"SF{n:010d}",
                carrier="SF Express",
                parcel_no=1,
                parcel_count=1,
                operator="OP-0042",
                print_job_id=f"{order}-w",
                print_verified=True,
            ),
        ]
        n += 1
    return facts[:count]


def fill_store(path: Path, station: str, count: int) -> StationStore:
    store = StationStore(path, station=station, clock=SystemClock())
    facts = packing_facts(count)
    for i in range(0, count, 500):
        store.record_all([(f, None) for f in facts[i : i + 500]])
    return store


def bare_publisher(broker: MosquittoBroker, payloads: list[bytes]) -> float:
    """Seconds for a bare paho QoS 1 client to publish every payload and see every PUBACK."""
    done = threading.Event()
    acked = [0]
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bare-{os.getpid()}-{time.monotonic_ns()}",
        protocol=mqtt.MQTTv5,
    )
    # As many in flight as the broker allows: the publisher is never the bottleneck.
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)

    def on_publish(*_args: Any) -> None:
        acked[0] += 1
        if acked[0] == len(payloads):
            done.set()

    client.on_publish = on_publish
    t0 = time.perf_counter()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for payload in payloads:
        client.publish("bench/bare/events", payload, qos=1)
    done.wait(timeout=600)
    took = time.perf_counter() - t0
    client.loop_stop()
    client.disconnect()
    return took


class CentralProcess:
    """``packline central serve`` for one site, on a free page port."""

    def __init__(self, *, db_url: str, mqtt_url: str, site: str, log: Path) -> None:
        self.port = free_port()
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                *PACKLINE,
                "central",
                "serve",
                "--db-url",
                db_url,
                "--mqtt-url",
                mqtt_url,
                "--site",
                site,
                "--http-port",
                str(self.port),
            ],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"central exited; see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(1.0)  # subscribed, not only serving the page

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.log.close()


def pump_round(
    *, tmp: Path, broker: MosquittoBroker, db_url: str, count: int, window: int, tag: str
) -> float:
    """Seconds from the uplink's start until central acked the whole backlog."""
    site = f"drain{tag}"
    store = fill_store(tmp / f"station-{tag}.sqlite", "bench-01", count)
    central = CentralProcess(db_url=db_url, mqtt_url=broker.url, site=site, log=tmp / "central.log")
    uplink = Uplink(
        session=station_session(
            site=site, station="bench-01", mqtt_url=broker.url, instance_id=store.instance_id
        ),
        outbox=store,
        site=site,
        station="bench-01",
        window=window,
    )
    try:
        t0 = time.perf_counter()
        uplink.start()
        while store.backlog():
            time.sleep(0.005)
        took = time.perf_counter() - t0
    finally:
        uplink.stop()
        store.close()
        central.stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--windows", default="1,4", help="batches in flight to try")
    parser.add_argument("--db-url", default="", help="central's database (default: SQLite file)")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    with tempfile.TemporaryDirectory(prefix="packline-drain-") as name:
        tmp = Path(name)
        payloads = [
            e.model_dump_json().encode()
            for e in fill_store(tmp / "payloads.sqlite", "bare", args.events).pending(
                limit=args.events
            )
        ]
        with MosquittoBroker(workdir=tmp / "mosquitto") as broker:
            bare: list[float] = []
            ours: dict[int, list[float]] = {w: [] for w in windows}
            for r in range(args.rounds):
                bare.append(bare_publisher(broker, payloads))
                for w in windows:
                    db_url = args.db_url or f"sqlite:///{tmp / f'central-{r}-{w}.db'}"
                    ours[w].append(
                        pump_round(
                            tmp=tmp,
                            broker=broker,
                            db_url=db_url,
                            count=args.events,
                            window=w,
                            tag=f"{r}w{w}",
                        )
                    )
    backend = args.db_url.split(":", 1)[0] if args.db_url else "sqlite"
    base = args.events / min(bare)
    print(f"outbox drain: {args.events:,} events, {args.rounds} rounds, central on {backend}")
    print(f"{'':44}{'events/s':>10}{'ratio':>8}")
    print(f"{'bare paho QoS 1 publisher (PUBACK)':44}{base:>10,.0f}{1:>8.2f}")
    for w, xs in ours.items():
        rate = args.events / min(xs)
        name = f"pump → central ack, {w} batch{'es' if w > 1 else ''} in flight"
        print(f"{name:44}{rate:>10,.0f}{rate / base:>8.2f}")
    best = max(args.events / min(xs) for xs in ours.values())
    print(f"ratio drain/bare: {best / base:.2f} (goal ≥ 0.5)")


if __name__ == "__main__":
    main()
