"""The timer engine on its own: a kind plugs in by registering, a failing handler is
retried without holding up the others, ``keep_earlier`` keeps one follow-up."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.watch.alerts import queue_alert
from central.watch.context import Watch
from central.watch.tables import timers
from central.watch.timers import KINDS, RETRY_AFTER, Timer, TimerKind, arm, timer_kind
from tests.support.watch import PAID, M, ticks


def say(watch: Watch, key: str) -> None:
    queue_alert(watch, dedup_key=key, kind="opened", level=1, level_name="supervisor",
                dept="operations", to="operations", severity="general", message=key)  # fmt: skip


def test_a_new_kind_plugs_in_and_a_failing_one_is_tried_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def boom(watch: Watch, timer: Timer) -> None:
        calls.append(f"boom {timer.fired}")
        say(watch, "half-done")
        raise RuntimeError("the carrier's API is down")

    def fine(watch: Watch, timer: Timer) -> None:
        calls.append("fine")
        say(watch, f"fine:{timer.subject}")

    monkeypatch.setitem(KINDS, "test.boom", TimerKind(name="test.boom", handler=boom, rank=1))
    monkeypatch.setitem(KINDS, "test.fine", TimerKind(name="test.fine", handler=fine, rank=2))
    with engine.begin() as conn:
        arm(conn, kind="test.boom", subject="T1", due_at=PAID)
        arm(conn, kind="test.fine", subject="T2", due_at=PAID)
    with caplog.at_level(logging.ERROR, logger="central.watch.timers"):
        fired = ticks(engine, PAID, PAID)
    # The failing handler's work (its alert) is undone; the other goes on.
    assert [(a.kind, a.dedup_key) for a in fired] == [("opened", "fine:T2")]
    assert calls == ["boom 1", "fine"]
    assert "timer test.boom 'T1'" in caplog.text and "the carrier's API is down" in caplog.text
    with engine.connect() as conn:
        again = conn.execute(
            sa.select(timers.c.next_fire_at).where(timers.c.kind == "test.boom")
        ).scalar_one()
    assert again == PAID + RETRY_AFTER
    ticks(engine, PAID + RETRY_AFTER)
    assert calls == ["boom 1", "fine", "boom 2"]


def test_keep_earlier_keeps_one_follow_up_and_kinds_are_registered_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KINDS, "test.noop", TimerKind(name="test.noop", handler=lambda w, t: None,
                                                      rank=5))  # fmt: skip
    with engine.begin() as conn:
        arm(conn, kind="test.noop", subject="S", due_at=PAID + 10 * M)
        arm(conn, kind="test.noop", subject="S", due_at=PAID + 20 * M, keep_earlier=True)
        arm(conn, kind="test.noop", subject="S", due_at=PAID + 5 * M, keep_earlier=True)
        due = conn.execute(sa.select(timers.c.next_fire_at, sa.func.count()).group_by(
            timers.c.next_fire_at)).all()  # fmt: skip
    assert due == [(PAID + 5 * M, 1)]
    with pytest.raises(ValueError, match="registered twice"):
        timer_kind("test.noop")(lambda w, t: None)
    with pytest.raises(KeyError, match="no timer kind"), engine.begin() as conn:
        arm(conn, kind="test.unknown", subject="S", due_at=PAID)
