"""The station's uplink (outbox pump, acks, status) over a real Mosquitto.

The central side is played by the test with a plain paho client, so each rule of the
uplink is seen on the wire: batches in seq order, rows kept until the end-to-end ack,
resend when no ack comes, garbled or misaddressed acks ignored, the last will.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from central.db import open_db
from central.ingest import ingest_batch
from edge.clock import SystemClock
from edge.store import StationStore
from edge.uplink import Uplink, station_session
from packline.devbroker import MosquittoBroker
from sync import topics
from sync.events import ShipmentShipped
from sync.messages import Ack, EventBatch, OrdersMessage, StationStatus, decode, encode
from sync.order import Order
from tests.support.brokers import AclBroker
from tests.support.relay import Relay
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt

SITE = "pump"


class Central:
    """A paho client standing in for central: sees batches and statuses, sends acks."""

    def __init__(self, broker: MosquittoBroker, station: str) -> None:
        self.station = station
        self.batches: queue.Queue[EventBatch] = queue.Queue()
        self.statuses: queue.Queue[StationStatus] = queue.Queue()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topics.events(SITE, station), qos=1)
        self.client.subscribe(topics.status(SITE, station), qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/events"):
            self.batches.put(decode(EventBatch, msg.payload))
        elif msg.payload:
            self.statuses.put(decode(StationStatus, msg.payload))

    def ack(self, payload: bytes) -> None:
        self.client.publish(topics.ack(SITE, self.station), payload, qos=1).wait_for_publish(5)

    def orders(self, message: OrdersMessage) -> None:
        topic = topics.orders(SITE, self.station)
        self.client.publish(topic, encode(message), qos=1).wait_for_publish(5)

    def next_batch(self) -> EventBatch:
        return self.batches.get(timeout=20)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StationStore]:
    s = StationStore(tmp_path / "b.sqlite", station="b1", clock=SystemClock())
    yield s
    s.close()


@pytest.fixture
def central(broker: MosquittoBroker) -> Iterator[Central]:
    c = Central(broker, "b1")
    yield c
    c.close()


def start_pump(
    store: StationStore, broker: MosquittoBroker, *, via: str | None = None, **kw: float
) -> Uplink:
    """The station's uplink to ``broker`` (or through ``via``, a URL leading to it)."""
    # A client id per store, as a station has: no messages queued for an earlier test.
    session = station_session(
        site=SITE, station="b1", mqtt_url=via or broker.url, instance_id=store.instance_id
    )
    pump = Uplink(session=session, outbox=store, site=SITE, station="b1", **kw)  # type: ignore[arg-type]
    pump.start()
    assert pump.session.wait_connected(20)
    return pump


def test_rows_stay_until_the_end_to_end_ack_and_bad_acks_are_ignored(
    store: StationStore, central: Central, broker: MosquittoBroker
) -> None:
    for i in range(3):
        store.record("t", {"i": i})
    pump = start_pump(store, broker, resend_after=30.0)
    try:
        batch = central.next_batch()
        assert [e.seq for e in batch.events] == [1, 2, 3]
        # The broker has the batch (PUBACK), but nothing is deleted without central.
        assert store.backlog() == 3
        central.ack(b"\xff not json")
        central.ack(encode(Ack(station="someone-else", seq=3)))
        central.ack(encode(Ack(station="b1", seq=99)))  # beyond what b1 ever recorded
        central.ack(encode(Ack(station="b1", seq=2)))
        wait_for(lambda: store.backlog() == 1, what="rows up to seq 2 to go")
        assert [e.seq for e in store.pending()] == [3]
        store.record("t", {"i": 3})
        pump.notify()
        central.ack(encode(Ack(station="b1", seq=3)))
        nxt = central.next_batch()
        while nxt.events[0].seq < 4:  # a resend of 3 may come first
            nxt = central.next_batch()
        assert [e.seq for e in nxt.events] == [4]
    finally:
        pump.stop()


