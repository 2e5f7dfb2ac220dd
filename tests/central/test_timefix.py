"""Station clocks corrected per boot (C2), on SQLite and PostgreSQL.

A station's wall clock may be hours wrong; its monotonic clock is right about
durations. Central relates each boot's monotonic clock to its own clock from messages
whose sending time the station states, keeps the best (smallest) offset, and gives
every event of that boot — also those recorded offline before first contact — its
true time. Shipments keep the claim and the corrected time, flagged beyond the
tolerance.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import events, shipments, station_boots, utcnow
from central.ingest import ingest_batch, record_status
from central.timefix import event_time, note_sample
from sync.messages import Event, EventBatch, StationStatus, new_event_id

HOURS_3 = 3 * 3600.0
# The station booted 1000 s ago by the true clock; its wall clock is 3 h behind.
TRUE_BOOT = utcnow().timestamp() - 1000.0


def station_event(seq: int, *, mono: float, boot: str = "boot-A", **payload: object) -> Event:
    """An event recorded at monotonic ``mono`` of ``boot``, on a wall clock 3 h behind."""
    body = {
        "order_no": f"ORD-{seq}",
        "tracking_no": f"SF{seq}",
        "carrier": "SF Express",
        "parcel_no": 1,
        "parcel_count": 1,
        "operator": "op",
        "print_job_id": f"job-{seq}",
        "print_verified": True,
        **payload,
    }
    return Event(
        event_id=new_event_id(),
        station="b1",
        seq=seq,
        type="shipment.shipped",
        at_wall=TRUE_BOOT + mono - HOURS_3,
        at_mono=mono,
        boot_id=boot,
        payload=body,
    )


def true_at(mono: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(TRUE_BOOT + mono, dt.UTC)


def shipped(engine: Engine) -> dict[str, tuple[dt.datetime, dt.datetime, float | None, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                shipments.c.order_no,
                shipments.c.shipped_at,
                shipments.c.shipped_at_corrected,
                shipments.c.skew_s,
                shipments.c.skewed,
            )
        )
        return {
            r.order_no: (r.shipped_at, r.shipped_at_corrected, r.skew_s, r.skewed) for r in rows
        }


def test_the_smallest_offset_wins_and_a_worse_sample_changes_nothing(engine: Engine) -> None:
    received = utcnow()
    with engine.begin() as conn:
        first = note_sample(
            conn, station="b1", boot_id="boot-A", sent_mono=500.0, sent_wall=None, received=received
        )
        assert first is not None and first[1] is None  # the first sample of the boot
        # The same moment, delivered 30 s later through a queue: no better.
        late = received + dt.timedelta(seconds=30)
        assert (
            note_sample(
                conn, station="b1", boot_id="boot-A", sent_mono=500.0, sent_wall=None, received=late
            )
            is None
        )
        # A later message that took less time on the way: 2 s better.
        better = note_sample(
            conn,
            station="b1",
            boot_id="boot-A",
            sent_mono=600.0,
            sent_wall=99.0,
            received=received + dt.timedelta(seconds=98),
        )
        assert better is not None and better[1] == pytest.approx(2.0)
        offset = conn.execute(sa.select(station_boots.c.mono_offset)).scalar_one()
    assert offset == pytest.approx(received.timestamp() - 502.0)


def test_event_time_is_the_claim_until_the_boot_is_known(engine: Engine) -> None:
    with engine.begin() as conn:
        claimed = event_time(conn, station="b1", boot_id="boot-A", at_wall=1000.0, at_mono=10.0)
        assert claimed == dt.datetime.fromtimestamp(1000.0, dt.UTC)
        note_sample(
            conn,
            station="b1",
            boot_id="boot-A",
            sent_mono=100.0,
            sent_wall=None,
            received=true_at(100.0),
        )
        known = event_time(conn, station="b1", boot_id="boot-A", at_wall=1000.0, at_mono=10.0)
        assert known == true_at(10.0)
        # Another boot of the station is another clock.
        other = event_time(conn, station="b1", boot_id="boot-B", at_wall=1000.0, at_mono=10.0)
        assert other == dt.datetime.fromtimestamp(1000.0, dt.UTC)


def test_events_recorded_offline_are_corrected_by_the_batch_that_brings_them(
    engine: Engine,
) -> None:
    # Ten shipments while offline (mono 100..190), delivered at mono 900.
    offline = [station_event(seq, mono=90.0 + 10 * seq) for seq in range(1, 11)]
    result = ingest_batch(
        engine,
        EventBatch(
            station="b1",
            events=offline,
            boot_id="boot-A",
            sent_mono=900.0,
            sent_wall=TRUE_BOOT + 900.0 - HOURS_3,
        ),
        received_at=true_at(900.0) + dt.timedelta(milliseconds=40),
    )
    assert result.acked == 10
    rows = shipped(engine)
    for seq in range(1, 11):
        claimed, corrected, skew, flagged = rows[f"ORD-{seq}"]
        truth = true_at(90.0 + 10 * seq)
        assert abs((corrected - truth).total_seconds()) < 1
        assert abs((claimed - truth).total_seconds() + HOURS_3) < 1
        assert skew == pytest.approx(-HOURS_3, abs=1) and flagged
    with engine.connect() as conn:
        stored = conn.execute(sa.select(events.c.at_corrected)).scalars().all()
    assert len(stored) == 10 and all(t is not None for t in stored)


def test_a_later_better_sample_corrects_what_was_stored(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # The batch waited 20 min in the broker while central was down: its sample is poor.
    first = [station_event(1, mono=100.0), station_event(2, mono=110.0)]
    ingest_batch(
        engine,
        EventBatch(station="b1", events=first, boot_id="boot-A", sent_mono=120.0),
        received_at=true_at(120.0) + dt.timedelta(minutes=20),
    )
    before = shipped(engine)["ORD-1"][1]
    assert (before - true_at(100.0)).total_seconds() == pytest.approx(1200, abs=1)
    # A live status of the same boot arrives at once: everything moves 20 min earlier.
    with caplog.at_level(logging.INFO, logger="central.timefix"):
        record_status(
            engine,
            StationStatus(
                station="b1",
                online=True,
                boot_id="boot-A",
                at_mono=2000.0,
                at_wall=TRUE_BOOT + 2000.0 - HOURS_3,
            ),
            site="s",
            received_at=true_at(2000.0),
        )
    rows = shipped(engine)
    for seq, mono in ((1, 100.0), (2, 110.0)):
        assert abs((rows[f"ORD-{seq}"][1] - true_at(mono)).total_seconds()) < 1
        assert rows[f"ORD-{seq}"][3] is True
    assert "corrected the times of 2 events (2 shipments)" in caplog.text


def test_events_of_a_boot_that_never_reached_central_keep_their_claim(engine: Engine) -> None:
    lost_boot = station_event(1, mono=50.0, boot="boot-gone")
    ingest_batch(
        engine,
        EventBatch(station="b1", events=[lost_boot], boot_id="boot-now", sent_mono=10.0),
        received_at=utcnow(),
    )
    claimed, corrected, skew, flagged = shipped(engine)["ORD-1"]
    assert corrected == claimed and skew is None and flagged is False


def test_tolerance_decides_the_flag(engine: Engine) -> None:
    # A wall clock 45 s behind is within the default 60 s; with 30 s it is flagged.
    ev = station_event(1, mono=100.0)
    near = ev.model_copy(update={"at_wall": TRUE_BOOT + 100.0 - 45.0})
    ingest_batch(
        engine,
        EventBatch(station="b1", events=[near], boot_id="boot-A", sent_mono=100.0),
        received_at=true_at(100.0),
    )
    far = station_event(2, mono=110.0).model_copy(update={"at_wall": TRUE_BOOT + 110.0 - 45.0})
    ingest_batch(
        engine,
        EventBatch(station="b1", events=[far], boot_id="boot-A", sent_mono=110.0),
        received_at=true_at(110.0),
        skew_tolerance=30.0,
    )
    rows = shipped(engine)
    assert rows["ORD-1"][2] == pytest.approx(-45.0, abs=0.5) and rows["ORD-1"][3] is False
    assert rows["ORD-2"][3] is True


def test_the_version_of_an_event_held_back_by_a_gap_is_kept(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # seq 2 is of a version of shipment.shipped this central does not know; it waits
    # for seq 1, and is then decoded as what it is, not as version 1.
    later = station_event(2, mono=20.0).model_copy(update={"version": 2})
    ingest_batch(engine, EventBatch(station="b1", events=[later]))
    with caplog.at_level(logging.WARNING, logger="central.ingest"):
        assert (
            ingest_batch(
                engine, EventBatch(station="b1", events=[station_event(1, mono=10.0)])
            ).acked
            == 2
        )
    assert set(shipped(engine)) == {"ORD-1"}
    assert "version 2 is not known here" in caplog.text
    with engine.connect() as conn:
        versions = dict(conn.execute(sa.select(events.c.seq, events.c.version)).all())
    assert versions == {1: 1, 2: 2}
