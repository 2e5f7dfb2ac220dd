"""O2/O3 with processes killed: nothing recorded is lost or counted twice centrally."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.clock import SystemClock
from edge.store import StationStore
from edge.uplink import Uplink, station_session
from packline.devbroker import MosquittoBroker
from packline.samples import sample_orders
from sync.events import ShipmentShipped
from tests.support.processes import Central, Station, query
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SITE = "chaos"


@pytest.fixture
def system(
    tmp_path: Path, own_broker: MosquittoBroker
) -> Iterator[tuple[Central, Station, list[dict[str, Any]]]]:
    orders = sample_orders(40, prefix="CH")
    (tmp_path / "orders.json").write_text(json.dumps(orders, ensure_ascii=False))
    central = Central(workdir=tmp_path, mqtt_url=own_broker.url, site=SITE)
    assert central.import_orders(tmp_path / "orders.json").returncode == 0
    central.start()
    station = Station(workdir=tmp_path, name="bench-kill", mqtt_url=own_broker.url, site=SITE)
    station.start()
    wait_for(lambda: station.orders() == len(orders), what="orders at the station")
    station.ready()
    station.login()
    yield central, station, orders
    station.close()
    central.stop()


def _central_counts(central: Central) -> dict[str, int]:
    rows = query(central.db, "SELECT order_no, COUNT(*) FROM shipments GROUP BY order_no")
    return {r[0]: r[1] for r in rows}


def test_broker_and_agent_killed_mid_stream_lose_and_double_nothing(
    system: tuple[Central, Station, list[dict[str, Any]]], own_broker: MosquittoBroker
) -> None:
    central, station, orders = system

    for order in orders[:10]:
        station.pack(order, wait=False)
    own_broker.kill()  # broker crash: its in-memory queue and unsaved state are gone
    for order in orders[10:20]:
        station.pack(order, wait=False)
    wait_for(
        lambda: len(station.events("shipment.shipped")) == 20,
        what="the bench to keep shipping without a broker",
    )
    own_broker.start()

    for order in orders[20:30]:
        station.pack(order, wait=False)
    wait_for(lambda: len(station.events("shipment.shipped")) >= 25, what="more shipments")
    assert station.proc is not None
    station.proc.send_signal(signal.SIGKILL)  # power cut at the Pi
    station.proc.wait()
    station.start().ready()
    # Scans typed while the agent was down are lost at the pty, as with a real
    # scanner; the order in progress (if any) resumes, so it is finished or put
    # aside before the rest are packed.
    station.scan_and_wait("CMD-CANCEL")
    for order in orders[30:]:
        station.pack(order)

    central.kill()
    central.start()

    def settled() -> bool:
        return station.backlog() == 0 and len(_central_counts(central)) == len(
            station.events("shipment.shipped")
        )

    wait_for(settled, what="central to hold every shipment the bench recorded", timeout=60)
    counts = _central_counts(central)
    recorded = [json.loads(e[2])["order_no"] for e in station.events("shipment.shipped")]
    assert len(recorded) == len(set(recorded)), "the bench shipped an order twice"
    assert sorted(counts) == sorted(recorded)
    assert set(counts.values()) == {1}, "a shipment was counted twice centrally"
    # Central applied the station's events in order, with no gaps.
    acked = query(central.db, "SELECT acked_seq FROM stations WHERE station = 'bench-kill'")
    top = query(station.db, "SELECT MAX(seq) FROM events")[0][0]
    assert acked == [(top,)]


def test_a_window_of_batches_survives_central_and_broker_kills_exactly_once_in_order(
    tmp_path: Path, own_broker: MosquittoBroker
) -> None:
    """A 2,000-record backlog drained four batches at a time while central is killed
    (SIGKILL, mid-batch) and then the broker: every event stored once, applied in seq
    order, acked to the top, and the outbox empty."""
    central = Central(workdir=tmp_path, mqtt_url=own_broker.url, site=SITE).start()
    store = StationStore(tmp_path / "station.sqlite", station="bench-win", clock=SystemClock())
    total = 2000
    for i in range(total):
        store.record(
            ShipmentShipped(
                order_no=f"WIN{i}",
                tracking_no=f"T{i}",
                carrier="SF Express",
                parcel_no=1,
                parcel_count=1,
                operator="op",
                print_job_id=f"WIN{i}-r1-waybill-1",
                print_verified=True,
            )
        )
    session = station_session(
        site=SITE, station="bench-win", mqtt_url=own_broker.url, instance_id=store.instance_id
    )
    uplink = Uplink(
        session=session,
        outbox=store,
        site=SITE,
        station="bench-win",
        resend_after=1.0,
        batch_size=50,
        window=4,
    )

    def acked() -> int:
        rows = query(central.db, "SELECT acked_seq FROM stations WHERE station = 'bench-win'")
        return int(rows[0][0]) if rows else 0

    uplink.start()
    try:
        wait_for(lambda: acked() >= 300, what="central to take the first batches")
        central.kill()
        central.start()
        wait_for(lambda: acked() >= 900, what="the drain to go on after central's restart")
        own_broker.kill()
        own_broker.start()
        wait_for(lambda: store.backlog() == 0, what="the outbox to drain", timeout=120)
    finally:
        uplink.stop()
        store.close()
        central.stop()
    held = query(central.db, "SELECT seq, COUNT(*) FROM events GROUP BY seq ORDER BY seq")
    assert [r[0] for r in held] == list(range(1, total + 1))
    assert {r[1] for r in held} == {1}, "an event was stored twice"
    applied = query(
        central.db,
        "SELECT e.seq FROM shipments s JOIN events e ON e.event_id = s.event_id ORDER BY s.id",
    )
    assert [r[0] for r in applied] == list(range(1, total + 1)), "applied once, in seq order"
    assert acked() == total