def test_a_batch_without_ack_is_resent_from_the_oldest_row(
    store: StationStore, central: Central, broker: MosquittoBroker
) -> None:
    store.record("t", {})
    store.record("t", {})
    pump = start_pump(store, broker, resend_after=0.5)
    try:
        first = central.next_batch()
        again = central.next_batch()
        assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
        central.ack(encode(Ack(station="b1", seq=2)))
        wait_for(lambda: store.backlog() == 0, what="the ack to empty the outbox")
    finally:
        pump.stop()


def test_a_batch_in_flight_when_the_link_drops_is_resent_as_soon_as_it_is_back(
    store: StationStore, central: Central, broker: MosquittoBroker
) -> None:
    # The station reaches the broker through a relay the test cuts: its network drops
    # while central's stand-in stays connected and subscribed, hearing what comes again.
    for i in range(3):
        store.record("t", {"i": i})
    with Relay(broker.port) as relay:
        # No resend by the timer in this test: what comes again comes from the reconnect.
        pump = start_pump(store, broker, via=f"mqtt://127.0.0.1:{relay.port}", resend_after=3600.0)
        try:
            first = central.next_batch()
            assert [e.seq for e in first.events] == [1, 2, 3]
            relay.cut()  # central never acknowledged: the batch is still unconfirmed
            wait_for(lambda: relay.accepted >= 2, what="the station to connect again", timeout=60)
            again = central.batches.get(timeout=60)  # paho's backoff is 1-10 s
            assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
            assert store.backlog() == 3
            central.ack(encode(Ack(station="b1", seq=3)))
            wait_for(lambda: store.backlog() == 0, what="the ack to empty the outbox")
        finally:
            pump.stop()


def test_status_reports_backlog_and_orderly_stop_says_offline(
    store: StationStore, central: Central, broker: MosquittoBroker
) -> None:
    store.record("t", {})
    pump = start_pump(store, broker, resend_after=30.0)
    status = central.statuses.get(timeout=20)
    while not status.online:  # the retained offline status of an earlier test
        status = central.statuses.get(timeout=20)
    assert status.backlog == 1 and status.station == "b1"
    pump.stop()
    while status.online:
        status = central.statuses.get(timeout=20)
    assert not status.online


