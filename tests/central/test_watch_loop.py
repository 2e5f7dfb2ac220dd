"""The watch inside ``central serve``: ticks at an injected clock, publishes the outbox,
takes acknowledgements over MQTT — and its due query is an index range scan."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.clock import ManualClock
from central.service import CentralService
from central.watch import WatchRules
from central.watch.exceptions import exception_detail
from central.watch.loop import WatchLoop
from central.watch.tables import timers
from central.watch.timers import due_query
from packline.devbroker import MosquittoBroker
from sync import topics
from tests.support.waiting import wait_for
from tests.support.watch import PAID, AlertListener, H, M, make_order, put_orders


@pytest.mark.mqtt
def test_the_watch_thread_ticks_at_its_clock_and_takes_mqtt_acks(
    engine: Engine, broker: MosquittoBroker
) -> None:
    site = f"loop-{uuid.uuid4().hex[:6]}"
    rules = WatchRules.model_validate(
        {"tick_every": "1s", "escalation": {"general": {"acknowledgers": ["sup-*"]}}}
    )
    put_orders(engine, make_order("A"))
    clock = ManualClock(PAID + 17 * H)
    service = CentralService(engine=engine, mqtt_url=broker.url, site=site)
    loop = WatchLoop(engine=engine, session=service.session, site=site, rules=rules, clock=clock)
    listener = AlertListener(url=broker.url, site=site)
    service.start()
    assert service.wait_connected(20)
    loop.start()
    try:
        clock.set(PAID + 24 * H)  # the thread's next tick sees the breach
        (opened,) = listener.wait_for(1)
        assert (opened["kind"], opened["order_no"], opened["at"]) == (
            "opened", "A", (PAID + 24 * H).isoformat(),
        )  # fmt: skip

        def ack(body: dict[str, object]) -> None:
            info = service.session.publish(topics.alert_ack(site), json.dumps(body).encode())
            assert info.wait(10)

        ack({"exception_id": opened["exception_id"], "by": "packer-3"})  # not on the list
        ack({"dedup_key": "exception:1", "by": "sup-li"})
        ack({"by": "sup-li"})  # not an acknowledgement: dropped, logged
        wait_for(lambda: exception_detail(engine, 1)["acknowledged_by"] == "sup-li",
                 what="the acknowledgement over MQTT")  # fmt: skip
        clock.set(PAID + 24 * H + 20 * M)  # a repeat was due at +15 min: acknowledged, none
        last = loop.last
        wait_for(lambda: loop.last is not last and loop.last is not None
                 and loop.last.now == clock.now(), what="a tick at the new time")  # fmt: skip
        assert [a["kind"] for a in listener.alerts()] == ["opened"]
    finally:
        loop.stop()
        service.stop()
        listener.close()


def test_due_timers_come_from_an_index_range_scan(engine: Engine) -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    rows = [
        {"kind": "deadline", "subject": f"O{i}:ship", "due_at": now + i * M,
         "next_fire_at": None if i % 3 == 0 else now + i * M, "rank": 10, "fired": 0,
         "data": {}}
        for i in range(1, 20_001)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(timers.insert(), rows)
        conn.exec_driver_sql("ANALYZE")
    query = due_query(now + 5 * M, limit=100)
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    compiled = query.compile(dialect=engine.dialect)
    params = compiled.construct_params()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            ordered = tuple(str(params[name]) for name in compiled.positiontup or ())
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", ordered).all()
            text = " ".join(str(r[-1]) for r in plan)
            assert "USING INDEX ix_timers_next_fire_at (next_fire_at<?)" in text, text
        else:
            plan = conn.exec_driver_sql(f"EXPLAIN {compiled}", params).all()
            text = " ".join(r[0] for r in plan)
            assert "Index Scan using ix_timers_next_fire_at" in text, text
        assert "SCAN timers" not in text and "Seq Scan" not in text, text
        assert len(conn.execute(query).all()) == 4  # O1, O2, O4, O5: O3 is finished
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).where(timers.c.next_fire_at.is_(None)))
        assert count.scalar() == 6_666
