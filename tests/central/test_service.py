"""CentralService over a real Mosquitto: acks after commit, dedup, garbage, orders downlink."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import events, shipments, stations
from central.orders import import_orders
from central.service import CentralService
from packline.devbroker import MosquittoBroker
from sync.messages import Ack, OrdersMessage
from sync.order import Order, OrderStatus
from tests.support.central import FakeStation, event
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt


@pytest.fixture
def site() -> str:
    return f"site-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def service(sqlite_engine: Engine, broker: MosquittoBroker, site: str) -> Iterator[CentralService]:
    svc = CentralService(engine=sqlite_engine, mqtt_url=broker.url, site=site, poll_interval=0.2)
    svc.start()
    try:
        assert svc.wait_connected(20)
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def station(service: CentralService, broker: MosquittoBroker, site: str) -> Iterator[FakeStation]:
    st = FakeStation(url=broker.url, site=site, name="bench-01")
    try:
        yield st
    finally:
        st.close()


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        n_events = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        n_ships = conn.execute(sa.select(sa.func.count()).select_from(shipments)).scalar_one()
    return n_events, n_ships


def test_batch_is_acked_after_commit_and_resend_counts_once(
    service: CentralService, station: FakeStation
) -> None:
    evs = [event("bench-01", seq) for seq in (1, 2, 3)]
    station.send(*evs)
    ack = station.next("ack", Ack)
    assert (ack.station, ack.seq) == ("bench-01", 3)
    # The ack is only sent after the commit: the rows are there when it arrives.
    assert counts(service.engine) == (3, 3)

    station.send(*evs)  # the station did not see the ack and resends
    assert station.next("ack", Ack).seq == 3
    assert counts(service.engine) == (3, 3)


def test_gap_is_held_then_filled(service: CentralService, station: FakeStation) -> None:
    one, two, three = (event("bench-01", seq) for seq in (1, 2, 3))
    station.send(two, three)
    assert station.next("ack", Ack).seq == 0
    assert counts(service.engine) == (2, 0)
    station.send(one)
    assert station.next("ack", Ack).seq == 3
    assert counts(service.engine) == (3, 3)


def test_garbled_messages_are_logged_and_dropped(
    service: CentralService, station: FakeStation, caplog: pytest.LogCaptureFixture
) -> None:
    good = event("bench-01", 1)
    with caplog.at_level(logging.WARNING, logger="central.service"):
        station.publish("events", b"\xff not json")
        station.publish("events", json.dumps({"station": "bench-01", "events": "x"}).encode())
        other = {"station": "bench-99", "events": [json.loads(good.model_dump_json())]}
        station.publish("events", json.dumps(other).encode())  # topic/station mismatch
        station.publish("status", b'{"online": "maybe"}')
        station.send(good)
        assert station.next("ack", Ack).seq == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4, [r.getMessage() for r in warnings]
    assert all("\n" not in r.getMessage() for r in warnings)
    # Statuses and event batches are handled on different threads: their warnings may
    # come in either order.
    assert sum("bench-99" in r.getMessage() for r in warnings) == 1
    assert counts(service.engine) == (1, 1)


def test_status_updates_the_station_row(service: CentralService, station: FakeStation) -> None:
    station.status(printer="no_media", printer_detail="62 mm roll empty", labels_left=0, backlog=5)

    def row() -> sa.Row[tuple[bool, str, int]] | None:
        with service.engine.connect() as conn:
            return conn.execute(
                sa.select(stations.c.online, stations.c.printer, stations.c.backlog)
            ).first()

    assert wait_for(row, what="the station row") == (True, "no_media", 5)
    station.status(online=False)
    wait_for(lambda: (r := row()) is not None and not r.online, what="the station offline")
    assert row() == (False, "no_media", 5)


def test_a_status_the_database_refuses_keeps_no_other_station_out(
    service: CentralService, broker: MosquittoBroker, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Statuses are recorded a burst at a time; one the database refuses (here by a
    trigger) is found and named, and the rest of its burst is kept."""
    with service.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_bench_bad BEFORE INSERT ON stations "
            "WHEN NEW.station = 'bench-bad' BEGIN SELECT RAISE(ABORT, 'refused here'); END"
        )
    names = [f"bench-{n:02d}" for n in range(10)]
    benches = [FakeStation(url=broker.url, site=site, name=n) for n in [*names, "bench-bad"]]
    try:
        with caplog.at_level(logging.ERROR, logger="central.service"):
            for st in benches:
                st.status(labels_left=42)

            def stored() -> set[str]:
                with service.engine.connect() as conn:
                    return set(conn.execute(sa.select(stations.c.station)).scalars())

            wait_for(lambda: stored() == set(names), what="every good station's row")
            wait_for(
                lambda: any("bench-bad" in r.getMessage() for r in caplog.records),
                what="the refused status in the log",
            )
    finally:
        for st in benches:
            st.close()
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert line == "could not record the status of bench-bad: (sqlite3.IntegrityError) refused here"
    assert service.health_probes()["status"]() is None  # the status thread goes on