STATION = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from edge.clock import SystemClock
    from edge.store import StationStore
    from edge.uplink import Uplink, station_session
    store = StationStore(Path(sys.argv[1]), station="b1", clock=SystemClock())
    session = station_session(site="pump", station="b1", mqtt_url=sys.argv[2])
    pump = Uplink(session=session, outbox=store, site="pump", station="b1")
    pump.start()
    pump.session.wait_connected(20)
    print("up", flush=True)
    time.sleep(600)
    """
)


def test_a_killed_station_is_marked_offline_by_its_last_will(
    tmp_path: Path, central: Central, broker: MosquittoBroker
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STATION, str(tmp_path / "k.sqlite"), broker.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        status = central.statuses.get(timeout=20)
        while not status.online:  # the retained offline status of an earlier test
            status = central.statuses.get(timeout=20)
        proc.send_signal(signal.SIGKILL)  # no orderly goodbye: only the will can tell
        proc.wait()
        while status.online:
            status = central.statuses.get(timeout=30)
        assert status.station == "b1" and not status.online
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_database_error_while_storing_orders_is_logged_once_and_sync_goes_on(
    store: StationStore,
    central: Central,
    broker: MosquittoBroker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store.record("t", {"i": 1})
    changes: list[int] = []
    session = station_session(site=SITE, station="b1", mqtt_url=broker.url)
    pump = Uplink(
        session=session,
        outbox=store,
        site=SITE,
        station="b1",
        resend_after=30.0,
        on_orders=changes.append,
    )
    order = Order(order_no="A-1", tracking_no="SF1", carrier="SF Express")
    with caplog.at_level(logging.INFO):
        pump.start()
        try:
            assert session.wait_connected(20)
            assert [e.seq for e in central.next_batch().events] == [1]
            # Another process holds the station's database: storing orders fails
            # after SQLite's busy timeout with "database is locked".
            locker = sqlite3.connect(store.path, isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            try:
                central.orders(OrdersMessage(orders=[order], cursor=1))
                wait_for(
                    lambda: any(r.levelno >= logging.ERROR for r in caplog.records),
                    what="the failure to be logged",
                )
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            # Not treated as handled: nothing stored, the cursor did not move, no
            # callback, so the status keeps asking central for these orders.
            assert store.order("A-1") is None and store.orders_cursor() == 0
            assert changes == []
            assert session.connected

            # Sync goes on: a later ack is handled...
            central.ack(encode(Ack(station="b1", seq=1)))
            wait_for(lambda: store.backlog() == 0, what="the ack to empty the outbox")
            # ...the orders sent again are stored...
            central.orders(OrdersMessage(orders=[order], cursor=1))
            wait_for(lambda: store.order("A-1") is not None, what="the orders stored")
            assert store.orders_cursor() == 1
            wait_for(lambda: changes == [1], what="the orders callback")
            # ...and new events still go out.
            store.record("t", {"i": 2})
            pump.notify()
            assert [e.seq for e in central.next_batch().events] == [2]
        finally:
            pump.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    text = errors[0].getMessage()
    assert errors[0].name == "sync.session"
    assert topics.orders(SITE, "b1") in text and "database is locked" in text
    assert "_on_orders" in text and "not handled" in text


def test_a_batch_the_broker_refuses_is_not_delivered_and_is_sent_again(
    tmp_path: Path, store: StationStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The station may publish its status but not its events (a wrong ACL).
    allowed = "".join(
        f"topic readwrite {topic}\n"
        for topic in (topics.status(SITE, "b1"), topics.ack(SITE, "b1"), topics.orders(SITE, "b1"))
    )
    broker = AclBroker(workdir=tmp_path / "acl", acl=allowed).start()
    store.record("t", {})
    store.record("t", {})
    try:
        with caplog.at_level(logging.INFO, logger="sync.session"):
            pump = start_pump(store, broker, resend_after=0.5)
            try:
                wait_for(lambda: pump.session.refused >= 2, what="the batch refused twice")
                wait_for(lambda: pump.session.delivered >= 1, what="the status delivered")
                assert store.backlog() == 2  # nothing deleted, nothing lost
            finally:
                pump.stop()
    finally:
        broker.kill()
    refusals = [r.getMessage() for r in caplog.records if "did not take" in r.getMessage()]
    assert len(refusals) == 1, refusals
    assert topics.events(SITE, "b1") in refusals[0] and "0x87" in refusals[0]


class SkewedClock:
    """The machine's clocks, the wall clock set ``behind`` seconds behind."""

    def __init__(self, behind: float) -> None:
        self.behind = behind
        self.boot_id = "boot-skewed"

    def wall(self) -> float:
        return time.time() - self.behind

    def mono(self) -> float:
        return time.monotonic()


