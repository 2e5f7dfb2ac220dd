"""Bad messages never block a stream: each goes to the dead letters, the next is taken.

Real Mosquitto, the real CentralService on SQLite and PostgreSQL; the station side is a
plain MQTT client publishing exactly the bytes a broken or misconfigured sender would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import dead_letters, events, stations
from central.deadletters import SAMPLE_BYTES, dead_letter_counts
from central.service import CentralService
from packline.devbroker import MosquittoBroker
from sync.messages import Ack, StationStatus, encode
from tests.support.central import FakeStation, event
from tests.support.cli import run_packline
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt

MAX_BYTES = 4096


@pytest.fixture
def site() -> str:
    return f"dl-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def service(engine: Engine, broker: MosquittoBroker, site: str) -> Iterator[CentralService]:
    svc = CentralService(
        engine=engine,
        mqtt_url=broker.url,
        site=site,
        poll_interval=0.2,
        max_message_bytes=MAX_BYTES,
    )
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


def letters(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dead_letters).order_by(dead_letters.c.id)).mappings().all()
    return [dict(r) for r in rows]


def batch_json(*evs: dict[str, Any], station: str = "bench-01", **over: Any) -> dict[str, Any]:
    return {"v": 1, "station": station, "events": list(evs), **over}


def wire(ev: Any) -> dict[str, Any]:
    return dict(json.loads(ev.model_dump_json()))


# (name, what the sender publishes on its events topic, reason, words in the detail)
BAD_BATCHES: list[tuple[str, Any, str, str]] = [
    ("not-json", b"\xff\xfe not json {", "malformed", "not JSON"),
    ("not-a-batch", {"v": 1, "station": "bench-01", "events": "many"}, "malformed", "events"),
    ("v2", batch_json(v=2), "wrong_version", "wire version 2"),
    ("nan-time", "NAN", "invalid_value", "not a finite number: NaN"),
    ("infinite-time", "INF", "invalid_value", "not a finite number: Infinity"),
    ("negative-seq", {"seq": -4}, "invalid_value", "seq"),
    ("other-station", batch_json(station="bench-99"), "misaddressed", "bench-99"),
    ("event-of-another", {"station": "bench-77"}, "misaddressed", "bench-77"),
    ("oversized", "BIG", "oversized", "more than max_message_bytes"),
]


def bad_payload(kind: Any, seq: int) -> bytes:
    good = wire(event("bench-01", seq))
    if isinstance(kind, bytes):
        return kind
    if kind == "NAN":
        return json.dumps(batch_json(good)).replace(str(good["at_wall"]), "NaN").encode()
    if kind == "INF":
        return json.dumps(batch_json(good)).replace(str(good["at_wall"]), "Infinity").encode()
    if kind == "BIG":
        return json.dumps(batch_json({**good, "payload": {"note": "x" * MAX_BYTES}})).encode()
    if "events" in kind or "v" in kind:
        return json.dumps(kind).encode()
    return json.dumps(batch_json({**good, **kind})).encode()


def test_each_bad_batch_is_set_aside_and_the_next_good_one_is_taken(
    service: CentralService, station: FakeStation, engine: Engine
) -> None:
    for seq, (name, kind, reason, words) in enumerate(BAD_BATCHES, start=1):
        payload = bad_payload(kind, seq)
        station.publish("events", payload)
        # The stream goes on: the good event with the same seq is stored and acked.
        station.send(event("bench-01", seq))
        assert station.next("ack", Ack).seq == seq, name
        kept = letters(engine)
        assert len(kept) == seq, name
        last = kept[-1]
        assert (last["reason"], last["size"]) == (reason, len(payload)), name
        assert words in last["detail"], (name, last["detail"])
        assert last["station"] == "bench-01" and last["topic"].endswith("/bench-01/events")
        assert len(last["sample"]) <= 4 * SAMPLE_BYTES
    # Nothing bad reached the events table: only the good events, all of them.
    with engine.connect() as conn:
        walls = conn.execute(sa.select(events.c.at_wall)).scalars().all()
    assert len(walls) == len(BAD_BATCHES)
    assert all(0 < w < 1e11 for w in walls)
    counts = dead_letter_counts(engine)
    assert counts["malformed"] == 2 and counts["invalid_value"] == 3
    assert counts["misaddressed"] == 2 and counts["oversized"] == 1
    assert counts["wrong_version"] == 1 and counts["name_conflict"] == 0
    assert dict(service.dead_letters) == {r: n for r, n in counts.items() if n}


def test_a_message_sent_again_is_one_row_with_repeats(
    service: CentralService, station: FakeStation, engine: Engine
) -> None:
    for _ in range(3):
        station.publish("events", b"garbage")
    station.send(event("bench-01", 1))
    assert station.next("ack", Ack).seq == 1
    kept = letters(engine)
    assert len(kept) == 1 and kept[0]["repeats"] == 3
    assert service.dead_letters["malformed"] == 3


def test_a_status_with_a_value_out_of_range_is_set_aside_not_stored(
    service: CentralService, station: FakeStation, engine: Engine
) -> None:
    station.status(printer="ready", labels_left=40, backlog=1)

    def labels() -> int | None:
        with engine.connect() as conn:
            row = conn.execute(sa.select(stations.c.labels_left)).first()
        return None if row is None else row.labels_left

    assert wait_for(labels, what="the first status") == 40
    bad = json.loads(encode(StationStatus(station="bench-01", online=True, labels_left=40)))
    station.publish("status", json.dumps({**bad, "labels_left": -3}).encode(), retain=True)
    station.publish("status", json.dumps({**bad, "backlog": -1}).encode(), retain=True)
    station.status(printer="ready", labels_left=39, backlog=0)
    assert wait_for(lambda: labels() == 39, what="the next good status")
    kept = letters(engine)
    assert [k["reason"] for k in kept] == ["invalid_value", "invalid_value"]
    assert "labels_left" in kept[0]["detail"] and "backlog" in kept[1]["detail"]
    assert all(k["topic"].endswith("/bench-01/status") for k in kept)


def test_the_command_lists_them_and_their_counts(
    service: CentralService, station: FakeStation, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    station.publish("events", b"\x00\x01 binary garbage")
    station.publish("events", json.dumps(batch_json(v=7)).encode())
    station.send(event("bench-01", 1))
    assert station.next("ack", Ack).seq == 1

    done = run_packline("central", "dead-letters", "--json", "--db-url", db_url)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["counts"]["malformed"] == 1 and listed["counts"]["wrong_version"] == 1
    reasons = [d["reason"] for d in listed["dead_letters"]]
    assert sorted(reasons) == ["malformed", "wrong_version"]
    garbage = next(d for d in listed["dead_letters"] if d["reason"] == "malformed")
    assert garbage["sample"].startswith("\\x00\\x01 binary garbage")
    assert garbage["size"] == len(b"\x00\x01 binary garbage")

    text = run_packline("central", "dead-letters", "--db-url", db_url)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "2 messages set aside (1 malformed, 1 wrong_version); newest first:"
    assert any("wrong_version" in line and "bench-01" in line for line in lines[1:])
