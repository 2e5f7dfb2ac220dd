"""Fault injection across real processes (issue 10): several central workers on one
PostgreSQL database, brokers killed with and without their saved state, central killed
mid-batch, long backlogs, duplicated and reordered batches, a broker that limits
in-flight messages, publishes the broker refuses and events too big for central.

Each test ends with :func:`tests.support.fleet.check_delivered`: central's distinct
events are the events the stations recorded, none stored or projected twice, each
station's events projected in seq order, every outbox empty. Everything runs on free
ports with its own Mosquitto (never the machine's); each process is ended by its pid.
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from edge.clock import SystemClock
from edge.store import StationStore
from packline.devbroker import MosquittoBroker
from packline.samples import sample_orders
from sync import topics
from sync.messages import EventBatch, encode
from sync.mqtt import make_client
from tests.support.central import postgres_reachable, postgres_schema
from tests.support.cli import run_packline
from tests.support.fleet import (
    AckWatcher,
    TunedBroker,
    Worker,
    central_rows,
    check_delivered,
    seed,
)
from tests.support.processes import Station, query
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SITE = "faults"

needs_postgres = [
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL is not running"),
]


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TunedBroker]:
    b = TunedBroker(workdir=tmp_path / "mosquitto", settings={"autosave_interval": "1"})
    b.start()
    try:
        yield b
    finally:
        b.kill()


def _stations(
    tmp_path: Path, broker: MosquittoBroker, names: list[str], **settings: object
) -> list[Station]:
    return [
        Station(workdir=tmp_path, name=n, mqtt_url=broker.url, site=SITE, settings=dict(settings))
        for n in names
    ]


class Recorded(Protocol):
    """What check_delivered reads of a station: its name and its store."""

    @property
    def name(self) -> str: ...
    @property
    def db(self) -> Path: ...


def _drained(stations: list[Station]) -> bool:
    return all(s.backlog() == 0 for s in stations)


def _assert_delivered(db_url: str, stations: Sequence[Recorded], *, some: bool = True) -> None:
    result = check_delivered(db_url, [(s.name, s.db) for s in stations])
    assert result.problems == [], result
    assert result.recorded == result.stored
    assert result.recorded > 0 or not some


@pytest.mark.postgres
def test_two_workers_and_a_broker_kill_store_every_event_once_with_monotonic_acks(
    tmp_path: Path, broker: TunedBroker, pg_url: str
) -> None:
    workers = [
        Worker(workdir=tmp_path, name="w1", db_url=pg_url, mqtt_url=broker.url, site=SITE),
        Worker(
            workdir=tmp_path, name="w2", db_url=pg_url, mqtt_url=broker.url, site=SITE, web=False
        ),
    ]
    for w in workers:
        w.start()
    watcher = AckWatcher(url=broker.url, site=SITE)
    stations = _stations(tmp_path, broker, ["s1", "s2", "s3"])
    try:
        for s in stations:
            seed(s.db, station=s.name, count=400)
        for s in stations:
            s.start()
        wait_for(lambda: watcher.count() >= 3, what="the first acks")
        broker.kill()  # in the middle of the stream
        for s in stations:
            seed(s.db, station=s.name, count=100, kind="login")
        broker.start()
        watcher.broker_restarted()
        wait_for(lambda: _drained(stations), what="every outbox to drain", timeout=180)
        assert workers[0].healthz() == 200
        _assert_delivered(pg_url, stations)
        watcher.dump(tmp_path / "acks.txt")
        assert watcher.backwards() == [], [(a.station, a.seq, a.at) for a in watcher.acks]
        assert sum(w.leads() for w in workers) == 1
    finally:
        watcher.close()
        for s in stations:
            s.close()
        for w in workers:
            w.stop()


@pytest.mark.postgres
def test_one_of_two_workers_killed_then_the_leader_the_other_takes_over(
    tmp_path: Path, broker: TunedBroker, pg_url: str
) -> None:
    w1 = Worker(workdir=tmp_path, name="w1", db_url=pg_url, mqtt_url=broker.url, site=SITE)
    w2 = Worker(
        workdir=tmp_path, name="w2", db_url=pg_url, mqtt_url=broker.url, site=SITE, web=False
    )
    w1.start()
    w2.start()
    watcher = AckWatcher(url=broker.url, site=SITE)
    stations = _stations(tmp_path, broker, ["k1", "k2"])
    try:
        wait_for(w1.leads, what="the first worker to lead")
        assert not w2.leads()
        for s in stations:
            seed(s.db, station=s.name, count=400)
            s.start()
        wait_for(lambda: watcher.count() >= 2, what="the first acks")
        w2.kill()  # one worker gone mid-stream: its share of batches is resent
        for s in stations:
            seed(s.db, station=s.name, count=100)
        wait_for(lambda: _drained(stations), what="the outboxes to drain", timeout=180)
        w2.start()
        w1.kill()  # the leader gone: the other takes its duties within seconds
        wait_for(w2.leads, what="the second worker to take the lead", timeout=30)
        orders = tmp_path / "orders.json"
        orders.write_text(json.dumps(sample_orders(5, prefix="LF"), ensure_ascii=False))
        done = run_packline("central", "import-orders", str(orders), "--db-url", pg_url)
        assert done.returncode == 0, done.stderr
        for s in stations:
            wait_for(lambda s=s: s.orders() == 5, what=f"orders at {s.name} from the new leader")
            seed(s.db, station=s.name, count=50, kind="login")
        wait_for(lambda: _drained(stations), what="the outboxes to drain", timeout=120)
        _assert_delivered(pg_url, stations)
        watcher.dump(tmp_path / "acks.txt")
        assert watcher.backwards() == []
    finally:
        watcher.close()
        for s in stations:
            s.close()
        for w in (w1, w2):
            w.stop()


def _sqlite_central(tmp_path: Path, broker: MosquittoBroker, **env: str) -> Worker:
    return Worker(
        workdir=tmp_path,
        name="c1",
        db_url=f"sqlite:///{tmp_path / 'central.db'}",
        mqtt_url=broker.url,
        site=SITE,
        env=env,
    )


def _mark(central: Worker, station: str) -> int:
    rows = central_rows(
        central.db_url, f"SELECT acked_seq FROM stations WHERE station = '{station}'"
    )
    return int(rows[0][0]) if rows else 0


def test_central_killed_mid_batch_again_and_again(tmp_path: Path, broker: TunedBroker) -> None:
    central = _sqlite_central(tmp_path, broker).start()
    stations = _stations(tmp_path, broker, ["m1", "m2"])
    try:
        for s in stations:
            seed(s.db, station=s.name, count=1200)
            s.start()
        for kill in range(3):
            # More to send each time (central may have stored all there was), and once it
            # has committed some of it, it is in the middle of the next batches.
            station = stations[kill % 2]
            before = _mark(central, station.name)
            seed(station.db, station=station.name, count=300)
            wait_for(
                lambda before=before, name=station.name: _mark(central, name) > before,
                what="central to store a batch",
            )
            central.kill()
            central.start()
        wait_for(lambda: _drained(stations), what="the outboxes to drain", timeout=180)
        _assert_delivered(central.db_url, stations)
    finally:
        for s in stations:
            s.close()
        central.stop()


@pytest.mark.parametrize("state", ["kept", "lost"])
def test_broker_killed_mid_stream_restarts_with_or_without_its_saved_state(
    tmp_path: Path, broker: TunedBroker, state: str
) -> None:
    central = _sqlite_central(tmp_path, broker).start()
    stations = _stations(tmp_path, broker, ["b1", "b2"])
    try:
        for s in stations:
            seed(s.db, station=s.name, count=500)
            s.start()
        wait_for(lambda: _mark(central, "b1") > 0, what="the first batch stored")
        # It saves its sessions each second: the first batch can be stored before the
        # first save, so wait for a save rather than assume one.
        wait_for(broker.state_file.exists, what="the broker to save its state", timeout=30)
        broker.kill()
        assert broker.state_file.exists()
        if state == "lost":
            broker.forget()
        for s in stations:
            seed(s.db, station=s.name, count=50, kind="login")
        broker.start()
        wait_for(lambda: _drained(stations), what="the outboxes to drain", timeout=180)
        _assert_delivered(central.db_url, stations)
    finally:
        for s in stations:
            s.close()
        central.stop()


def test_an_outage_longer_than_the_brokers_autosave_interval(
    tmp_path: Path, broker: TunedBroker
) -> None:
    # Central away: the broker queues the batches (and every resend) for central's
    # session and saves them each second; then it crashes and comes back from that file.
    central = _sqlite_central(tmp_path, broker).start()
    stations = _stations(tmp_path, broker, ["o1", "o2"])
    try:
        for s in stations:
            s.start()
        wait_for(lambda: _mark(central, "o1") == 0 and central.alive(), what="central")
        central.kill()
        for s in stations:
            seed(s.db, station=s.name, count=300)
        saved = broker.state_file.stat().st_mtime if broker.state_file.exists() else 0.0
        wait_for(
            lambda: broker.state_file.exists() and broker.state_file.stat().st_mtime > saved + 2,
            what="the broker to save its state twice more",
            timeout=30,
        )
        broker.kill()
        broker.start()
        central.start()
        wait_for(lambda: _drained(stations), what="the outboxes to drain", timeout=180)
        _assert_delivered(central.db_url, stations)
    finally:
        for s in stations:
            s.close()
        central.stop()


def test_a_10000_event_backlog_from_three_stations_drains_in_order(
    tmp_path: Path, broker: TunedBroker
) -> None:
    central = _sqlite_central(tmp_path, broker).start()
    stations = _stations(tmp_path, broker, ["d1", "d2", "d3"])
    try:
        for s in stations:
            # Shipments spread through the backlog, so the order they were projected
            # in shows whether seq order was kept.
            for _ in range(10):
                seed(s.db, station=s.name, count=33)
                seed(s.db, station=s.name, count=300, kind="login")
        assert sum(s.backlog() for s in stations) >= 9990
        for s in stations:
            s.start()
        wait_for(lambda: _drained(stations), what="10,000 events to drain", timeout=280)
        _assert_delivered(central.db_url, stations)
    finally:
        for s in stations:
            s.close()
        central.stop()


@pytest.mark.postgres
def test_batches_duplicated_and_reordered_on_purpose_count_once_in_order(
    tmp_path: Path, broker: TunedBroker, pg_url: str
) -> None:
    workers = [
        Worker(workdir=tmp_path, name=f"w{i}", db_url=pg_url, mqtt_url=broker.url, site=SITE)
        for i in (1, 2)
    ]
    for w in workers:
        w.start()
    watcher = AckWatcher(url=broker.url, site=SITE)
    db = tmp_path / "r1" / "r1.sqlite"
    seed(db, station="r1", count=300)
    seed(db, station="r1", count=300, kind="login")
    store = StationStore(db, station="r1", clock=SystemClock())
    publisher = make_client(client_id="test-r1-publisher", url=broker.url, session_expiry=0)
    connected = threading.Event()
    publisher.on_connect = lambda *_a: connected.set()
    publisher.loop_start()
    try:
        assert connected.wait(20)
        pending = store.pending(limit=1000)
        assert len(pending) == 600
        # Batches of 40, overlapping by 10, each sent twice, in a shuffled order: the
        # two workers get them interleaved, the later ones first as often as not.
        batches = [pending[i : i + 40] for i in range(0, 600, 30)]
        sends = batches + batches[::3]
        random.Random(7).shuffle(sends)
        for events in sends:
            body = encode(EventBatch(station="r1", events=events, instance_id=store.instance_id))
            publisher.publish(topics.events(SITE, "r1"), body, qos=1).wait_for_publish(10)

        def acked() -> int:
            mine = [a.seq for a in watcher.acks if a.station == "r1"]
            return max(mine, default=0)

        wait_for(lambda: acked() == 600, what="central to ack everything", timeout=120)
        assert store.acknowledge(acked()) == 600  # what the station does with the ack
        _assert_delivered(pg_url, [_Recorded("r1", db)])
        watcher.dump(tmp_path / "acks.txt")
        assert watcher.backwards() == []
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        store.close()
        watcher.close()
        for w in workers:
            w.stop()


@dataclasses.dataclass
class _Recorded:
    """A station's store without its agent."""

    name: str
    db: Path