def test_status_carries_the_stations_health_and_its_clock_skew_from_the_ack(
    tmp_path: Path, central: Central, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SkewedClock(behind=3 * 3600)
    store = StationStore(tmp_path / "h.sqlite", station="b1", clock=clock)
    store.record("t", {})
    session = station_session(
        site=SITE, station="b1", mqtt_url=broker.url, instance_id=store.instance_id
    )
    pump = Uplink(
        session=session,
        outbox=store,
        site=SITE,
        station="b1",
        clock=clock,
        data_dir=tmp_path,
        resend_after=30.0,
    )
    with caplog.at_level(logging.INFO, logger="edge.uplink"):
        pump.start()
        try:
            status = central.statuses.get(timeout=20)
            while not status.online:  # the retained offline status of an earlier test
                status = central.statuses.get(timeout=20)
            assert status.instance_id == store.instance_id and status.boot_id == "boot-skewed"
            assert status.backlog == 1 and status.orders_held == 0
            assert status.backlog_oldest_at == store.pending()[0].at_wall
            assert status.disk_free_bytes is not None and status.disk_free_bytes > 0
            assert status.broker_state == f"connected to the broker at {broker.url}"
            assert status.clock_skew_s is None  # central has not said its time yet
            assert status.started_at is not None and status.at_mono is not None

            central.ack(encode(Ack(station="b1", seq=1, at=time.time())))
            wait_for(lambda: pump.clock_skew_s is not None, what="the skew from the ack")
            assert pump.clock_skew_s == pytest.approx(-3 * 3600, abs=5)
            wait_for(lambda: store.backlog() == 0, what="the ack to be applied")
            skewed = central.statuses.get(timeout=20)
            while skewed.clock_skew_s is None:
                skewed = central.statuses.get(timeout=20)
            assert skewed.clock_skew_s == pytest.approx(-3 * 3600, abs=5)
            assert store.uplink_state()["clock_skew_s"] == pytest.approx(-3 * 3600, abs=5)
        finally:
            pump.stop()
            store.close()
    assert "this bench's clock is 3 h 0 min behind central's" in caplog.text


def test_acks_for_another_bench_with_this_name_are_not_ours(
    store: StationStore, central: Central, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        store.record("t", {"i": i})
    with caplog.at_level(logging.INFO, logger="edge.uplink"):
        pump = start_pump(store, broker, resend_after=30.0)
        try:
            central.next_batch()
            # Central acks the bench that owns the name: this one must keep its events.
            central.ack(encode(Ack(station="b1", seq=3, instance_id="the-other-bench")))
            refused = "another bench uses the name b1: central keeps this bench's records here"
            central.ack(
                encode(
                    Ack(station="b1", seq=0, instance_id=store.instance_id, name_conflict=refused)
                )
            )
            wait_for(lambda: pump.name_conflict == refused, what="the conflict to be noted")
            assert store.backlog() == 3
            status = central.statuses.get(timeout=20)
            while status.name_conflict is None:
                status = central.statuses.get(timeout=20)
            assert status.name_conflict == refused
            # Once central no longer reports it, the bench forgets it.
            central.ack(encode(Ack(station="b1", seq=3, instance_id=store.instance_id)))
            wait_for(lambda: pump.name_conflict is None, what="the conflict to end")
            wait_for(lambda: store.backlog() == 0, what="the ack to be applied")
        finally:
            pump.stop()
    said = [r.getMessage() for r in caplog.records if "the name b1" in r.getMessage()]
    assert said == [refused, "central no longer reports another bench using the name b1"]


def test_a_big_download_is_one_line_and_an_order_it_cannot_read_holds_nothing_back(
    store: StationStore, central: Central, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edge.uplink"):
        pump = start_pump(store, broker, resend_after=30.0)
        try:
            # An ack that arrives proves the subscriptions are in place (the first
            # may come before them: a fresh session has nothing queued).
            for _ in range(40):
                central.ack(encode(Ack(station="b1", seq=0, at=time.time())))
                time.sleep(0.25)
                if pump.clock_skew_s is not None:
                    break
            assert pump.clock_skew_s is not None, "the station never heard central"
            total = 0
            for chunk in range(40):
                orders = [
                    Order(order_no=f"BIG-{chunk}-{i}", tracking_no=f"SF{chunk}{i}", carrier="SF")
                    for i in range(50)
                ]
                total += len(orders)
                central.orders(OrdersMessage(orders=orders, cursor=total))
            wait_for(lambda: store.orders_cursor() == 2000, what="2,000 orders stored")
            wait_for(lambda: "received 2,000 orders" in caplog.text, what="the summary line")

            # A message whose middle order has a status this station does not know.
            raw = {
                "v": 1,
                "cursor": 2003,
                "orders": [
                    {"order_no": "NEW-1", "tracking_no": "SF1", "carrier": "SF"},
                    {"order_no": "NEW-2", "status": "presale_waiting", "carrier": "SF"},
                    {"order_no": "NEW-3", "tracking_no": "SF3", "carrier": "SF"},
                ],
            }
            topic = topics.orders(SITE, "b1")
            central.client.publish(topic, json.dumps(raw), qos=1).wait_for_publish(5)
            wait_for(lambda: store.orders_cursor() == 2003, what="the cursor to move on")
            assert store.order("NEW-1") is not None and store.order("NEW-3") is not None
            assert store.order("NEW-2") is None
            wait_for(lambda: "received 3 orders" in caplog.text, what="the second summary")
        finally:
            pump.stop()
    lines = [r.getMessage() for r in caplog.records if "order" in r.getMessage()]
    assert lines[0] == (
        "received 2,000 orders from central (2,000 new or changed) in "
        f"{lines[0].split(' in ')[1].split(';')[0]}; cursor 2000, 2,000 held"
    )
    assert not any(line.startswith("received 50 orders") for line in lines)
    skipped = [line for line in lines if line.startswith("skipped")]
    assert len(skipped) == 1 and "NEW-2: status:" in skipped[0]
    assert lines[-1] == (
        "received 3 orders from central (2 new or changed, 1 skipped); cursor 2003, 2,002 held"
    )


def test_a_broker_without_central_for_this_site_is_said_once(
    store: StationStore, central: Central, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker answers, but no central serves site "pump" (a wrong site, or central
    # down): the station says so once, and again when central answers.
    store.record("t", {})
    with caplog.at_level(logging.INFO, logger="edge.uplink"):
        pump = start_pump(store, broker, resend_after=0.5, central_silent_after=1.0)
        try:
            wait_for(lambda: "no word from central" in pump.broker_state, what="the silence")
            for _ in range(3):
                central.next_batch()  # resent, unanswered
            central.ack(encode(Ack(station="b1", seq=1, at=time.time())))
            wait_for(lambda: "central answers again" in pump.broker_state, what="the answer")
        finally:
            pump.stop()
    said = [r.getMessage() for r in caplog.records if "central" in r.getMessage()]
    silent = [s for s in said if "no word from central" in s]
    assert silent == [
        f"connected to the broker at {broker.url}, but no word from central for 1 s: is "
        "central running, and does it serve site 'pump'?; holding 1 record for central, "
        f"{silent[0].rsplit(', ', 1)[1]}"
    ]
    assert any(s.endswith("central answers again; no records waiting to be sent") for s in said)


def test_a_long_printer_text_is_cut_rather_than_keeping_the_status_back(
    store: StationStore, broker: MosquittoBroker
) -> None:
    session = station_session(site=SITE, station="b1", mqtt_url=broker.url)
    long_words = "cover open; " * 40
    pump = Uplink(
        session=session,
        outbox=store,
        site=SITE,
        station="b1",
        health=lambda: {"printer": "fault", "printer_detail": long_words},
    )
    status = pump.status()
    assert status.printer == "fault"
    assert len(status.printer_detail) == 255 and status.printer_detail.endswith("…")
    assert long_words.startswith(status.printer_detail[:-1])


def test_batches_stay_under_their_byte_limit_and_in_seq_order(
    store: StationStore, central: Central, broker: MosquittoBroker
) -> None:
    for i in range(12):
        store.record("note", {"i": i, "text": "x" * 1000})
    pump = start_pump(store, broker, resend_after=30.0, max_batch_bytes=4000)
    try:
        seen: list[int] = []
        while len(seen) < 12:
            got = central.next_batch()
            assert len(encode(got)) <= 4000
            assert [e.seq for e in got.events] == list(
                range(len(seen) + 1, len(seen) + 1 + len(got.events))
            )
            seen += [e.seq for e in got.events]
            central.ack(encode(Ack(station="b1", seq=seen[-1])))
        assert seen == list(range(1, 13))
        wait_for(lambda: store.backlog() == 0, what="the outbox to drain")
    finally:
        pump.stop()


def _shipment(i: int) -> ShipmentShipped:
    return ShipmentShipped(
        order_no=f"W{i}",
        tracking_no=f"T{i}",
        carrier="SF Express",
        parcel_no=1,
        parcel_count=1,
        operator="op",
        print_job_id=f"W{i}-r1-waybill-1",
        print_verified=True,
    )


def test_a_window_of_batches_is_sent_before_the_first_ack(
    store: StationStore, central: Central, broker: MosquittoBroker
) -> None:
    for i in range(100):
        store.record("t", {"i": i})
    pump = start_pump(store, broker, resend_after=30.0, batch_size=10, window=4)
    try:
        first = [central.next_batch() for _ in range(4)]
        assert [[e.seq for e in b.events] for b in first] == [
            list(range(1 + 10 * k, 11 + 10 * k)) for k in range(4)
        ]
        # The window is full: nothing more until central answers.
        with pytest.raises(queue.Empty):
            central.batches.get(timeout=1.0)
        assert store.backlog() == 100
        central.ack(encode(Ack(station="b1", seq=20)))
        more = [central.next_batch() for _ in range(2)]
        assert [[e.seq for e in b.events] for b in more] == [
            list(range(41, 51)),
            list(range(51, 61)),
        ]
        with pytest.raises(queue.Empty):
            central.batches.get(timeout=1.0)
        assert store.backlog() == 80
    finally:
        pump.stop()


def test_a_lost_batch_in_the_window_is_resent_and_central_applies_each_event_once_in_order(
    store: StationStore, broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Central's real ingest behind a paho client that drops the second batch it sees:
    the batches after it are stored but not applied (a gap), the ack stays below the
    gap, and the resend from the oldest row fills it — each shipment once, in seq order."""
    engine = open_db(f"sqlite:///{tmp_path / 'central.db'}")
    for i in range(60):
        store.record(_shipment(i))
    seen: list[list[int]] = []
    acks: list[int] = []
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        batch = decode(EventBatch, msg.payload)
        seen.append([e.seq for e in batch.events])
        if len(seen) == 2:
            return  # lost on the way
        acked = ingest_batch(engine, batch, site=SITE).acked
        acks.append(acked)
        c.publish(topics.ack(SITE, "b1"), encode(Ack(station="b1", seq=acked)), qos=1)

    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe(topics.events(SITE, "b1"), qos=1)
    client.loop_start()
    pump = start_pump(store, broker, resend_after=1.0, batch_size=10, window=4)
    try:
        wait_for(lambda: store.backlog() == 0, what="the outbox to drain", timeout=30)
    finally:
        pump.stop()
        client.loop_stop()
        client.disconnect()
    assert seen[:4] == [list(range(1 + 10 * k, 11 + 10 * k)) for k in range(4)]
    assert 11 in [b[0] for b in seen[4:]], "the lost batch was sent again"
    assert acks == sorted(acks), "acks only move forward"
    with engine.connect() as conn:
        held = conn.execute(sa.text("SELECT seq FROM events ORDER BY seq")).scalars().all()
        applied = (
            conn.execute(
                sa.text(
                    "SELECT e.seq FROM shipments s JOIN events e ON e.event_id = s.event_id"
                    " ORDER BY s.id"
                )
            )
            .scalars()
            .all()
        )
        acked = conn.execute(sa.text("SELECT acked_seq FROM stations")).scalar_one()
    engine.dispose()
    assert held == list(range(1, 61))
    assert applied == list(range(1, 61)), "applied once each, in seq order"
    assert acked == 60
