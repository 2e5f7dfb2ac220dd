"""The watch's JSON API over a real uvicorn: exceptions, alerts, deadlines."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from central.settings import CentralSettings
from central.watch import tick
from tests.support.watch import PAID, H, make_order, put_orders


@pytest.fixture
def client(live_url: str, engine: Engine, api_headers: dict[str, str]) -> Iterator[httpx.Client]:
    put_orders(engine, make_order("PDD-1"), make_order("PDD-2"), make_order("PDD-3"))
    tick(engine, now=PAID + 18 * H, site="webtest")  # warnings for all three
    put_orders(engine, make_order("PDD-3", paid_at=PAID - 10 * H))
    tick(engine, now=PAID + 19 * H, site="webtest")  # PDD-3 now overdue
    with httpx.Client(base_url=live_url, timeout=30, headers=api_headers) as c:
        yield c


def test_deadlines_by_state(client: httpx.Client) -> None:
    warned = client.get("/api/deadlines", params={"state": "warned"}).json()["deadlines"]
    assert [(d["order_no"], d["which"]) for d in warned] == [("PDD-1", "pack"), ("PDD-2", "pack")]
    assert warned[0]["due_at"] == "2026-03-03T00:00:00+00:00"
    assert isinstance(warned[0]["seconds_left"], int)
    breached = client.get("/api/deadlines", params={"state": "breached"}).json()["deadlines"]
    assert [(d["order_no"], d["which"], d["exception_id"]) for d in breached] == [
        ("PDD-3", "pack", 1),
    ]
    bad = client.get("/api/deadlines", params={"state": "late"})
    assert bad.status_code == 422 and "state must be one of" in bad.json()["detail"]


def test_exceptions_list_detail_and_steps(client: httpx.Client) -> None:
    (x,) = client.get("/api/exceptions").json()["exceptions"]
    for field in ("id", "type", "order_no", "state", "severity", "dept", "level", "opened_at"):
        assert field in x
    assert (x["type"], x["order_no"], x["state"]) == ("shipping_delay", "PDD-3", "open")
    one = client.get(f"/api/exceptions/{x['id']}").json()
    assert [h["entry"] for h in one["history"]] == ["opened"]
    assert client.get("/api/exceptions/99").status_code == 404
    ack = client.post(f"/api/exceptions/{x['id']}/ack", json={"by": "li.wei"})
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    again = client.post(f"/api/exceptions/{x['id']}/ack", json={"by": "li.wei"})
    assert again.status_code == 409 and "acknowledged already" in again.json()["detail"]
    plan = client.post(f"/api/exceptions/{x['id']}/plan", json={"text": "ship first", "by": "li"})
    assert plan.json()["state"] == "plan_posted"
    no_report = client.post(f"/api/exceptions/{x['id']}/resolve", json={"by": "li", "cause": "x"})
    assert no_report.status_code == 409 and "action, outcome missing" in no_report.json()["detail"]
    done = client.post(f"/api/exceptions/{x['id']}/resolve",
                       json={"by": "li", "cause": "late wave", "action": "shipped",
                             "outcome": "on the 14:00 truck"})  # fmt: skip
    assert done.json()["state"] == "resolved"
    closed = client.post(f"/api/exceptions/{x['id']}/close", json={"by": "boss"})
    assert closed.json()["state"] == "closed"
    assert client.get("/api/exceptions", params={"open": "true"}).json()["exceptions"] == []


def test_open_an_exception_and_its_alert_is_listed(client: httpx.Client) -> None:
    made = client.post("/api/exceptions", json={
        "type": "address_change", "order_no": "PDD-1", "description": "buyer moved",
        "by": "cs.wang",
    })  # fmt: skip
    assert made.status_code == 201
    x = made.json()
    assert (x["dept"], x["customer"], x["found_by"]) == ("customer_service", "张* 138****5678",
                                                        "cs.wang")  # fmt: skip
    alerts = client.get("/api/alerts", params={"exception_id": x["id"]}).json()["alerts"]
    assert [(a["kind"], a["to"], a["published_at"]) for a in alerts] == [
        ("opened", "customer_service", None),  # waits in the outbox for the publisher
    ]
    for body, words in (
        ({"type": "lost", "description": "x", "by": "a"}, "unknown exception type"),
        ({"type": "damaged", "order_no": "NOPE", "description": "x", "by": "a"}, "no order"),
    ):
        refused = client.post("/api/exceptions", json=body)
        assert refused.status_code == 422 and words in refused.json()["detail"]
    assert client.post("/api/exceptions", json={"type": "damaged", "by": "a"}).status_code == 422
    newest = client.get("/api/alerts", params={"limit": 1}).json()["alerts"]
    assert newest[0]["exception_id"] == x["id"]


def test_api_acks_follow_the_allow_list(
    tmp_path: object, engine: Engine, api_headers: dict[str, str]
) -> None:
    import asyncio

    from web.app import create_app

    settings = CentralSettings.model_validate(
        {"db_url": str(engine.url), "site": "webtest",
         "escalation": {"general": {"acknowledgers": ["sup-*"]}}}
    )  # fmt: skip
    put_orders(engine, make_order("PDD-1"))
    # The exception keeps the policy it opened under, allow-list included.
    tick(engine, now=PAID + 25 * H, site="webtest", rules=settings.rules())
    app = create_app(engine=engine, settings=settings, version="9.9.9")

    async def post(path: str, body: dict[str, object]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://central", headers=api_headers
        ) as c:
            return await c.post(path, json=body)

    refused = asyncio.run(post("/api/alerts/ack", {"exception_id": 1, "by": "packer-9"}))
    assert refused.status_code == 403 and "packer-9 may not" in refused.json()["detail"]
    refused = asyncio.run(post("/api/exceptions/1/ack", {"by": "packer-9"}))
    assert refused.status_code == 403
    done = asyncio.run(post("/api/alerts/ack", {"dedup_key": "exception:1", "by": "sup-li"}))
    assert done.status_code == 200 and done.json() == {
        "acknowledged": "exception #1 acknowledged by sup-li"
    }
    bad = asyncio.run(post("/api/alerts/ack", {"by": "sup-li"}))
    assert bad.status_code == 422
