"""The status page in Chromium: stations and shipments shown, a new shipment appears live."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy.engine import Engine

from central.ingest import store_batch
from central.users import add_user
from tests.support.central import batch, event
from tests.web.conftest import PASSWORD, log_in

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.browser
def test_page_shows_stations_and_a_new_shipment_live(
    browser: Browser, live_url: str, engine: Engine
) -> None:
    add_user(engine, "sup-wang", role="supervisor", dept="warehouse", password=PASSWORD)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_url, "sup-wang")

    station = page.locator("tr[data-station='bench-01']")
    expect(station).to_contain_text("online")
    expect(station).to_contain_text("ready")
    # The backlog in words, its age by the station's own clock (not a seq).
    expect(station.locator("td.backlog")).to_have_text("backlog 2 events, oldest 47 min")
    expect(page.locator("tr[data-station='bench-02']")).to_contain_text("offline")
    expect(page.locator("table.shipments")).to_contain_text("PDD-FIRST")
    expect(page.locator("#live")).to_have_text("live", timeout=20_000)

    # A shipment stored by ingest shows up without a reload.
    page.evaluate("window.__sameDocument = true")
    store_batch(engine, batch("bench-01", event("bench-01", 2, order_no="PDD-LIVE-2")))
    expect(page.locator("table.shipments tbody tr").first).to_contain_text(
        "PDD-LIVE-2", timeout=20_000
    )
    backlog = station.locator("td.backlog")
    expect(backlog).to_have_attribute("title", "acknowledged up to seq 2")  # moved too
    assert page.evaluate("window.__sameDocument") is True
    assert errors == []
    page.close()
