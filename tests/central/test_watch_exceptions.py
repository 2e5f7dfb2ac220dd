"""Shipping exceptions (D3–D6) and escalation (D5, A1) by time travel, both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.watch import WatchRules
from central.watch.acks import AlertAck, acknowledge
from central.watch.context import Watch
from central.watch.exceptions import (
    ExceptionNotFound,
    ExceptionRefused,
    NotAllowed,
    acknowledge_exception,
    close_exception,
    exception_detail,
    list_exceptions,
    open_exception,
    post_plan,
    resolve_exception,
)
from central.watch.tables import exception_history
from tests.support.watch import PAID, H, M, make_order, put_orders, ticks

T = TypeVar("T")
T0 = PAID + 30 * H  # when the tests open their exceptions


def at(engine: Engine, moment: dt.datetime, step: Callable[[Watch], T], **rules: object) -> T:
    """Run ``step`` in one transaction of the watch at ``moment``."""
    with engine.begin() as conn:
        return step(Watch(conn=conn, now=moment, rules=WatchRules.model_validate(rules)))


def opened(engine: Engine, **fields: object) -> int:
    put_orders(engine, make_order("A", paid_at=T0))  # deadlines a day later
    values = {"type": "stock_out", "order_no": "A", "description": "no tees", "found_by": "li"}
    values.update(fields)
    new = at(engine, T0, lambda w: open_exception(w, **values))  # type: ignore[arg-type]
    assert new is not None
    return new


def test_an_exception_has_the_fields_of_d4_and_routing_defaults(engine: Engine) -> None:
    x_id = opened(engine)
    (x,) = list_exceptions(engine)
    assert x["id"] == x_id
    assert {k: x[k] for k in ("type", "order_no", "state", "severity", "dept", "level")} == {
        "type": "stock_out", "order_no": "A", "state": "open", "severity": "general",
        "dept": "warehouse", "level": 1,
    }  # fmt: skip
    assert x["opened_at"] == T0.isoformat() and x["found_by"] == "li"
    assert x["customer"] == "张* 138****5678"  # masked (C1)
    assert (x["cause_class"], x["cause_kind"]) == ("stock_out", "internal")
    assert x["plan_due_at"] == (T0 + H).isoformat()


def test_the_states_in_order_and_a_report_to_resolve(engine: Engine) -> None:
    x_id = opened(engine)
    with pytest.raises(ExceptionRefused, match="resolve it first"):
        at(engine, T0, lambda w: close_exception(w, x_id, by="li"))
    at(engine, T0 + M, lambda w: acknowledge_exception(w, x_id, by="li"))
    with pytest.raises(ExceptionRefused, match="acknowledged already by li"):
        at(engine, T0 + M, lambda w: acknowledge_exception(w, x_id, by="wang"))
    at(engine, T0 + 10 * M, lambda w: post_plan(w, x_id, text="borrow from store 2", by="li"))
    at(engine, T0 + 20 * M, lambda w: post_plan(w, x_id, text="borrow from store 3", by="li"))
    with pytest.raises(ExceptionRefused, match="action, outcome missing"):
        at(engine, T0, lambda w: resolve_exception(w, x_id, cause="late", action=" ",
                                                   outcome="", by="li"))  # fmt: skip
    report = {"cause": "stock count wrong", "action": "moved stock", "outcome": "shipped"}
    at(engine, T0 + H, lambda w: resolve_exception(w, x_id, by="li", **report))
    with pytest.raises(ExceptionRefused, match="no plan to post"):
        at(engine, T0 + H, lambda w: post_plan(w, x_id, text="more", by="li"))
    at(engine, T0 + 2 * H, lambda w: close_exception(w, x_id, by="boss"))
    x = exception_detail(engine, x_id)
    assert x["state"] == "closed" and x["report"] == {
        "cause": "stock count wrong", "action": "moved stock", "outcome": "shipped",
    }  # fmt: skip
    assert [(h["entry"], h["state"], h["by"]) for h in x["history"]] == [
        ("opened", "open", "li"),
        ("acknowledged", "acknowledged", "li"),
        ("plan", "plan_posted", "li"),
        ("plan", "plan_posted", "li"),  # a new plan is a new entry, the old one stays
        ("resolved", "resolved", "li"),
        ("closed", "closed", "boss"),
    ]
    with pytest.raises(ExceptionNotFound):
        at(engine, T0, lambda w: acknowledge_exception(w, 999, by="li"))


def test_history_is_append_only_in_the_database(engine: Engine) -> None:
    x_id = opened(engine)
    for statement in (
        exception_history.update().values(text="nothing happened"),
        exception_history.delete(),
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE exception_history CASCADE"))
    history = exception_detail(engine, x_id)["history"]
    assert [h["text"] for h in history] == ["no tees"]


def test_unacknowledged_it_repeats_and_a_plan_stops_the_climb(engine: Engine) -> None:
    x_id = opened(engine)
    fired = ticks(engine, T0 + 15 * M, T0 + 30 * M)
    assert [(a.kind, a.exception_id, a.level) for a in fired] == [
        ("repeat", x_id, 1), ("repeat", x_id, 1),
    ]  # fmt: skip
    at(engine, T0 + 31 * M, lambda w: acknowledge_exception(w, x_id, by="li"))
    # Acknowledged: no more repeats, but without a plan it still climbs at 1 h.
    fired = ticks(engine, T0 + 45 * M, T0 + H)
    assert [(a.kind, a.to, a.level) for a in fired] == [("escalated", "warehouse-head", 2)]
    assert "no plan posted within 1 h" in fired[0].message
    at(engine, T0 + H + M, lambda w: post_plan(w, x_id, text="recount", by="li"))
    assert ticks(engine, T0 + 5 * H) == []
    assert list_exceptions(engine)[0]["level"] == 2


def test_an_escalation_does_not_replace_a_repeat_due_at_the_same_time(engine: Engine) -> None:
    x_id = opened(engine)
    ticks(engine, T0 + 15 * M, T0 + 30 * M, T0 + 45 * M)
    fired = ticks(engine, T0 + H)
    assert [(a.kind, a.level) for a in fired] == [("repeat", 1), ("escalated", 2)]
    assert {a.exception_id for a in fired} == {x_id}


def test_a_major_exception_reaches_management_within_the_hour_whatever_happens(
    engine: Engine,
) -> None:
    x_id = opened(engine, type="system_failure", order_no=None, description="WMS down")
    (x,) = list_exceptions(engine)
    assert (x["severity"], x["dept"]) == ("major", "operations")
    at(engine, T0 + M, lambda w: post_plan(w, x_id, text="restarting", by="ops"))
    fired = ticks(engine, T0 + 59 * M, T0 + H, T0 + 3 * H)
    assert [(a.kind, a.to, a.severity) for a in fired] == [
        ("escalated", "management", "major"),
    ]
    assert "within 1 h whatever happens" in fired[0].message


def test_by_hand_major_picks_the_major_policy(engine: Engine) -> None:
    opened(engine, severity="major")
    fired = ticks(engine, T0 + H)
    assert [(a.kind, a.to) for a in fired][-1] == ("escalated", "management")


def test_resolved_is_sent_once_and_an_ack_never_unresolves(engine: Engine) -> None:
    x_id = opened(engine)
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=T0 + 5 * M, rules=WatchRules())
        resolve_exception(watch, x_id, cause="c", action="a", outcome="o", by="li")
    assert [a.kind for a in watch.fired] == ["resolved"]
    assert watch.fired[0].to == "warehouse" and "resolved by li: o" in watch.fired[0].message
    done = acknowledge(engine, AlertAck(exception_id=x_id, by="wang"), now=T0 + 6 * M)
    assert "acknowledged by wang" in done
    x = exception_detail(engine, x_id)
    assert x["state"] == "resolved" and x["acknowledged_by"] == "wang"
    assert ticks(engine, T0 + 3 * H) == []


def test_the_allow_list_applies_to_api_and_mqtt_acks(engine: Engine) -> None:
    policies = {"general": {"acknowledgers": ["sup-*", "boss"]}}
    rules = WatchRules.model_validate({"escalation": policies})
    put_orders(engine, make_order("A", paid_at=T0))  # deadlines a day later
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=T0, rules=rules)
        x_id = open_exception(watch, type="damaged", order_no="A", description="torn",
                              found_by="li")  # fmt: skip
    assert x_id is not None
    with pytest.raises(NotAllowed, match="packer-3 may not acknowledge"):
        acknowledge(engine, AlertAck(exception_id=x_id, by="packer-3"), now=T0, rules=rules)
    # The CLI acts for whoever --by names (it runs on the central host).
    acknowledge(engine, AlertAck(exception_id=x_id, by="packer-3"), now=T0, rules=rules,
                check_allowed=False)  # fmt: skip
    assert exception_detail(engine, x_id)["acknowledged_by"] == "packer-3"


def test_bad_input_is_refused_with_its_reason(engine: Engine) -> None:
    put_orders(engine, make_order("A", paid_at=T0))  # deadlines a day later
    for fields, words in (
        ({"type": "lost"}, "unknown exception type 'lost'"),
        ({"severity": "huge"}, "severity must be general or major"),
        ({"cause_class": "gremlins"}, "unknown cause class 'gremlins'"),
        ({"dept": "Ware House"}, "dept must be lower-case"),
        ({"description": "   "}, "description must not be empty"),
    ):
        values = {"type": "damaged", "order_no": "A", "description": "x", "found_by": "li"}
        values.update(fields)
        with pytest.raises(ExceptionRefused, match=words):
            at(engine, T0, lambda w, v=values: open_exception(w, **v))  # type: ignore[misc,arg-type]
    assert list_exceptions(engine) == []
