"""After-sales tickets (D7), carrier scans (logistics_stalled) and the timeout KPI, by
time travel on both backends."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.reports import timeout_kpi
from central.watch import WatchRules
from central.watch.acks import AlertAck, acknowledge
from central.watch.context import Watch
from central.watch.exceptions import NotAllowed, exception_detail, list_exceptions
from central.watch.tables import ticket_history
from central.watch.tickets import (
    TicketNotFound,
    TicketRefused,
    acknowledge_ticket,
    close_ticket,
    follow_up,
    list_tickets,
    open_ticket,
    respond,
    ticket_detail,
)
from central.watch.tracking import import_scans, read_tracking_file
from tests.support.watch import (
    PAID,
    H,
    M,
    bench_batch,
    bench_event,
    make_order,
    put_orders,
    ticks,
)

T = TypeVar("T")
T0 = PAID + 30 * H


def at(engine: Engine, moment: dt.datetime, step: Callable[[Watch], T], **rules: object) -> T:
    with engine.begin() as conn:
        return step(Watch(conn=conn, now=moment, rules=WatchRules.model_validate(rules)))


def a_ticket(engine: Engine, category: str = "complaint", **fields: object) -> int:
    put_orders(engine, make_order("A", paid_at=T0))
    values: dict[str, object] = {
        "category": category,
        "order_no": "A",
        "description": "arrived torn",
        "by": "amy",
    }
    values.update(fields)
    return at(engine, T0, lambda w: open_ticket(w, **values))  # type: ignore[arg-type]


def test_a_ticket_is_routed_by_category_with_a_10_minute_response_clock(engine: Engine) -> None:
    t_id = a_ticket(engine, "reissue")
    (t,) = list_tickets(engine)
    assert (t["id"], t["category"], t["dept"], t["state"]) == (t_id, "reissue", "warehouse", "open")
    assert t["respond_by"] == (T0 + 10 * M).isoformat()
    assert t["customer"] == "张* 138****5678"  # masked (C1)
    other = at(engine, T0, lambda w: open_ticket(w, category="return", description="x", by="a"))
    assert ticket_detail(engine, other)["dept"] == "customer_service"


def test_unanswered_it_repeats_climbs_at_10_minutes_and_a_response_stops_it(
    engine: Engine,
) -> None:
    t_id = a_ticket(engine)
    assert ticks(engine, T0 + 9 * M) == []
    fired = ticks(engine, T0 + 10 * M)
    assert [(a.kind, a.to, a.level) for a in fired] == [
        ("repeat", "customer_service", 1),
        ("escalated", "customer_service-head", 2),
    ]
    assert "no response within 10 min" in fired[1].message
    assert {a.dedup_key for a in fired} == {f"ticket:{t_id}"}
    at(engine, T0 + 12 * M, lambda w: respond(w, t_id, text="sorry, new one sent", by="amy"))
    assert ticks(engine, T0 + 5 * H) == []
    t = ticket_detail(engine, t_id)
    assert t["state"] == "responded" and t["level"] == 2
    assert [h["entry"] for h in t["history"]] == ["opened", "escalated", "response"]
    assert "(due " in t["history"][-1]["text"]  # answered late: the history says so


def test_the_states_in_order_and_closing_needs_the_customers_confirmation(
    engine: Engine,
) -> None:
    t_id = a_ticket(engine)
    with pytest.raises(TicketRefused, match="no response yet"):
        at(engine, T0, lambda w: close_ticket(w, t_id, confirmation="ok", by="amy"))
    at(engine, T0 + M, lambda w: acknowledge_ticket(w, t_id, by="amy"))
    with pytest.raises(TicketRefused, match="acknowledged already by amy"):
        at(engine, T0 + M, lambda w: acknowledge_ticket(w, t_id, by="bo"))
    # Acknowledged: no repeats, but the response clock still runs.
    fired = ticks(engine, T0 + 10 * M, T0 + 20 * M)
    assert [a.kind for a in fired] == ["escalated"]
    at(engine, T0 + 21 * M, lambda w: respond(w, t_id, text="refund offered", by="amy"))
    at(engine, T0 + 2 * H, lambda w: follow_up(w, t_id, text="refund paid", by="amy"))
    with pytest.raises(TicketRefused, match="customer's confirmation"):
        at(engine, T0 + 3 * H, lambda w: close_ticket(w, t_id, confirmation="  ", by="amy"))
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=T0 + 3 * H, rules=WatchRules())
        close_ticket(watch, t_id, confirmation="customer confirmed by phone", by="amy")
    assert [(a.kind, a.to) for a in watch.fired] == [("resolved", "customer_service-head")]
    with pytest.raises(TicketRefused, match="closed"):
        at(engine, T0 + 4 * H, lambda w: follow_up(w, t_id, text="more", by="amy"))
    t = ticket_detail(engine, t_id)
    assert t["state"] == "closed" and t["confirmation"] == "customer confirmed by phone"
    assert [h["entry"] for h in t["history"]] == [
        "opened", "acknowledged", "escalated", "response", "follow_up", "closed",
    ]  # fmt: skip
    assert ticks(engine, T0 + 9 * H) == []
    with pytest.raises(TicketNotFound):
        at(engine, T0, lambda w: respond(w, 999, text="x", by="amy"))


def test_ticket_history_is_append_only_in_the_database(engine: Engine) -> None:
    t_id = a_ticket(engine)
    for statement in (ticket_history.update().values(text="never"), ticket_history.delete()):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    assert [h["text"] for h in ticket_history_of(engine, t_id)] == ["arrived torn"]


def ticket_history_of(engine: Engine, t_id: int) -> list[dict[str, object]]:
    return list(ticket_detail(engine, t_id)["history"])


def test_an_mqtt_ack_of_a_ticket_acknowledges_it_and_obeys_the_allow_list(
    engine: Engine,
) -> None:
    rules = WatchRules.model_validate({"escalation": {"ticket": {"acknowledgers": ["cs-*"]}}})
    put_orders(engine, make_order("A", paid_at=T0))
    with engine.begin() as conn:
        t_id = open_ticket(
            Watch(conn=conn, now=T0, rules=rules), category="exchange", description="size",
            by="amy",
        )  # fmt: skip
    with pytest.raises(NotAllowed):
        acknowledge(engine, AlertAck(dedup_key=f"ticket:{t_id}", by="packer"), now=T0, rules=rules)
    done = acknowledge(
        engine, AlertAck(dedup_key=f"ticket:{t_id}", by="cs-li"), now=T0, rules=rules
    )
    assert done == f"ticket #{t_id} acknowledged by cs-li"
    assert ticket_detail(engine, t_id)["acknowledged_by"] == "cs-li"
    assert [a.kind for a in ticks(engine, T0 + 9 * M, rules=rules)] == []  # no repeats


def test_a_bench_return_inspection_goes_into_the_orders_open_return_ticket(
    engine: Engine,
) -> None:
    t_id = a_ticket(engine, "return")
    bench_event(
        engine, "bench-02", "return.inspected", at=T0 + H, order_no="A", tracking_no="SF9",
        outcome="damaged", items=[{"sku": "TEE-BLK-M", "qty": 1}], operator="0042",
    )  # fmt: skip
    last = ticket_history_of(engine, t_id)[-1]
    assert last["entry"] == "return_inspected" and last["by"] == "bench-02"
    assert "damaged (TEE-BLK-M x1)" in str(last["text"]) and "by 0042" in str(last["text"])
    # An order without an open return ticket: nothing is written anywhere.
    put_orders(engine, make_order("B", paid_at=T0))
    bench_event(
        engine, "bench-02", "return.inspected", at=T0 + H, order_no="B", tracking_no="",
        outcome="restock", items=[], operator=None,
    )  # fmt: skip
    assert len(ticket_history_of(engine, t_id)) == 2


def test_bad_ticket_input_is_refused_with_its_reason(engine: Engine) -> None:
    put_orders(engine, make_order("A", paid_at=T0))
    for fields, words in (
        ({"category": "refund"}, "unknown ticket category 'refund'"),
        ({"severity": "huge"}, "severity must be general or major"),
        ({"dept": "Customer Care"}, "dept must be lower-case"),
        ({"description": " "}, "description must not be empty"),
    ):
        values: dict[str, object] = {"category": "complaint", "description": "x", "by": "a"}
        values.update(fields)
        with pytest.raises(TicketRefused, match=words):
            at(engine, T0, lambda w, v=values: open_ticket(w, **v))  # type: ignore[arg-type]
    assert list_tickets(engine) == []


# --------------------------------------------------------------------------- tracking


def shipped(engine: Engine, order_no: str, tracking_no: str, when: dt.datetime) -> None:
    put_orders(engine, make_order(order_no, paid_at=when - H, tracking_no=tracking_no))
    bench_event(
        engine, "bench-01", "shipment.shipped", at=when, order_no=order_no,
        tracking_no=tracking_no,
    )  # fmt: skip


def stalled(engine: Engine) -> list[dict[str, object]]:
    return [x for x in list_exceptions(engine) if x["type"] == "logistics_stalled"]


def scan(tracking_no: str, moment: dt.datetime, status: str = "in transit") -> dict[str, str]:
    return {"tracking_no": tracking_no, "at": moment.isoformat(), "status": status,
            "location": "Shenzhen hub"}  # fmt: skip


def load(engine: Engine, tmp_path: Path, now: dt.datetime, *rows: dict[str, str]) -> object:
    path = tmp_path / "scans.json"
    path.write_text(json.dumps(list(rows)))
    scans, refused = read_tracking_file(path)
    assert refused == []
    return at(engine, now, lambda w: import_scans(w, scans))


def test_no_carrier_scan_within_24_hours_opens_logistics_stalled_once(
    engine: Engine, tmp_path: Path
) -> None:
    load(engine, tmp_path, T0, scan("SF-OTHER", T0))  # this site imports carrier scans
    shipped(engine, "A", "SF100", T0)
    ticks(engine, T0 + 23 * H)
    assert stalled(engine) == []
    ticks(engine, T0 + 24 * H, T0 + 40 * H)
    (x,) = stalled(engine)
    assert x["order_no"] == "A" and x["dept"] == "logistics"
    assert "SF100" in str(x["description"]) and "no carrier scan within 24 h" in str(
        x["description"]
    )


def test_a_carrier_scan_in_time_prevents_it_and_a_stall_opens_after_stalled_after(
    engine: Engine, tmp_path: Path
) -> None:
    shipped(engine, "A", "SF200", T0)
    result = load(engine, tmp_path, T0 + 5 * H, scan("SF200", T0 + 4 * H))
    assert (result.stored, result.known) == (1, 0)  # type: ignore[attr-defined]
    again = load(engine, tmp_path, T0 + 6 * H, scan("SF200", T0 + 4 * H))
    assert (again.stored, again.known) == (0, 1)  # type: ignore[attr-defined]
    ticks(engine, T0 + 30 * H, T0 + 4 * H + 47 * H)
    assert stalled(engine) == []
    ticks(engine, T0 + 4 * H + 48 * H)
    (x,) = stalled(engine)
    assert "no tracking update for 48 h" in str(x["description"])
    # A scan arriving later is written into its history, and delivery ends the watch.
    load(engine, tmp_path, T0 + 60 * H, scan("SF200", T0 + 59 * H, "delivered"))
    history = exception_detail(engine, int(str(x["id"])))["history"]
    assert history[-1]["by"] == "carrier" and "delivered" in history[-1]["text"]
    ticks(engine, T0 + 30 * 24 * H)
    assert len(stalled(engine)) == 1


def test_stalled_after_is_a_setting(engine: Engine, tmp_path: Path) -> None:
    shipped(engine, "A", "SF300", T0)
    rules = WatchRules.model_validate({"stalled_after": 12})
    with engine.begin() as conn:
        path = tmp_path / "s.json"
        path.write_text(json.dumps([scan("SF300", T0 + H)]))
        import_scans(Watch(conn=conn, now=T0 + H, rules=rules), read_tracking_file(path)[0])
    ticks(engine, T0 + 13 * H, rules=rules)
    assert len(stalled(engine)) == 1


def test_shipments_sent_in_one_batch_each_get_their_first_scan_timer(
    engine: Engine, tmp_path: Path
) -> None:
    """A backlog in one batch: a parcel the carrier scanned already needs no timer; a
    parcel confirmed twice is due 24 h after its first confirmation."""
    put_orders(engine, make_order("A"), make_order("B"), make_order("C"))
    load(engine, tmp_path, T0, scan("SF-C", T0))  # C's parcel was scanned before
    ship = "shipment.shipped"
    bench_batch(engine, "bench-01", [
        (ship, T0 + H, {"order_no": "A", "tracking_no": "SF-A"}),
        (ship, T0 + 2 * H, {"order_no": "B", "tracking_no": "SF-B"}),
        (ship, T0 + 3 * H, {"order_no": "C", "tracking_no": "SF-C"}),
        (ship, T0 + 3 * H, {"order_no": "A", "tracking_no": "SF-A"}),  # reprinted, re-sent
    ])  # fmt: skip
    ticks(engine, T0 + 25 * H - M)
    assert stalled(engine) == []
    ticks(engine, T0 + 25 * H)
    assert [x["order_no"] for x in stalled(engine)] == ["A"]  # due from its first time
    ticks(engine, T0 + 26 * H, T0 + 80 * H)
    assert sorted(str(x["order_no"]) for x in stalled(engine)) == ["A", "B", "C"]
    descriptions = {str(x["order_no"]): str(x["description"]) for x in stalled(engine)}
    assert "no carrier scan within 24 h" in descriptions["B"]
    assert "no tracking update for 48 h" in descriptions["C"]  # scanned, then silence


def test_a_site_without_carrier_scans_sees_no_stalls(engine: Engine) -> None:
    shipped(engine, "A", "SF400", T0)
    ticks(engine, T0 + 25 * H, T0 + 72 * H)
    assert stalled(engine) == []


def test_a_tracking_file_with_bad_rows_keeps_the_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "scans.csv"
    path.write_text(
        "tracking_no,at,status,location\n"
        "SF1,2026-03-02T10:00:00+08:00,picked up,Shenzhen\n"
        "SF2,yesterday,in transit,\n"
        ",2026-03-02T10:00:00Z,in transit,\n"
        "SF3,2026-03-02T10:00:00,in transit,\n"
    )
    scans, refused = read_tracking_file(path)
    assert [s.tracking_no for s in scans] == ["SF1"]
    assert scans[0].at == dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    assert refused == [
        "scans.csv line 3: at 'yesterday' is not an ISO 8601 time",
        "scans.csv line 4: tracking_no missing or longer than 64 characters",
        "scans.csv line 5: at '2026-03-02T10:00:00' has no time zone (add Z or +08:00)",
    ]


# --------------------------------------------------------------------------- the KPI


def test_the_timeout_kpi_per_day_shop_and_department(engine: Engine) -> None:
    put_orders(
        engine,
        make_order("A", paid_at=PAID),
        make_order("B", paid_at=PAID),
        make_order("C", paid_at=PAID, shop="tmall"),
    )
    # A packed and shipped in time; B and C never: their deadlines breach.
    bench_event(engine, "bench-01", "shipment.shipped", at=PAID + 2 * H, order_no="A")
    ticks(engine, PAID + 24 * H, PAID + 48 * H)
    zone = ZoneInfo("UTC")
    rows = timeout_kpi(engine, start=PAID, end=PAID + 72 * H, now=PAID + 72 * H, zone=zone)
    assert rows == [
        {"day": "2026-03-03", "shop": "pdd-main", "dept": "warehouse", "orders": 2,
         "timed_out": 1, "rate": 0.5},
        {"day": "2026-03-03", "shop": "tmall", "dept": "warehouse", "orders": 1,
         "timed_out": 1, "rate": 1.0},
    ]  # fmt: skip
    only = timeout_kpi(
        engine, start=PAID, end=PAID + 72 * H, now=PAID + 72 * H, zone=zone, shop="tmall"
    )
    assert [r["shop"] for r in only] == ["tmall"]
    # Before the deadlines are due nothing counts.
    assert timeout_kpi(engine, start=PAID, end=PAID + 72 * H, now=PAID + H, zone=zone) == []
