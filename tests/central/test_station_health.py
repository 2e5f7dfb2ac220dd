"""Station health at central: history of changes, the backlog alert, central's clock,
and which station store owns a name (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import station_history, station_instances, stations, utcnow
from central.ingest import ingest_batch, record_status
from central.names import CONFLICT_QUIET, expire_conflicts
from central.service import CentralService
from central.views import list_stations
from packline.devbroker import MosquittoBroker
from sync.messages import Ack, EventBatch, StationStatus
from tests.support.central import FakeStation, event

NOW = 1_800_000_000.0


def history(engine: Engine) -> list[tuple[str, str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                station_history.c.field, station_history.c.old_value, station_history.c.new_value
            ).order_by(station_history.c.id)
        )
        return [(r.field, r.old_value, r.new_value) for r in rows]


def status(**fields: object) -> StationStatus:
    base: dict[str, object] = {"station": "b1", "online": True, "at_wall": NOW}
    return StationStatus.model_validate({**base, **fields})


def test_each_change_of_reported_health_is_kept_once(engine: Engine) -> None:
    record_status(
        engine,
        status(version="1.0", printer="ready", labels_left=200, scanner="ready", label_size="62"),
        site="s",
    )
    first = history(engine)
    assert ("online", "false", "true") in first
    assert ("printer", None, "ready") in first and ("labels_left", None, "200") in first
    # The same health again, with a newer clock and a bigger backlog: nothing changed.
    record_status(
        engine,
        status(version="1.0", printer="ready", labels_left=200, scanner="ready", label_size="62",
               backlog=9, at_wall=NOW + 10),
        site="s",
    )  # fmt: skip
    assert history(engine) == first
    record_status(
        engine,
        status(version="1.0", printer="no_media", printer_detail="roll empty", labels_left=0,
               scanner="ready", label_size="62"),
        site="s",
    )  # fmt: skip
    record_status(engine, StationStatus(station="b1", online=False), site="s")
    assert history(engine)[len(first) :] == [
        ("printer", "ready", "no_media"),
        ("printer_detail", None, "roll empty"),
        ("labels_left", "200", "0"),
        ("online", "true", "false"),
    ]


def watch_conditions(engine: Engine) -> set[str] | None:
    """The conditions the watch engine holds raised; None in a build without it (the
    alerts are then log lines, ``central/alerting.py``)."""
    try:
        from central.watch.conditions import active_conditions  # type: ignore[import-not-found]
    except ModuleNotFoundError:
        return None
    with engine.connect() as conn:
        return set(active_conditions(conn))


def test_an_old_backlog_of_an_online_station_raises_an_alert_and_clears(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"station-backlog:b-{uuid.uuid4().hex[:6]}"
    name = key.split(":", 1)[1]
    raised: list[bool] = []
    with caplog.at_level(logging.INFO, logger="central.alerting"):
        fresh = record_status(
            engine,
            StationStatus(station=name, online=True, at_wall=NOW, backlog=3,
                          backlog_oldest_at=NOW - 60),
            site="s",
        )  # fmt: skip
        assert not fresh.backlog_alert
        old = record_status(
            engine,
            StationStatus(station=name, online=True, at_wall=NOW + 1200, backlog=312,
                          backlog_oldest_at=NOW - 60 - 47 * 60 + 1200),
            site="s",
            backlog_alert_after=15 * 60,
        )  # fmt: skip
        assert old.backlog_alert
        active = watch_conditions(engine)
        raised.append(active is None or key in active)
        shown = next(s for s in list_stations(engine) if s["station"] == name)
        assert shown["backlog_text"] == "backlog 312 events, oldest 48 min"
        drained = record_status(
            engine, StationStatus(station=name, online=True, at_wall=NOW + 1300), site="s"
        )
        assert not drained.backlog_alert
        active = watch_conditions(engine)
        raised.append(active is not None and key in active)
    assert raised == [True, False]
    if watch_conditions(engine) is not None:
        return  # the watch engine carries it; its own tests cover the alert messages
    said = [r.getMessage() for r in caplog.records if r.name == "central.alerting"]
    assert said == [
        f"ALERT {key} (operations, general): station {name} is online but has not delivered "
        "its records: backlog 312 events, oldest 48 min (see `packline central dead-letters` "
        "and the station's log)",
        f"ALERT {key} cleared",
    ]


def test_a_second_store_under_one_name_is_refused_until_it_goes_quiet(engine: Engine) -> None:
    now = utcnow()
    owner, newcomer = "aaaaaaaa-1111", "bbbbbbbb-2222"
    first = ingest_batch(
        engine,
        EventBatch(station="b3", events=[event("b3", 1)], instance_id=owner),
        received_at=now,
    )
    assert first.accepted and first.name_conflict is None and first.acked == 1
    refused = ingest_batch(
        engine,
        EventBatch(station="b3", events=[event("b3", 1)], instance_id=newcomer),
        received_at=now,
    )
    assert not refused.accepted and refused.acked == 0
    assert refused.name_conflict is not None
    assert refused.name_conflict.startswith("another bench uses the name b3")
    again = ingest_batch(
        engine,
        EventBatch(station="b3", events=[event("b3", 2)], instance_id=owner),
        received_at=now,
    )
    assert again.accepted and again.acked == 2
    assert again.name_conflict is not None and "bbbbbbbb" in again.name_conflict
    with engine.connect() as conn:
        row = conn.execute(sa.select(stations.c.instance_id, stations.c.name_conflict)).one()
        seen = dict(
            conn.execute(
                sa.select(station_instances.c.instance_id, station_instances.c.refused)
            ).all()
        )
    assert row.instance_id == owner
    assert row.name_conflict == (
        "two benches use the name b3: instance aaaaaaaa (had it first) and bbbbbbbb; central "
        "refuses the second's records until one of them is given another name"
    )
    assert seen == {owner: 0, newcomer: 1}
    # The newcomer's status changes nothing of the owner's health.
    record_status(
        engine,
        StationStatus(station="b3", online=True, printer="fault", instance_id=newcomer),
        site="s",
        received_at=now,
    )
    assert next(s for s in list_stations(engine))["printer"] == "unknown"

    with engine.begin() as conn:
        assert expire_conflicts(conn, site="", now=now + dt.timedelta(seconds=60)) == []
        later = now + dt.timedelta(seconds=CONFLICT_QUIET + 1)
        assert expire_conflicts(conn, site="", now=later) == ["b3"]
    assert next(s for s in list_stations(engine))["name_conflict"] is None


@pytest.mark.mqtt
def test_central_tells_online_stations_its_time(
    sqlite_engine: Engine, broker: MosquittoBroker
) -> None:
    site = f"clk-{uuid.uuid4().hex[:8]}"
    svc = CentralService(engine=sqlite_engine, mqtt_url=broker.url, site=site, clock_every=3600)
    svc.start()
    station: FakeStation | None = None
    try:
        assert svc.wait_connected(20)
        station = FakeStation(url=broker.url, site=site, name="bench-c")
        station.send(event("bench-c", 1))
        assert station.next("ack", Ack).seq == 1
        station.status(instance_id="inst-c")
        # Coming online is answered with central's time at once...
        first = station.next("ack", Ack)
        assert first.at is not None and abs(first.at - time.time()) < 5
        assert (first.seq, first.instance_id) == (1, "inst-c")
        # ...and so is every round of the clock.
        assert svc.send_clock() == 1
        tick = station.next("ack", Ack)
        assert tick.seq == 1 and tick.at is not None and tick.at >= first.at
    finally:
        if station is not None:
            station.close()
        svc.stop()
