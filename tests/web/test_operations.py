"""Operations: /healthz and HEAD, /metrics, the vendored API docs, /api/floor words."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from central.ingest import record_status
from central.watch.reactor import react_pending
from sync.messages import StationStatus


@pytest.fixture
def client(live_url: str, api_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=30, headers=api_headers) as c:
        yield c


def test_head_works_on_healthz_and_the_floor(live_url: str, client: httpx.Client) -> None:
    assert client.head("/healthz").status_code == 200
    assert client.head("/").status_code == 200
    with httpx.Client(base_url=live_url) as anonymous:
        assert anonymous.head("/healthz").status_code == 200  # monitors need no log-in
        assert anonymous.head("/").status_code == 303  # to the log-in form
        assert anonymous.get("/metrics").status_code == 200


def test_metrics(client: httpx.Client, engine: Engine) -> None:
    made = client.post("/api/exceptions", json={"type": "damaged", "description": "x"})
    assert made.status_code == 201
    resp = client.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'packline_station_backlog_events{station="bench-01"} 2.0' in text
    oldest = re.search(r'packline_station_oldest_unsent_seconds\{station="bench-01"\} (\S+)', text)
    assert oldest is not None and float(oldest.group(1)) >= 47 * 60
    assert 'packline_station_online{station="bench-02"} 0.0' in text
    assert 'packline_open_exceptions{severity="general"} 1.0' in text
    assert "packline_events_received_total 1.0" in text
    assert 'packline_alerts_sent_total{severity="major"} 0.0' in text
    assert 'packline_dead_letters_total{reason="invalid_value"} 0.0' in text
    # Stored and acknowledged, not yet reacted to by the watch; then reacted to.
    assert 'packline_watch_waiting_events{station="bench-01"} 1.0' in text
    assert react_pending(engine) == 1
    assert 'packline_watch_waiting_events{station="bench-01"} 0.0' in client.get("/metrics").text


def test_api_docs_load_nothing_from_outside(client: httpx.Client) -> None:
    for path in ("/api/docs", "/api/redoc"):
        html = client.get(path).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert urls and all(u.startswith("/") for u in urls), (path, urls)
        assert "fonts.googleapis" not in html and "cdn" not in html.lower()
        for url in urls:
            assert client.get(url).status_code == 200, url
    assert client.get("/openapi.json").json()["paths"]["/api/floor"]


def test_floor_api_says_states_in_words(client: httpx.Client, engine: Engine) -> None:
    record_status(
        engine,
        StationStatus(
            station="bench-03", online=True, printer="cover open", scanner="gone",
            labels_left=12, operator="OP-7", order_in_progress="PDD-9",
            at_wall=1_800_000_000.0,
        ),
        site="webtest",
    )  # fmt: skip
    record_status(engine, StationStatus(station="elsewhere-1", online=True), site="another-site")
    floor = client.get("/api/floor").json()
    tiles = {t["station"]: t for t in floor["stations"]}
    assert "elsewhere-1" not in tiles  # only the site served
    three = tiles["bench-03"]
    assert three["level"] == "fault" and three["level_word"] == "FAULT"
    assert (
        three["printer_words"] == "Cover open"
        and three["printer_fix"] == "close the printer's cover"
    )
    assert three["scanner_words"] == "Scanner unplugged"
    assert three["labels_low"] is True
    assert (three["packer"], three["order_in_progress"]) == ("OP-7", "PDD-9")
    off = tiles["bench-02"]
    assert off["level"] == "offline" and off["printer_state"] == "unknown"
    assert off["printer_words"] == "Unknown"  # never the last "ready"
    # Worst first.
    assert floor["stations"][0]["level"] in ("offline", "fault")
    assert floor["summary"]["total"] == 3 and floor["summary"]["offline"] == 1
