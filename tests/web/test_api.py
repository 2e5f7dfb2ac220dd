"""The JSON API, health check, page and event stream, served by a real uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.ingest import store_batch
from central.settings import CentralSettings
from packline.devbroker import free_port
from tests.support.central import batch, event
from web.app import create_app


@pytest.fixture
def client(live_url: str, api_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=30, headers=api_headers) as c:
        yield c


def test_healthz(client: httpx.Client) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok" and resp.json()["db"] == "ok"
    assert resp.json()["version"] == "9.9.9"  # the version the app was given


def test_healthz_reports_a_broken_database(settings: CentralSettings) -> None:
    gone = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    app = create_app(engine=gone, settings=settings, version="9.9.9")
    transport = httpx.ASGITransport(app=app)

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://central") as c:
            return await c.get("/healthz")

    resp = asyncio.run(get())
    assert resp.status_code == 503
    assert resp.json()["status"] == "error"
    assert "refused" in resp.json()["db"]


def test_api_stations(client: httpx.Client) -> None:
    stations = {s["station"]: s for s in client.get("/api/stations").json()["stations"]}
    one = stations["bench-01"]
    assert one["online"] is True
    assert (one["printer"], one["scanner"], one["labels_left"], one["backlog"]) == (
        "ready", "ok", 180, 2,
    )  # fmt: skip
    assert one["acked_seq"] == 1
    assert one["backlog_text"] == "backlog 2 events, oldest 47 min"
    assert one["last_seen"].endswith("+00:00")
    assert stations["bench-02"]["online"] is False


def test_api_shipments_newest_first_without_recipient(client: httpx.Client, engine: Engine) -> None:
    store_batch(engine, batch("bench-01", event("bench-01", 2, order_no="PDD-SECOND")))
    shipments = client.get("/api/shipments", params={"limit": 10}).json()["shipments"]
    assert [s["order_no"] for s in shipments] == ["PDD-SECOND", "PDD-FIRST"]
    assert shipments[0]["tracking_no"] == "SF0000000002"
    assert not any("recipient" in key for s in shipments for key in s)
    assert len(client.get("/api/shipments", params={"limit": 1}).json()["shipments"]) == 1
    assert client.get("/api/shipments", params={"limit": 0}).status_code == 422


def test_page_lists_stations_and_shipments(client: httpx.Client) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    html = resp.text
    assert "bench-01" in html and "bench-02" in html
    assert "PDD-FIRST" in html and "SF0000000001" in html
    assert "1 of 2 online" in html
    assert 'src="/static/live.js"' in html
    assert "13812345678" not in html
    fragment = client.get("/fragments/status").text
    assert "PDD-FIRST" in fragment and "<html" not in fragment
    assert client.get("/static/live.js").status_code == 200


def test_event_stream_says_hello_then_changed(client: httpx.Client, engine: Engine) -> None:
    with client.stream("GET", "/events") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: hello"
        store_batch(engine, batch("bench-01", event("bench-01", 2)))
        assert next(line for line in lines if line.startswith("event:")) == "event: changed"
