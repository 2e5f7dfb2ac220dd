"""The floor read once per change (central.floor.FloorModel): never older than the
database, whichever process or connection wrote, and the same as a fresh read."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

from sqlalchemy.engine import Engine

from central.db import open_db, utcnow
from central.floor import FloorModel, TileRules, retire_station, station_tiles
from central.ingest import record_status, store_batch
from sync.messages import StationStatus
from tests.support.central import batch, event

SITE = "floorsite"
RULES = TileRules(labels_low=50, backlog_alert_after=15 * 60.0, skew_tolerance=60.0)


def _status(station: str, **fields: object) -> StationStatus:
    now = utcnow().timestamp()
    values: dict[str, object] = {
        "station": station, "online": True, "at_wall": now, "started_at": now - 3600,
        "printer": "ready", "scanner": "ok", "labels_left": 200, "label_size": "62",
        "operator": "li", "last_scan_at": now - 5,
    }  # fmt: skip
    values.update(fields)
    return StationStatus.model_validate(values)


def _fleet(engine: Engine, count: int = 6) -> None:
    for i in range(count):
        record_status(engine, _status(f"bench-{i:02d}"), site=SITE)
    record_status(engine, _status("elsewhere-01"), site="other")


def _model(engine: Engine) -> FloorModel:
    return FloorModel(engine, site=SITE, rules=RULES, shipments_shown=5)


def _fresh(engine: Engine, now: dt.datetime) -> list[dict[str, object]]:
    return station_tiles(
        engine,
        site=SITE,
        labels_low=RULES.labels_low,
        backlog_alert_after=RULES.backlog_alert_after,
        skew_tolerance=RULES.skew_tolerance,
        now=now,
    )


def _in_another_process(db_url: str, code: str) -> None:
    """Run ``code`` (with ``engine`` open on ``db_url``) in a process of its own."""
    script = textwrap.dedent(
        """
        import sys
        from central.db import open_db
        engine = open_db(sys.argv[1])
        """
    ) + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script, db_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _tile(model: FloorModel, station: str) -> dict[str, object]:
    return next(t for t in model.current().tiles(utcnow()) if t["station"] == station)


def test_read_once_while_nothing_changes(engine: Engine) -> None:
    _fleet(engine)
    model = _model(engine)
    first = model.current()
    assert [s["station"] for s in first.station_list(utcnow())] == [
        f"bench-{i:02d}" for i in range(6)
    ]
    assert model.current() is first and model.reads == 1
    record_status(engine, _status("bench-03", printer="no media"), site=SITE)
    assert model.current() is not first and model.reads == 2


def test_a_change_by_another_process_shows_at_the_next_read(engine: Engine, db_url: str) -> None:
    _fleet(engine)
    model = _model(engine)
    assert _tile(model, "bench-02")["printer_words"] == "Ready"
    assert model.current().shipments == ()
    _in_another_process(
        db_url,
        """
        from central.ingest import record_status
        from sync.messages import StationStatus
        record_status(
            engine,
            StationStatus(station="bench-02", online=True, printer="no media", label_size="62"),
            site="floorsite",
        )
        """,
    )
    tile = _tile(model, "bench-02")
    assert (tile["printer_words"], tile["printer_fix"], tile["level"]) == (
        "Out of labels",
        "load a new 62 mm roll",
        "fault",
    )
    _in_another_process(
        db_url,
        """
        from central.ingest import store_batch
        from tests.support.central import batch, event
        store_batch(engine, batch("bench-04", event("bench-04", 1, order_no="PDD-OTHER")))
        """,
    )
    assert [s["order_no"] for s in model.current().shipments] == ["PDD-OTHER"]
    _in_another_process(
        db_url,
        """
        from central.ingest import record_status
        from sync.messages import StationStatus
        record_status(engine, StationStatus(station="bench-05", online=False), site="floorsite")
        """,
    )
    assert _tile(model, "bench-05")["level"] == "offline"


def test_a_change_by_another_connection_shows_at_the_next_read(engine: Engine, db_url: str) -> None:
    _fleet(engine)
    model = _model(engine)
    model.current()
    other = open_db(db_url)  # a pool of its own
    try:
        record_status(other, _status("bench-01", scanner="gone"), site=SITE)
        assert _tile(model, "bench-01")["scanner_words"] == "Scanner unplugged"
        record_status(other, StationStatus(station="bench-00", online=False), site=SITE)
        retire_station(other, "bench-00", site=SITE)
        assert "bench-00" not in {t["station"] for t in model.current().tiles(utcnow())}
        record_status(other, _status("bench-00"), site=SITE)  # heard from again: back
        assert _tile(model, "bench-00")["level"] == "ok"
        record_status(other, _status("bench-new"), site=SITE)
        assert _tile(model, "bench-new")["level"] == "ok"
    finally:
        other.dispose()


def test_after_many_changes_the_same_as_a_fresh_read(engine: Engine) -> None:
    _fleet(engine, count=8)
    model = _model(engine)
    now = utcnow().timestamp()
    changes = [
        _status("bench-00", printer="cover open"),
        _status("bench-01", backlog=12, backlog_oldest_at=now - 20 * 60),
        _status("bench-02", labels_left=7),
        StationStatus(station="bench-03", online=False),
        _status("bench-04", clock_skew_s=300.0, name_conflict="another bench uses the name"),
        _status("bench-05", backlog=3, backlog_oldest_at=now - 60),
        _status("bench-07", printer="no media", backlog=2, backlog_oldest_at=now - 120),
    ]
    for change in changes:
        record_status(engine, change, site=SITE)
        model.current()  # read in between: only the changed station is read again
    store_batch(engine, batch("bench-06", event("bench-06", 1, order_no="PDD-1")), site=SITE)
    state = model.current()
    for later in (0, 90, 30 * 60):
        moment = utcnow() + dt.timedelta(seconds=later)
        assert state.tiles(moment) == _fresh(engine, moment)
    assert [s["order_no"] for s in state.shipments] == ["PDD-1"]


def test_a_backlog_ages_on_the_floor_without_a_new_status(engine: Engine) -> None:
    _fleet(engine, count=2)
    now = utcnow()
    oldest = now.timestamp() - 14 * 60
    record_status(
        engine, _status("bench-01", at_wall=now.timestamp(), backlog=9, backlog_oldest_at=oldest),
        site=SITE,
    )  # fmt: skip
    model = _model(engine)
    state = model.current()
    before = next(t for t in state.tiles(now) if t["station"] == "bench-01")
    assert before["level"] == "ok" and before["backlog_text"] == "backlog 9 events, oldest 14 min"
    later = now + dt.timedelta(minutes=2)
    after = next(t for t in state.tiles(later) if t["station"] == "bench-01")
    assert after["level"] == "check" and after["notes"] == ["Records not reaching central"]
    assert after["backlog_text"] == "backlog 9 events, oldest 16 min"
    assert state.clock_words(now) != state.clock_words(later)
    assert model.current() is state and model.reads == 1


def test_the_stations_json_is_what_json_dumps_writes(engine: Engine) -> None:
    _fleet(engine, count=3)
    now = utcnow().timestamp()
    record_status(
        engine,
        _status("bench-01", backlog=4, backlog_oldest_at=now - 600, printer="error",
                printer_detail='卡纸 "jam" {0} {} \\u0000uptime_s \\ end'),
        site=SITE,
    )  # fmt: skip
    record_status(engine, StationStatus(station="bench-02", online=False), site=SITE)
    state = _model(engine).current()
    for later in (0, 1.5, 3600):
        moment = utcnow() + dt.timedelta(seconds=later)
        listed = state.station_list(moment)
        assert state.station_list_json(moment) == json.dumps(
            listed, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    moving = next(s for s in listed if s["station"] == "bench-01")
    assert moving["backlog_oldest_age_s"] > 3600 and moving["uptime_s"] > 7200
    assert moving["backlog_text"] == "backlog 4 events, oldest 70 min"
