"""Tickets and the timeout KPI over the real API, with the roles' limits."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from central.users import add_user, issue_token
from central.watch import tick
from tests.support.watch import PAID, H, make_order, put_orders
from tests.web.conftest import PASSWORD


def as_user(engine: Engine, name: str, role: str, dept: str | None = None) -> dict[str, str]:
    add_user(engine, name, role=role, password=PASSWORD, dept=dept)
    return {"Authorization": f"Bearer {issue_token(engine, name)}"}


@pytest.fixture
def client(live_url: str, engine: Engine, api_headers: dict[str, str]) -> Iterator[httpx.Client]:
    put_orders(engine, make_order("PDD-1"), make_order("PDD-2", shop="tmall"))
    with httpx.Client(base_url=live_url, timeout=30, headers=api_headers) as c:
        yield c


def test_a_ticket_through_its_steps(client: httpx.Client) -> None:
    made = client.post("/api/tickets", json={
        "category": "return", "order_no": "PDD-1", "description": "wrong size", "by": "cs.li",
    })  # fmt: skip
    assert made.status_code == 201, made.text
    t = made.json()
    assert (t["state"], t["dept"], t["customer"]) == ("open", "customer_service", "张* 138****5678")
    listed = client.get("/api/tickets", params={"open": "true"}).json()["tickets"]
    assert [x["id"] for x in listed] == [t["id"]] and "respond_seconds_left" in listed[0]
    base = f"/api/tickets/{t['id']}"
    no_confirmation = client.post(f"{base}/close", json={})
    assert no_confirmation.status_code == 409
    assert "customer's confirmation" in no_confirmation.json()["detail"]
    early = client.post(f"{base}/close", json={"confirmation": "ok"})
    assert early.status_code == 409 and "no response yet" in early.json()["detail"]
    assert client.post(f"{base}/respond", json={"text": "label sent"}).json()["state"] == (
        "responded"
    )
    assert client.post(f"{base}/follow-up", json={"text": "parcel back"}).status_code == 200
    refused = client.post(f"{base}/close", json={"confirmation": " "})
    assert refused.status_code == 409 and "confirmation" in refused.json()["detail"]
    closed = client.post(f"{base}/close", json={"confirmation": "buyer confirmed in chat"})
    assert closed.json()["state"] == "closed"
    entries = [h["entry"] for h in client.get(base).json()["history"]]
    assert entries == ["opened", "response", "follow_up", "closed"]
    assert client.get("/api/tickets/999").status_code == 404
    for body in ({"category": "refund", "description": "x"}, {"category": "return"}):
        assert client.post("/api/tickets", json=body).status_code == 422
    unknown = client.post("/api/tickets", json={"category": "return", "order_no": "NOPE",
                                                "description": "x"})  # fmt: skip
    assert unknown.status_code == 404 and "no order" in unknown.json()["detail"]


def test_roles_on_tickets_and_the_kpi(client: httpx.Client, engine: Engine) -> None:
    packer = as_user(engine, "pat", "packer")
    cs = as_user(engine, "cs.sup", "supervisor", dept="customer_service")
    wh = as_user(engine, "wh.sup", "supervisor", dept="warehouse")
    manager = as_user(engine, "mia", "manager")
    body = {"category": "complaint", "order_no": "PDD-1", "description": "late"}
    assert client.post("/api/tickets", json=body, headers=packer).status_code == 403
    assert client.post("/api/tickets", json=body, headers=wh).status_code == 403
    made = client.post("/api/tickets", json=body, headers=cs)
    assert made.status_code == 201 and made.json()["opened_by"] == "cs.sup"
    base = f"/api/tickets/{made.json()['id']}"
    assert client.post(f"{base}/respond", json={"text": "x"}, headers=wh).status_code == 403
    assert client.post(f"{base}/respond", json={"text": "x"}, headers=packer).status_code == 403
    assert client.post(f"{base}/ack", json={}, headers=cs).json()["acknowledged_by"] == "cs.sup"
    as_other = client.post(f"{base}/respond", json={"text": "x", "by": "boss"}, headers=cs)
    assert as_other.status_code == 403
    assert client.post(f"{base}/respond", json={"text": "ok"}, headers=manager).status_code == 200
    assert client.get("/api/kpi/timeouts", headers=packer).status_code == 403
    assert client.get("/api/kpi/timeouts", headers=manager).status_code == 200


def test_the_timeout_kpi(client: httpx.Client, engine: Engine) -> None:
    tick(engine, now=PAID + 30 * H, site="webtest")  # both orders missed their pack-by
    got = client.get(
        "/api/kpi/timeouts", params={"from": "2026-03-01", "to": "2026-03-05", "shop": "tmall"}
    ).json()
    assert got["from"] == "2026-03-01" and got["rows"] == [
        {"day": "2026-03-03", "shop": "tmall", "dept": "warehouse", "orders": 1,
         "timed_out": 1, "rate": 1.0},
    ]  # fmt: skip
    bad = client.get("/api/kpi/timeouts", params={"from": "2026-03-05", "to": "2026-03-01"})
    assert bad.status_code == 422
    assert client.get("/api/kpi/timeouts", params={"from": "monday"}).status_code == 422