def test_a_station_offline_during_1500_order_changes_catches_up_by_cursor(
    tmp_path: Path,
) -> None:
    # The broker queues at most 5 messages for a station away: far fewer than the
    # pushes the changes make, so the station must ask by its cursor.
    broker = TunedBroker(
        workdir=tmp_path / "mosquitto",
        settings={"autosave_interval": "1", "max_queued_messages": "5"},
    ).start()
    central = _sqlite_central(tmp_path, broker).start()
    (station,) = _stations(tmp_path, broker, ["c1"])
    orders = sample_orders(500, prefix="OC")
    try:
        path = tmp_path / "orders.json"
        path.write_text(json.dumps(orders, ensure_ascii=False))
        assert (
            run_packline("central", "import-orders", path, "--db-url", central.db_url).returncode
            == 0
        )
        station.start()
        wait_for(lambda: station.orders() == 500, what="the orders at the station")
        station.stop()
        for change in range(1, 4):  # 3 × 500 = 1,500 changes while it is away
            for order in orders:
                order["note"] = f"change {change}"
            path.write_text(json.dumps(orders, ensure_ascii=False))
            done = run_packline("central", "import-orders", path, "--db-url", central.db_url)
            assert done.returncode == 0, done.stderr
        newest = dict(central_rows(central.db_url, "SELECT order_no, revision FROM orders"))
        assert set(newest.values()) == {4}
        station.start()

        def held() -> dict[str, int]:
            return dict(query(station.db, "SELECT order_no, revision FROM orders"))

        wait_for(lambda: held() == newest, what="the newest revision of each order", timeout=120)
        notes = {json.loads(r[0]).get("note") for r in query(station.db, "SELECT data FROM orders")}
        assert notes == {"change 3"}
        _assert_delivered(central.db_url, [station], some=False)
    finally:
        station.close()
        central.stop()
        broker.kill()


