"""The tickets pages over a real uvicorn: who may see and act, the forms' steps, the
refusals in words, and text shown as text."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine

from central.watch.tickets import ticket_detail
from tests.support.watch import make_order, put_orders
from tests.web.test_pages_api import as_, tokens  # noqa: F401  (fixtures)


def test_packers_do_not_see_tickets(as_: dict[str, httpx.Client]) -> None:  # noqa: F811
    assert as_["pk"].get("/tickets").status_code == 403
    assert as_["sup.cs"].get("/tickets").status_code == 200
    assert "No open tickets." in as_["mgr"].get("/tickets").text


def test_a_ticket_through_the_forms(as_: dict[str, httpx.Client], engine: Engine) -> None:  # noqa: F811
    put_orders(engine, make_order("PDD-7"))
    cs = as_["sup.cs"]
    xss = "<script>alert(1)</script> wrong size"
    made = cs.post("/tickets", data={"category": "return", "order_no": "PDD-7", "description": xss})
    assert made.status_code == 303, made.text
    page_url = made.headers["location"]
    ticket_id = int(page_url.rsplit("/", 1)[1])
    page = cs.get(page_url).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; wrong size" in page
    assert "<script>alert(1)</script>" not in page
    assert "first response" in page.lower() and "Record response" in page
    listed = cs.get("/tickets").text
    assert f'id="t{ticket_id}"' in listed and "customer_service" in listed

    # Another department's supervisor may look but not act.
    other = as_["sup.wh"].post(f"/tickets/{ticket_id}/respond", data={"text": "hi"})
    assert other.status_code == 403 and "may not act for department customer_service" in other.text
    assert "You may view this ticket" in as_["sup.wh"].get(page_url).text

    assert cs.post(f"/tickets/{ticket_id}/ack", data={}).status_code == 303
    early = cs.post(f"/tickets/{ticket_id}/close", data={"confirmation": "ok"})
    assert early.status_code == 409 and "no response yet" in early.text
    assert cs.post(f"/tickets/{ticket_id}/respond",
                   data={"text": "return label sent"}).status_code == 303  # fmt: skip
    assert cs.post(f"/tickets/{ticket_id}/follow-up",
                   data={"text": "parcel back"}).status_code == 303  # fmt: skip
    refused = cs.post(f"/tickets/{ticket_id}/close", data={"confirmation": " "})
    assert refused.status_code == 409 and "customer&#39;s confirmation" in refused.text
    done = cs.post(f"/tickets/{ticket_id}/close", data={"confirmation": "buyer confirmed"})
    assert done.status_code == 303
    t = ticket_detail(engine, ticket_id)
    assert (t["state"], t["confirmation"], t["acknowledged_by"]) == (
        "closed", "buyer confirmed", "sup.cs",
    )  # fmt: skip
    assert [h["entry"] for h in t["history"]] == [
        "opened", "acknowledged", "response", "follow_up", "closed",
    ]  # fmt: skip
    assert cs.get("/tickets/999").status_code == 404


def test_a_supervisor_opens_only_their_departments_tickets(
    as_: dict[str, httpx.Client],  # noqa: F811
) -> None:
    refused = as_["sup.wh"].post("/tickets", data={"category": "complaint", "description": "x"})
    assert refused.status_code == 403 and "may not open complaint tickets" in refused.text
    bad = as_["mgr"].post("/tickets", data={"category": "refund", "description": "x"})
    assert bad.status_code == 409 and "unknown ticket category" in bad.text
