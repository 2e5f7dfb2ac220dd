"""The station's outbox pump over a real Mosquitto.

The central side is played by the test with a plain paho client, so each rule of the
pump is seen on the wire: batches in seq order, rows kept until the end-to-end ack,
resend when no ack comes, garbled or misaddressed acks ignored, the last will.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.clock import SystemClock
from edge.store import StationStore
from packline.devbroker import MosquittoBroker
from sync import topics
from sync.messages import Ack, EventBatch, StationStatus, decode, encode
from sync.pump import OutboxPump
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


def start_pump(store: StationStore, broker: MosquittoBroker, **kw: float) -> OutboxPump:
    pump = OutboxPump(outbox=store, site=SITE, station="b1", mqtt_url=broker.url, **kw)  # type: ignore[arg-type]
    pump.start()
    assert pump.connected.wait(20)
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
    from sync.pump import OutboxPump
    store = StationStore(Path(sys.argv[1]), station="b1", clock=SystemClock())
    pump = OutboxPump(outbox=store, site="pump", station="b1", mqtt_url=sys.argv[2])
    pump.start()
    pump.connected.wait(20)
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
