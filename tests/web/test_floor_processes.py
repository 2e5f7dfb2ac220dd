"""The floor page in Debian's Chromium against real processes: a private Mosquitto,
``packline central serve`` and ``packline edge run`` reading a pty as its scanner.

A station agent killed (SIGKILL, as a power cut ends it) turns its tile offline by its
last will, and a parcel packed at the bench appears on the floor, both without a
reload. Screenshots of each state go to tests/_output/<test>/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from central.db import open_db
from central.users import add_user
from packline.devbroker import MosquittoBroker
from packline.samples import packing_scans, sample_orders
from tests.support.browser import screenshot
from tests.support.processes import Central, Station
from tests.support.waiting import wait_for
from tests.web.conftest import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.mqtt, pytest.mark.slow]

SITE = "floor"
STATION = "bench-11"
SUPERVISOR = "sup-wang"

#: How long the page may take to follow a change another process made: the agent's
#: next pump, central's ingest, the page's stream poll and the fragment's fetch.
LIVE = 30_000


@pytest.fixture
def orders() -> list[dict[str, Any]]:
    return sample_orders(2, prefix="FLOOR")


@pytest.fixture
def central(
    tmp_path: Path, own_broker: MosquittoBroker, orders: list[dict[str, Any]]
) -> Iterator[Central]:
    c = Central(workdir=tmp_path, mqtt_url=own_broker.url, site=SITE)
    c.load_orders(orders)
    try:  # a start that never got healthy still has a process to end
        c.start()
        engine = open_db(c.db_url)
        try:
            add_user(engine, SUPERVISOR, role="supervisor", dept="warehouse", password=PASSWORD)
        finally:
            engine.dispose()
        yield c
    finally:
        c.stop()


@pytest.fixture
def station(
    tmp_path: Path, own_broker: MosquittoBroker, central: Central, orders: list[dict[str, Any]]
) -> Iterator[Station]:
    s = Station(workdir=tmp_path, name=STATION, mqtt_url=own_broker.url, site=SITE)
    try:  # a failed start must not leave the agent running (it holds its pty)
        s.start()
        wait_for(lambda: s.orders() == len(orders), what="orders downlinked to the station")
        s.ready()
        s.login()
        yield s
    finally:
        s.close()


def _floor(browser: Browser, central: Central) -> tuple[Page, list[str]]:
    """The floor, logged in as the supervisor, its event stream connected."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, central.url, SUPERVISOR)
    expect(page.locator("#live")).to_have_text("live", timeout=LIVE)
    return page, errors


def _online_tile(page: Page) -> Locator:
    tile = page.locator(f".tile[data-station='{STATION}']")
    # The agent's first status may reach central after the page was served.
    expect(tile).to_have_attribute("data-level", "ok", timeout=LIVE)
    expect(tile.locator(".level")).to_contain_text("✔ OK")
    expect(tile.locator(".since")).to_contain_text("online since")
    expect(tile.locator(".printer")).to_have_text("Ready")
    return tile


def test_a_killed_agent_turns_its_tile_offline_without_a_reload(
    browser: Browser, central: Central, station: Station, shots: Path
) -> None:
    page, errors = _floor(browser, central)
    tile = _online_tile(page)
    expect(tile.locator(".packer")).to_contain_text("0042")  # the badge scanned at start
    expect(tile.locator(".retire")).to_have_count(0)  # a supervisor: no admin's button
    screenshot(page, shots, "online")

    page.evaluate("window.__noReload = 1")
    station.kill()  # no orderly goodbye: only the broker's last will says it is gone

    expect(tile).to_have_attribute("data-level", "offline", timeout=LIVE)
    # Stands out without colour: an icon and a word, and nothing claims "ready".
    expect(tile.locator(".level")).to_have_text("✖ OFFLINE")
    expect(tile).to_have_class("tile level-offline")
    expect(tile.locator(".since")).to_contain_text("offline since")
    expect(tile.locator(".printer")).to_contain_text("unknown since")
    expect(tile.locator(".scanner")).to_contain_text("unknown since")
    expect(tile.locator(".packer")).to_have_text("—")
    expect(page.locator("h2 .summary")).to_contain_text("0 of 1 online")
    screenshot(page, shots, "offline")
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"
    assert errors == []


def test_a_scan_at_the_station_appears_on_the_floor_without_a_reload(
    browser: Browser,
    central: Central,
    station: Station,
    orders: list[dict[str, Any]],
    shots: Path,
) -> None:
    order = orders[0]
    page, errors = _floor(browser, central)
    tile = _online_tile(page)
    expect(page.locator("table.shipments")).to_have_count(0)
    expect(page.locator("#shipments-h + p.empty")).to_have_text("No shipments yet.")
    screenshot(page, shots, "before-scan")

    page.evaluate("window.__noReload = 1")
    last_scan = tile.locator(".last-scan").inner_text()
    station.scan_and_wait(order["order_no"])  # the order's waybill prints; packing starts
    expect(tile.locator(".order")).to_have_text(order["order_no"], timeout=LIVE)
    expect(tile.locator(".last-scan")).not_to_have_text(last_scan)
    expect(tile.locator(".last-scan")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    screenshot(page, shots, "packing")

    for code in packing_scans(order)[1:]:  # each item, then it ships by itself
        station.scan_and_wait(code)
    row = page.locator("table.shipments tbody tr").first
    expect(row.locator(".order")).to_have_text(order["order_no"], timeout=LIVE)
    expect(row.locator(".tracking")).to_have_text(order["tracking_no"])
    expect(row).to_contain_text(STATION)
    parcels = order.get("parcels") or 1
    count = parcels if isinstance(parcels, int) else len(parcels)
    expect(page.locator("table.shipments tbody tr")).to_have_count(count)
    expect(tile.locator(".order")).to_have_count(0, timeout=LIVE)  # the bench is free again
    screenshot(page, shots, "shipped")
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"
    assert errors == []
