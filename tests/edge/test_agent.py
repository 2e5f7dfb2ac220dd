"""The agent against the shipped fake Brother QL over real TCP and SNMP (B2–B6).

The agent looks things up in a real station store, records each step's events and
state in one transaction, prints on the fake and feeds the results back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp

from drivers.fakes.ql import FakeQLPrinter
from drivers.fakes.scanner import ScriptedScanner
from drivers.labels import render
from drivers.printers.base import PrintJob
from edge.agent import Agent
from edge.bench import Feedback
from edge.factory import build_agent
from edge.settings import StationSettings
from edge.view import RESTARTED_NOTICE
from packline.devbroker import MosquittoBroker
from packline.samples import sample_orders
from sync.events import DeviceState, LabelPrinted, ScanRejected, ShipmentShipped
from sync.messages import OrdersMessage
from sync.order import Order
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeQLPrinter]:
    with FakeQLPrinter(out_dir=tmp_path / "fake-ql", label="62", slow=0.01) as printer:
        yield printer


def make_agent(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter, **changes: Any
) -> Agent:
    settings = StationSettings.model_validate(
        {
            "station": "bench-ql",
            "site": "agent",
            "data_dir": tmp_path / "station",
            "mqtt_url": broker.url,
            "scanner": "script:?interval=0",
            "printer": fake.url,
            "print_packing_list": False,
            **changes,
        }
    )
    agent = build_agent(settings, version="test", scanner=ScriptedScanner(scans=[]))
    orders = [Order.model_validate(o) for o in sample_orders(3, prefix="QL")]
    agent.store.apply_orders(OrdersMessage(orders=orders, cursor=3))
    return agent


def items(order: Order) -> list[str]:
    return [line.scan_code for line in order.lines for _ in range(line.qty)]


def pack(agent: Agent, order_no: str) -> Feedback:
    order = agent.store.order(order_no)
    assert order is not None
    told = agent.handle_scan("OP-0042")
    for code in [order_no, *items(order)]:
        told = agent.handle_scan(code)
    return told


def shipped(agent: Agent) -> list[str]:
    return [e.payload["order_no"] for e in agent.store.events(type=ShipmentShipped.TYPE)]


def test_the_label_size_and_resolution_come_from_the_printer(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    try:
        assert (agent.label.key, agent.label_dpi) == ("62", 300)
    finally:
        agent.close()


def test_a_printer_fault_holds_the_label_and_nothing_ships_until_it_prints(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    order = agent.store.order("QL20261123000001")
    assert order is not None
    fake.set(no_media=True)
    told = pack(agent, order.order_no)
    assert not told.ok and "printer" in told.message.lower()
    assert shipped(agent) == [] and fake.jobs == []
    assert agent.health()["printer"] == "fault"
    faults = agent.store.events(type=DeviceState.TYPE)
    assert faults and faults[-1].payload["device"] == "printer"
    assert "printer" in agent.view().next_step

    fake.set(no_media=False)  # the packer loads a new roll and asks for the label
    told = agent.handle_scan("CMD-REPRINT")
    assert told.ok, told.message
    assert shipped(agent) == [order.order_no]
    assert len(fake.jobs) == 1
    printed = agent.store.events(type=LabelPrinted.TYPE)[-1].payload
    assert printed["verified"] is True  # the fake's SNMP page counter confirmed it
    assert printed["reprint"] is False  # the first label of the parcel, not a second one
    # What the printer received decodes back to the order's tracking number.
    pages = fake.jobs[0].pages
    assert pages, "the fake decoded no page"
    assert order.tracking_no in {r.text for r in zxingcpp.read_barcodes(pages[0])}
    agent.close()


def test_a_crash_between_print_and_record_never_prints_a_second_label(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    order = agent.store.order("QL20261123000002")
    assert order is not None
    # The label came out, then the Pi lost power before the shipment was recorded.
    job_id = f"{order.order_no}-r{order.revision}-waybill-1"
    image = render("waybill", order.model_dump(), size="62")
    agent.printer.print(PrintJob(job_id=job_id, images=[image]))
    agent.close()
    assert len(fake.jobs) == 1

    again = make_agent(tmp_path, broker, fake)  # after the reboot: new process state
    told = pack(again, order.order_no)
    assert told.outcome == "done", told.message
    assert len(fake.jobs) == 1, "the retried job must not print a second label"
    assert shipped(again) == [order.order_no]
    printed = again.store.events(type=LabelPrinted.TYPE)[-1].payload
    assert printed["duplicate"] is True
    again.close()


def test_rescan_of_a_shipped_order_is_refused_and_prints_nothing(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    assert pack(agent, "QL20261123000003").outcome == "done"
    told = agent.handle_scan("QL20261123000003")
    assert not told.ok and "already shipped" in told.message
    assert len(fake.jobs) == 1 and shipped(agent) == ["QL20261123000003"]
    rejected = agent.store.events(type=ScanRejected.TYPE)[-1].payload
    assert rejected["code"] == "already_shipped" and rejected["operator"] == "0042"
    agent.close()


def test_printer_killed_mid_job_is_a_clear_refusal(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    order = agent.store.order("QL20261123000001")
    assert order is not None
    codes = items(order)
    for code in ["OP-1", order.order_no, *codes[:-1]]:
        agent.handle_scan(code)
    fake.set(slow=5.0)  # seconds per page: the job is still printing when it dies
    done: list[Feedback] = []
    worker = threading.Thread(target=lambda: done.append(agent.handle_scan(codes[-1])))
    worker.start()
    wait_for(lambda: len(fake.jobs) == 1, what="the job to reach the printer")
    fake.stop()
    worker.join(timeout=120)
    assert done and not done[0].ok and "printer" in done[0].message.lower(), done
    assert shipped(agent) == []
    assert agent.health()["printer"] == "fault"
    agent.close()


def test_the_order_in_progress_survives_a_restart_with_a_notice(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    order = agent.store.order("QL20261123000001")  # five items
    assert order is not None
    codes = items(order)
    for code in ["OP-0042", order.order_no, codes[0]]:
        agent.handle_scan(code)
    agent.close()

    again = make_agent(tmp_path, broker, fake)
    again.tick()  # what run() does first: resume
    view = again.view()
    assert view.state == "packing" and view.operator == "0042"
    assert view.notice == RESTARTED_NOTICE
    assert view.order is not None and view.order.items_verified == 1
    for code in codes[1:]:
        told = again.handle_scan(code)
    assert told.outcome == "done"
    assert again.view().notice is None
    assert shipped(again) == [order.order_no]
    again.close()


def test_wrong_media_loaded_is_refused_before_anything_prints(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    fake.set(media="29")  # a 29 mm roll in a bench set up for 62 mm
    agent = make_agent(tmp_path, broker, fake)
    agent.devices.check_printer()
    view = agent.view()
    assert not view.devices.printer_ready and "29 mm" in view.devices.printer_problem
    order = agent.store.order("QL20261123000001")
    assert order is not None
    told = pack(agent, order.order_no)
    assert told.code == "label_does_not_fit" and fake.jobs == []
    fake.set(media="62")  # the right roll goes in
    agent.devices.check_printer()
    assert agent.view().devices.printer_ready
    assert agent.handle_scan(items(order)[-1]).outcome == "done"
    agent.close()


def test_the_view_follows_every_step(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake, require_operator=True)
    seen: list[int] = []
    agent.changes.subscribe(seen.append)
    view = agent.view()
    assert view.state == "idle" and view.operator is None and "badge" in view.next_step
    assert [n.order_no for n in view.next_to_pack][:3] == [
        "QL20261123000001",
        "QL20261123000002",
        "QL20261123000003",
    ]
    before = agent.changes.version
    agent.handle_scan("OP-7")
    agent.handle_scan("QL20261123000001")
    assert agent.changes.wait(after=before, timeout=1) > before and seen
    view = agent.view()
    assert view.state == "packing" and view.order is not None
    assert view.order.order_no == "QL20261123000001"
    assert view.order.items_verified == 0 and view.order.parcel_count == 1
    assert "QL20261123000001" not in [n.order_no for n in view.next_to_pack]
    agent.handle_scan("6999999999999")
    view = agent.view()
    assert view.state == "alarm" and view.alarm is not None and view.alarm.code == "wrong_item"
    assert view.feedback is not None and view.feedback.outcome == "alarm"
    assert view.sync.backlog > 0 and view.sync.oldest_unsent_at is not None
    data = view.model_dump(mode="json")  # what the kiosk sends over SSE
    assert data["state"] == "alarm" and data["order"]["lines"]
    # No customer data on the packer's screen (C1).
    order = agent.store.order("QL20261123000001")
    assert order is not None and order.recipient.phone not in str(data)
    agent.close()


def test_an_address_change_from_central_stops_a_printed_parcel_until_void_and_reprint(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake, confirm="scan")
    order = agent.store.order("QL20261123000002")
    assert order is not None
    pack(agent, order.order_no)
    assert len(fake.jobs) == 1 and shipped(agent) == []  # printed, waiting for its scan
    moved = order.model_copy(
        update={
            "revision": 2,
            "recipient": order.recipient.model_copy(update={"address": "新地址 8 号"}),
        }
    )
    # The downlink stores it and tells the agent (on the network thread) ...
    agent.store.apply_orders(OrdersMessage(orders=[moved], cursor=4))
    agent.orders_changed(1)
    agent.tick()  # ... and the bench's loop applies it
    view = agent.view()
    assert view.state == "alarm" and view.alarm is not None
    assert view.alarm.code == "order_changed" and "void" in view.alarm.message
    agent.handle_scan("CMD-OK")
    refused = agent.handle_scan(order.tracking_no)
    assert refused.code == "label_outdated" and shipped(agent) == []
    agent.handle_scan("CMD-VOID")
    assert agent.handle_scan(order.tracking_no).ok
    assert agent.handle_scan("CMD-REPRINT").ok
    assert len(fake.jobs) == 2
    # The new label carries the new address revision; scanning it ships the parcel.
    printed = agent.store.events(type=LabelPrinted.TYPE)[-1].payload
    assert printed["job_id"].startswith(f"{order.order_no}-r2-waybill-1") and printed["reprint"]
    assert agent.handle_scan(order.tracking_no).outcome == "done"
    assert shipped(agent) == [order.order_no]
    voided = agent.store.events(type="label.voided")
    assert [v.payload["job_id"] for v in voided] == [f"{order.order_no}-r1-waybill-1"]
    agent.close()