def test_max_inflight_5_and_a_burst_of_1000_events_delete_nothing_before_the_ack(
    tmp_path: Path,
) -> None:
    broker = TunedBroker(
        workdir=tmp_path / "mosquitto",
        settings={"autosave_interval": "1", "max_inflight_messages": "5"},
    ).start()
    central = _sqlite_central(tmp_path, broker).start()
    (station,) = _stations(tmp_path, broker, ["q1"])
    try:
        station.start()
        wait_for(lambda: _mark(central, "q1") >= 0 and station.backlog() == 0, what="idle")
        recorded = set(seed(station.db, station="q1", count=1000))  # one burst
        checks = 0
        while station.backlog():
            # What the station deleted must be at central already: read the station
            # first, central second (central only ever gains).
            events = {r[0]: r[1] for r in query(station.db, "SELECT seq, event_id FROM events")}
            kept = {r[0] for r in query(station.db, "SELECT seq FROM outbox")}
            gone = {events[seq] for seq in events if seq not in kept} & recorded
            at_central = {r[0] for r in central_rows(central.db_url, "SELECT event_id FROM events")}
            assert gone <= at_central
            checks += 1
        assert checks > 1
        text = station.log.read_text(errors="replace")
        assert "0x97" not in text and "Quota exceeded" not in text
        _assert_delivered(central.db_url, [station])
    finally:
        station.close()
        central.stop()
        broker.kill()


