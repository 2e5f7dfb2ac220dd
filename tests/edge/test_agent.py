"""The bench step against the shipped fake Brother QL over real TCP and SNMP (B2, B3, B5)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp

from drivers.fakes.ql import FakeQLPrinter
from drivers.fakes.scanner import ScriptedScanner
from drivers.labels import render
from drivers.printers.base import PrintJob
from edge.agent import Agent
from edge.bench import Outcome
from edge.factory import build_agent
from edge.settings import StationSettings
from packline.devbroker import MosquittoBroker
from packline.samples import sample_orders
from sync.events import LabelPrinted, ScanRejected, ShipmentShipped
from sync.messages import OrdersMessage
from sync.order import Order
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeQLPrinter]:
    with FakeQLPrinter(out_dir=tmp_path / "fake-ql", label="62", slow=0.01) as printer:
        yield printer


def make_agent(tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter) -> Agent:
    settings = StationSettings(
        station="bench-ql",
        site="agent",
        data_dir=tmp_path / "station",
        mqtt_url=broker.url,
        scanner="script:?interval=0",
        printer=fake.url,
        label_size="62",
    )
    agent = build_agent(settings, version="test", scanner=ScriptedScanner(scans=[]))
    orders = [Order.model_validate(o) for o in sample_orders(3, prefix="QL")]
    agent.store.apply_orders(OrdersMessage(orders=orders, cursor=3))
    return agent


def shipped(agent: Agent) -> list[str]:
    return [e.payload["order_no"] for e in agent.store.events(type=ShipmentShipped.TYPE)]


def test_printer_fault_stops_the_bench_and_nothing_is_shipped(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    order = agent.store.order("QL20261123000001")
    assert order is not None
    fake.set(no_media=True)
    outcome = agent.handle_scan(order.order_no)
    assert not outcome.ok and outcome.message.startswith("printer:")
    assert shipped(agent) == [] and fake.jobs == []
    rejected = agent.store.events(type=ScanRejected.TYPE)
    assert rejected[-1].payload["order_no"] == order.order_no
    assert agent.health()["printer"] == "fault"

    fake.set(no_media=False)  # the packer loads a new roll and scans again
    outcome = agent.handle_scan(order.order_no)
    assert outcome.ok, outcome.message
    assert shipped(agent) == [order.order_no]
    assert len(fake.jobs) == 1
    printed = agent.store.events(type=LabelPrinted.TYPE)[-1].payload
    assert printed["verified"] is True  # the fake's SNMP page counter confirmed it
    # What the printer received decodes back to the order's tracking number.
    pages = fake.jobs[0].pages
    assert pages, "the fake decoded no page"
    assert order.tracking_no in {r.text for r in zxingcpp.read_barcodes(pages[0])}


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
    agent.printer.close()
    agent.store.close()
    assert len(fake.jobs) == 1 and shipped(make_agent(tmp_path, broker, fake)) == []

    again = make_agent(tmp_path, broker, fake)  # after the reboot: new process state
    outcome = again.handle_scan(order.order_no)
    assert outcome.ok, outcome.message
    assert len(fake.jobs) == 1, "the retried job must not print a second label"
    assert shipped(again) == [order.order_no]
    printed = again.store.events(type=LabelPrinted.TYPE)[-1].payload
    assert printed["duplicate"] is True


def test_rescan_of_a_shipped_order_is_refused_and_prints_nothing(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    assert agent.handle_scan("QL20261123000003").ok
    outcome = agent.handle_scan("QL20261123000003")
    assert not outcome.ok and "already shipped" in outcome.message
    assert len(fake.jobs) == 1 and shipped(agent) == ["QL20261123000003"]


def test_printer_killed_mid_job_is_a_clear_refusal(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    agent = make_agent(tmp_path, broker, fake)
    fake.set(slow=5.0)  # seconds per page: the job is still printing when it dies
    done: list[Outcome] = []
    worker = threading.Thread(target=lambda: done.append(agent.handle_scan("QL20261123000001")))
    worker.start()
    wait_for(lambda: len(fake.jobs) == 1, what="the job to reach the printer")
    fake.stop()
    worker.join(timeout=120)
    assert done and not done[0].ok and done[0].message.startswith("printer:"), done
    assert shipped(agent) == []
    assert agent.health()["printer"] == "fault"