def orders(*numbers: str) -> list[Order]:
    return [Order(order_no=no, tracking_no=f"T-{no}", carrier="SF Express") for no in numbers]


def test_new_orders_are_pushed_to_known_stations(
    service: CentralService, station: FakeStation
) -> None:
    station.status(cursor=0)
    wait_for(lambda: service._pushed.get("bench-01") == 0, what="central to know the station")
    import_orders(service.engine, orders("A", "B"))  # as another process would
    message = station.next("orders", OrdersMessage)
    assert [o.order_no for o in message.orders] == ["A", "B"]
    assert [o.revision for o in message.orders] == [1, 1]
    assert message.cursor == 2

    changed = orders("A")[0].model_copy(update={"status": OrderStatus.CANCELLED})
    import_orders(service.engine, [changed])
    message = station.next("orders", OrdersMessage)
    assert [(o.order_no, o.revision, o.status) for o in message.orders] == [("A", 2, "cancelled")]
    assert message.cursor == 3


def test_station_behind_gets_missing_orders_in_chunks(
    service: CentralService, broker: MosquittoBroker, site: str
) -> None:
    service.chunk_size = 2
    import_orders(service.engine, orders("A", "B", "C", "D", "E"))
    late = FakeStation(url=broker.url, site=site, name="bench-02")
    try:
        late.status(cursor=1)  # it already holds order_seq 1
        got = [late.next("orders", OrdersMessage) for _ in range(2)]
        assert [[o.order_no for o in m.orders] for m in got] == [["B", "C"], ["D", "E"]]
        assert [m.cursor for m in got] == [3, 5]
        # it reports it is up to date: nothing more is sent
        late.status(cursor=5)
        assert late.nothing_on("orders", within=1.0)
    finally:
        late.close()


def test_status_of_a_station_that_lost_orders_is_answered_again(
    service: CentralService, station: FakeStation
) -> None:
    import_orders(service.engine, orders("A"))
    station.status(cursor=0)
    assert station.next("orders", OrdersMessage).cursor == 1
    # it reconnects (offline, then online) without having stored them
    station.status(online=False)
    station.status(cursor=0)
    assert [o.order_no for o in station.next("orders", OrdersMessage).orders] == ["A"]


def test_an_offline_status_pushes_nothing(service: CentralService, station: FakeStation) -> None:
    import_orders(service.engine, orders("A", "B"))
    station.status(cursor=0)
    assert station.next("orders", OrdersMessage).cursor == 2
    # The last will carries cursor 0; the station is gone, so nothing is owed now.
    station.status(online=False)
    assert station.nothing_on("orders", within=1.5)


def test_broker_restart_is_survived(tmp_path: Path, own_broker: MosquittoBroker) -> None:
    from central.db import open_db

    engine = open_db(f"sqlite:///{tmp_path / 'c.db'}")
    svc = CentralService(engine=engine, mqtt_url=own_broker.url, site="restart", poll_interval=0.2)
    svc.start()
    try:
        assert svc.wait_connected(20)
        own_broker.kill()
        wait_for(lambda: not svc.session.connected, what="central to notice")
        own_broker.start()
        assert svc.wait_connected(30)
        st = FakeStation(url=own_broker.url, site="restart", name="b1")
        try:
            # The broker came back empty: central subscribes again just after it is
            # accepted, and a batch sent in that moment finds no subscriber. A station
            # sends an unacknowledged batch again; so does this one.
            sent, ack = event("b1", 1), None
            for _ in range(10):
                st.send(sent)
                with contextlib.suppress(AssertionError):
                    ack = st.next("ack", Ack, timeout=3.0)
                    break
            assert ack is not None and ack.seq == 1
        finally:
            st.close()
    finally:
        svc.stop()
        engine.dispose()
