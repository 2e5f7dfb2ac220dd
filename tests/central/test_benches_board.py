"""Refused scans and integrity per bench; the timers of open alarms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from central.benches import bench_problems
from central.deadletters import record_dead_letter
from central.watch import WatchRules
from central.watch.board import alarm_timers
from central.watch.context import Watch
from central.watch.exceptions import acknowledge_exception, dedup_key, open_exception, post_plan
from tests.support.watch import bench_event

T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
M = dt.timedelta(minutes=1)


def test_refusals_dead_letters_and_integrity_per_bench(engine: Engine) -> None:
    for n, code in enumerate(["label_does_not_fit", "label_does_not_fit", "unknown_code"]):
        bench_event(engine, "bench-02", "scan.rejected", at=T0 + n * M, text=f"<b>{n}</b>",
                    reason="Label too wide", code=code)  # fmt: skip
    bench_event(engine, "bench-01", "shipment.shipped", at=T0, order_no="X-1")
    with engine.begin() as conn:
        for _ in range(2):
            record_dead_letter(
                conn, topic="packline/v1/wh1/stations/bench-02/events", reason="integrity",
                detail="seq 7 held under another id", payload=b"{}", now=T0,
                station="bench-02", key="integrity:e7",
            )  # fmt: skip
        record_dead_letter(conn, topic="packline/v1/wh1/stations/+/events", reason="malformed",
                           detail="not JSON", payload=b"\x00", now=T0)  # fmt: skip
    found = bench_problems(engine, now=dt.datetime.now(dt.UTC), site="wh1")
    one, two = found["benches"]
    assert (one["station"], one["refused"], one["integrity"]) == ("bench-01", [], 0)
    assert two["refused_recent"] == 3
    assert [r["text"] for r in two["refused"]] == ["<b>2</b>", "<b>1</b>", "<b>0</b>"]
    assert two["refused"][-1]["at"] == T0.isoformat()
    top = two["refused_by_code"][0]
    assert (top["code"], top["count"]) == ("label_does_not_fit", 2)
    assert "station.toml" in top["hint"]
    assert two["integrity"] == 2 and two["dead_letters_by_reason"] == {"integrity": 2}
    assert [d["reason"] for d in found["unassigned"]] == ["malformed"]
    # A refusal older than the window is listed but not counted as recent.
    later = bench_problems(engine, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2), site="wh1")
    assert later["benches"][1]["refused_recent"] == 0 and len(later["benches"][1]["refused"]) == 3
    assert bench_problems(engine, now=T0, site="elsewhere")["benches"] == []


def test_timers_of_an_exception_stop_as_people_act(engine: Engine) -> None:
    rules = WatchRules()
    with engine.begin() as conn:
        xid = open_exception(Watch(conn=conn, now=T0, rules=rules, site="wh1"),
                             type="damaged", description="box crushed", found_by="cs")  # fmt: skip
    assert xid is not None
    key = dedup_key(xid)
    timers = alarm_timers(engine, [key, "exception:999"])[key]
    assert list(alarm_timers(engine, [key, "exception:999"])) == [key]
    assert (timers["level"], timers["level_name"], timers["acked_at"]) == (1, "supervisor", None)
    assert timers["next_repeat_at"] == (T0 + 15 * M).isoformat()
    assert timers["next_climb_at"] == (T0 + 60 * M).isoformat()
    assert timers["next_level_name"] == "department head"
    with engine.begin() as conn:
        acknowledge_exception(Watch(conn=conn, now=T0 + 5 * M, rules=rules), xid, by="li")
    acked = alarm_timers(engine, [key])[key]
    assert acked["next_repeat_at"] is None and acked["acked_by"] == "li"
    assert acked["next_climb_at"] == (T0 + 60 * M).isoformat()  # a plan is still due
    with engine.begin() as conn:
        post_plan(Watch(conn=conn, now=T0 + 9 * M, rules=rules), xid, text="reship", by="li")
    assert alarm_timers(engine, [key])[key]["next_climb_at"] is None
    assert alarm_timers(engine, []) == {}
