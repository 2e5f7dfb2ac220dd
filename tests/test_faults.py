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

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.central import postgres_reachable, postgres_schema
from tests.support.fleet import AckWatcher, TunedBroker, Worker, check_delivered, seed
from tests.support.processes import Station
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
    tmp_path: Path, broker: TunedBroker, names: list[str], **settings: object
) -> list[Station]:
    return [
        Station(workdir=tmp_path, name=n, mqtt_url=broker.url, site=SITE, settings=dict(settings))
        for n in names
    ]


def _drained(stations: list[Station]) -> bool:
    return all(s.backlog() == 0 for s in stations)


def _assert_delivered(db_url: str, stations: list[Station]) -> None:
    result = check_delivered(db_url, [(s.name, s.db) for s in stations])
    assert result.problems == [], result
    assert result.recorded == result.stored > 0


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
        wait_for(lambda: _drained(stations), what="every outbox to drain", timeout=180)
        assert workers[0].healthz() == 200
        _assert_delivered(pg_url, stations)
        assert watcher.backwards() == [], [(a.station, a.seq, a.at) for a in watcher.acks]
        assert sum(w.leads() for w in workers) == 1
    finally:
        watcher.close()
        for s in stations:
            s.close()
        for w in workers:
            w.stop()
