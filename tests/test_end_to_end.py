"""The walking skeleton, all real processes: scan at a bench → waybill → central → page.

Mosquitto (fixture), ``packline central serve`` and ``packline edge run`` run as
separate processes; the scanner is a pseudo-terminal read by real pyserial and the
printer the ``file://`` virtual printer, whose PNG is decoded with zxing-cpp.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from packline.devbroker import MosquittoBroker
from packline.samples import sample_orders
from tests.support.processes import Central, Station, query
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SITE = "e2e"


@pytest.fixture
def orders(tmp_path: Path) -> list[dict[str, Any]]:
    sample = sample_orders(6, prefix="E2E")
    incomplete = dict(sample_orders(1, prefix="BAD", seed=99)[0], tracking_no="")
    return [*sample, incomplete]


@pytest.fixture
def central(
    tmp_path: Path, broker: MosquittoBroker, orders: list[dict[str, Any]]
) -> Iterator[Central]:
    c = Central(workdir=tmp_path, mqtt_url=broker.url, site=SITE)
    c.load_orders(orders)
    c.start()
    yield c
    c.stop()


@pytest.fixture
def station(
    tmp_path: Path, broker: MosquittoBroker, central: Central, orders: list[dict[str, Any]]
) -> Iterator[Station]:
    s = Station(workdir=tmp_path, name="bench-07", mqtt_url=broker.url, site=SITE).start()
    try:  # a failed start must not leave the agent running (it holds its pty)
        wait_for(lambda: s.orders() == len(orders), what="orders downlinked to the station")
        s.ready()
        s.login()
        yield s
    finally:
        s.close()


def central_shipments(central: Central, order_no: str) -> list[tuple[Any, ...]]:
    return query(
        central.db,
        "SELECT event_id, station, tracking_no FROM shipments WHERE order_no = ?",
        order_no,
    )


def decoded_barcodes(png: Path) -> set[str]:
    with Image.open(png) as img:
        return {r.text for r in zxingcpp.read_barcodes(img.convert("L"))}


def test_scan_prints_waybill_and_reaches_central_once(
    central: Central, station: Station, orders: list[dict[str, Any]]
) -> None:
    order = orders[0]
    station.pack(order)

    pngs = wait_for(station.waybills, what="a printed waybill")
    assert len(pngs) == 1
    assert order["tracking_no"] in decoded_barcodes(pngs[0])

    rows = wait_for(
        lambda: central_shipments(central, order["order_no"]), what="the shipment at central"
    )
    shipped = station.events("shipment.shipped")
    assert len(shipped) == 1
    assert rows == [(shipped[0][1], "bench-07", order["tracking_no"])]

    wait_for(lambda: station.backlog() == 0, what="the outbox to drain after the ack")
    # Still exactly once after the ack round trip and a status refresh.
    assert len(central_shipments(central, order["order_no"])) == 1

    api = central.get_json("/api/shipments")
    shipments = api["shipments"] if isinstance(api, dict) else api
    assert [s["order_no"] for s in shipments].count(order["order_no"]) == 1
    page = central.get_text("/")
    assert "bench-07" in page and order["order_no"] in page
    # Central holds the whole story of the parcel, in the bench's order.
    types = [
        r[0]
        for r in query(
            central.db, "SELECT type FROM events WHERE station = 'bench-07' ORDER BY seq"
        )
    ]
    story = [t for t in types if t not in ("device.state", "scan.rejected")]
    assert story[:3] == ["operator.login", "order.started", "label.printed"]
    assert story[-3:] == ["order.packed", "label.printed", "shipment.shipped"]
    # The parcel's record: contents, confirmation, operator (B5).
    (payload,) = query(central.db, "SELECT payload FROM events WHERE type = 'shipment.shipped'")
    shipped = payload[0] if isinstance(payload[0], dict) else json.loads(payload[0])
    assert shipped["operator"] == "0042" and shipped["confirm"] == "auto"
    expected = sorted((line["sku"], line["qty"]) for line in order["lines"])
    assert sorted((i["sku"], i["qty"]) for i in shipped["contents"]) == expected


def test_central_down_outbox_holds_then_drains_exactly_once(
    central: Central, station: Station, orders: list[dict[str, Any]]
) -> None:
    central.kill()
    codes = [o["order_no"] for o in orders[1:4]]
    for order in orders[1:4]:
        station.pack(order)
    wait_for(
        lambda: len(station.events("shipment.shipped")) == 3,
        what="three shipments recorded at the bench while central is down",
    )
    assert station.outbox_types().count("shipment.shipped") == 3
    assert len(station.waybills()) == 3  # the bench never waited

    central.start()
    for code in codes:
        wait_for(lambda c=code: central_shipments(central, c), what=f"{code} at central")
    wait_for(lambda: station.backlog() == 0, what="the outbox to drain")
    for code in codes:
        assert len(central_shipments(central, code)) == 1
    held = {
        r[0] for r in query(central.db, "SELECT event_id FROM events WHERE station = ?", "bench-07")
    }
    recorded = {e[1] for t in ("shipment.shipped", "label.printed") for e in station.events(t)}
    assert recorded <= held


def test_bad_input_is_refused_clearly_and_the_agent_keeps_running(
    central: Central, station: Station, orders: list[dict[str, Any]], tmp_path: Path
) -> None:
    station.scan("NO-SUCH-ORDER-42")
    station.scan(b"\xff\xfe\x01\x02garbage\x80")  # a garbled serial line
    incomplete = orders[-1]["order_no"]
    station.scan(incomplete)
    good, other = orders[5], orders[4]
    station.scan(good["order_no"])
    station.scan(other["lines"][0]["barcode"] + "0")  # not an item of this order
    station.scan(good["lines"][0]["barcode"])  # scanning on repeats the alarm
    station.scan("CMD-OK")
    station.pack({**good, "order_no": good["order_no"]}, wait=False)

    wait_for(
        lambda: central_shipments(central, good["order_no"]),
        what="the good order after the bad scans to ship",
    )
    assert station.alive()
    rejected = [json.loads(e[2]) for e in station.events("scan.rejected")]
    reasons = {r["text"]: r["reason"] for r in rejected}
    codes = [r["code"] for r in rejected]
    assert "unknown order NO-SUCH-ORDER-42" in reasons["NO-SUCH-ORDER-42"]
    assert "missing tracking number" in reasons[incomplete]
    # The scanner reports an unreadable scan from its own thread: order not fixed.
    assert sorted(codes) == sorted(
        ["unknown_code", "unreadable", "not_packable", "wrong_item", "alarm_pending"]
    )
    acks = [json.loads(e[2]) for e in station.events("alarm.acknowledged")]
    assert [(a["code"], a["order_no"]) for a in acks] == [("wrong_item", good["order_no"])]
    shipped = [json.loads(e[2])["order_no"] for e in station.events("shipment.shipped")]
    assert shipped == [good["order_no"]]
    log = station.log.read_text()
    assert "REFUSED unknown order NO-SUCH-ORDER-42" in log
    assert "REFUSED unreadable scan" in log
    assert "ALARM   Wrong item" in log
    assert "Traceback" not in log

    # A malformed order file: one clear line, exit 2, nothing imported.
    before = query(central.db, "SELECT COUNT(*) FROM orders")[0][0]
    bad = tmp_path / "broken.json"
    bad.write_text('[{"order_no": "X1", "lines": [{"sku": "A", "qty": "many"}]}')
    done = central.import_orders(bad)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "broken.json" in done.stderr
    assert "Traceback" not in done.stderr
    assert query(central.db, "SELECT COUNT(*) FROM orders")[0][0] == before
