"""The pages in Chromium: log in, the floor's tiles live, orders, XSS shown as text,
role checks; a screenshot of each page goes to the test's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from central.ingest import record_status, store_batch
from central.users import add_user
from sync.messages import StationStatus
from tests.support.central import batch, event
from tests.support.watch import make_order, put_orders
from tests.web.conftest import PASSWORD, log_in

XSS = "<script>alert(1)</script>"

pytestmark = pytest.mark.browser


def _page(browser: Browser, *, width: int = 1920, height: int = 1080) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
    return page, errors


def test_floor_tiles_change_live(
    browser: Browser, live_url: str, engine: Engine, tmp_path: Path
) -> None:
    add_user(engine, "sup-wang", role="supervisor", dept="warehouse", password=PASSWORD)
    page, errors = _page(browser)
    log_in(page, live_url, "sup-wang")
    expect(page.locator("header.top .user")).to_contain_text("sup-wang")
    expect(page.locator("header.top")).to_contain_text("webtest")  # the site

    tile = page.locator(".tile[data-station='bench-01']")
    # Its oldest unsent record is 47 min old: to check, and it says why.
    expect(tile).to_have_attribute("data-level", "check")
    expect(tile.locator(".level")).to_contain_text("CHECK")
    expect(tile.locator(".note")).to_have_text("! Records not reaching central")
    expect(tile.locator(".printer")).to_have_text("Ready")
    expect(tile.locator(".backlog")).to_have_text("backlog 2 events, oldest 47 min")
    off = page.locator(".tile[data-station='bench-02']")
    expect(off).to_have_attribute("data-level", "offline")
    expect(off.locator(".level")).to_contain_text("OFFLINE")  # a word and an icon, not colour only
    expect(off.locator(".printer")).to_contain_text("unknown since")
    expect(page.locator("table.shipments")).to_contain_text("PDD-FIRST")
    expect(page.locator("#live")).to_have_text("live", timeout=20_000)
    expect(page.locator("#disconnected")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "floor-1080p.png"), full_page=True)

    # Without a reload: a shipment, then the printer running out of labels.
    page.evaluate("window.__sameDocument = true")
    store_batch(engine, batch("bench-01", event("bench-01", 2, order_no="PDD-LIVE-2")))
    expect(page.locator("table.shipments tbody tr").first).to_contain_text(
        "PDD-LIVE-2", timeout=20_000
    )
    record_status(
        engine,
        StationStatus(
            station="bench-01", online=True, printer="no media", scanner="ready",
            labels_left=0, label_size="62", backlog=0, at_wall=1_800_000_100.0,
        ),
        site="webtest",
    )  # fmt: skip
    expect(tile).to_have_attribute("data-level", "fault", timeout=20_000)
    expect(tile.locator(".printer")).to_have_text("Out of labels — load a new 62 mm roll")
    expect(tile.locator(".level")).to_contain_text("FAULT")
    expect(tile.locator(".labels")).to_contain_text("low")
    record_status(engine, StationStatus(station="bench-01", online=False), site="webtest")
    expect(tile).to_have_attribute("data-level", "offline", timeout=20_000)
    expect(tile.locator(".printer")).to_contain_text("unknown since")
    assert page.evaluate("window.__sameDocument") is True
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(tmp_path / "floor-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the floor is {width} px wide on a 390 px phone"
    assert errors == []
    page.close()


def test_orders_show_hostile_text_as_text_and_mask_for_packers(
    browser: Browser, live_url: str, engine: Engine, tmp_path: Path
) -> None:
    put_orders(
        engine,
        make_order("PDD-XSS", shop=XSS, recipient={"name": XSS, "phone": "13812345678",
                                                   "address": "科技园 8 号"}),
        make_order("PDD-HELD", status="held"),
    )  # fmt: skip
    add_user(engine, "packer-1", role="packer", password=PASSWORD)
    page, errors = _page(browser)
    log_in(page, live_url, "packer-1")
    page.goto(live_url + "/orders?q=PDD-XSS")
    row = page.locator("table.orders tr[data-order='PDD-XSS']")
    expect(row.locator(".shop")).to_have_text(XSS)  # shown, as text
    expect(row.locator(".recipient")).to_contain_text("138****5678")
    expect(page.locator("table.blocked")).to_contain_text("PDD-HELD")
    page.screenshot(path=str(tmp_path / "orders.png"), full_page=True)
    page.goto(live_url + "/orders/PDD-XSS")
    expect(page.locator("h1")).to_contain_text("PDD-XSS")
    expect(page.locator(".recipient")).not_to_contain_text("13812345678")
    expect(page.locator("table.timeline")).to_contain_text("imported")
    page.screenshot(path=str(tmp_path / "order.png"), full_page=True)
    assert page.locator("script:not([src])").count() == 0  # nothing injected ran or stayed

    # A packer may not take exception steps: the server says 403 to the page's own
    # request, CSRF header and all.
    status = page.evaluate("window.packline.post('/api/exceptions/1/ack', {}).then(r => r.status)")
    assert status == 403
    assert errors == []  # no alert(1) dialog, no script error
    page.close()


def test_log_in_page_and_a_wrong_password(
    browser: Browser, live_url: str, engine: Engine, tmp_path: Path
) -> None:
    page, errors = _page(browser)
    page.goto(live_url + "/orders")
    expect(page).to_have_url(live_url + "/login?next=%2Forders")
    page.screenshot(path=str(tmp_path / "login.png"))
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "not it")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("Wrong user name or password")
    assert errors == []
    page.close()