def test_an_acl_denied_publish_and_an_oversize_event_stay_in_the_outbox_and_raise_alerts(
    tmp_path: Path,
) -> None:
    acl = tmp_path / "acl"
    denied = f"topic deny {topics.events(SITE, 'x-denied')}\n"
    acl.write_text(denied + "topic readwrite packline/#\n")
    broker = TunedBroker(
        workdir=tmp_path / "mosquitto",
        settings={"autosave_interval": "1", "acl_file": str(acl)},
    ).start()
    central = _sqlite_central(tmp_path, broker, PACKLINE_BACKLOG_ALERT_AFTER="2").start()
    stations = _stations(tmp_path, broker, ["x-denied", "x-big", "x-fine"])
    held, big, fine = stations
    try:
        seed(held.db, station=held.name, count=5)
        store = StationStore(big.db, station=big.name, clock=SystemClock())
        store.record("test.bulky", {"blob": "x" * 1_200_000})  # more than 1 MiB
        store.close()
        seed(big.db, station=big.name, count=3)
        seed(fine.db, station=fine.name, count=200)
        for s in stations:
            s.start()
        wait_for(lambda: fine.backlog() == 0, what="the other station's events to go through")

        def alerted(name: str) -> bool:
            rows = central_rows(central.db_url, "SELECT message FROM alerts")
            return any(f"station {name} is online but has not delivered" in r[0] for r in rows)

        for s, left in ((held, 5), (big, 4)):
            wait_for(lambda s=s: alerted(s.name), what=f"the backlog alert of {s.name}")
            # Kept in the outbox (with what the agent recorded itself at start), and
            # shown in the station's status at central.
            assert s.backlog() >= left
            backlog = central_rows(
                central.db_url, f"SELECT backlog FROM stations WHERE station = '{s.name}'"
            )
            assert backlog[0][0] >= left
        assert "Not authorized (0x87)" in held.log.read_text(errors="replace")
        letters = central_rows(central.db_url, "SELECT station, reason FROM dead_letters")
        assert (big.name, "oversized") in letters
        seed(fine.db, station=fine.name, count=20)
        wait_for(lambda: fine.backlog() == 0, what="the other station, still not blocked")

        # Put right (the ACL, central's limit): everything held goes through, once.
        acl.write_text("topic readwrite packline/#\n")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        central.stop()
        central.env["PACKLINE_MAX_MESSAGE_BYTES"] = str(4 * 1024 * 1024)
        central.start()
        wait_for(lambda: _drained(stations), what="the outboxes to drain", timeout=120)
        _assert_delivered(central.db_url, stations)
    finally:
        for s in stations:
            s.close()
        central.stop()
        broker.kill()
