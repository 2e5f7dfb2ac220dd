"""The packer's screen in Chromium, served by a real ``packline edge run``.

The agent reads a pty as its serial scanner and prints on the shipped fake Brother QL;
the test types what a packer scans and watches the page change without a reload: an
order's lines counting up, a wrong item turning it to ``alarm`` with the reason in
words, ``CMD-OK`` bringing it back, ``done`` once the parcels shipped, and the notice
while the agent is killed and restarted. A screenshot of each state, at 1080p and on
the 7-inch 800×480 display, is left in ``tests/_output/kiosk/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from drivers.fakes.ql import FakeQLPrinter
from packline.devbroker import MosquittoBroker
from packline.samples import packing_scans, sample_orders
from tests.support.browser import OUTPUT, chromium, screenshot
from tests.support.cli import run_packline
from tests.support.processes import Station

pytestmark = [pytest.mark.browser, pytest.mark.mqtt, pytest.mark.slow]

SHOTS = OUTPUT / "kiosk"
WAIT = 20_000  # ms: a scan through the pty, the agent, the stream and the page
SIZES = {"1080p": {"width": 1920, "height": 1080}, "7inch": {"width": 800, "height": 480}}
WRONG_ITEM = "6900000000000"  # a valid EAN-13 that is in no order


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeQLPrinter]:
    with FakeQLPrinter(out_dir=tmp_path / "fake-ql", label="62", slow=0.01) as printer:
        yield printer


def kiosk_order() -> dict[str, Any]:
    """An order of at least three items in two parcels, due soon."""
    order = next(o for o in sample_orders(20, prefix="KIO") if _items(o) >= 3)
    now = datetime.now(UTC)
    order["parcels"] = 2
    order["pack_by"] = (now + timedelta(minutes=40)).isoformat()
    order["ship_by"] = (now + timedelta(hours=3)).isoformat()
    return order


def _items(order: dict[str, Any]) -> int:
    return sum(int(line["qty"]) for line in order["lines"])


def station_with(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter, orders: list[dict[str, Any]]
) -> Station:
    station = Station(
        workdir=tmp_path,
        name="bench-k",
        mqtt_url=broker.url,
        site="kiosk",
        printer=fake.url,
        settings={"print_packing_list": False},
    )
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(orders, ensure_ascii=False))
    done = run_packline(
        *("edge", "orders", "import", file, "--config", station.config),
        *("--station", station.name, "--data-dir", station.data),
    )
    assert done.returncode == 0, done.stderr
    return station


def open_pages(browser: Browser, url: str, errors: list[str]) -> dict[str, Page]:
    pages = {}
    for size, viewport in SIZES.items():
        page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        page.evaluate("window.__sameDocument = true")  # a reload would forget it
        pages[size] = page
    return pages


def fits_without_scrolling(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    assert box is not None and viewport is not None, selector
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= viewport["width"]
        and box["y"] + box["height"] <= viewport["height"]
    )


def shoot(pages: dict[str, Page], state: str) -> None:
    """A screenshot of ``state`` at each size; on the small display, the state and what to
    scan next are there without scrolling."""
    small = pages["7inch"]
    for selector in ("#signal-word", "#signal-reason", "#next-step"):
        assert fits_without_scrolling(small, selector), f"{selector} off screen in {state}"
    assert small.evaluate("window.scrollY") == 0
    for size, page in pages.items():
        path = screenshot(page, SHOTS, f"{state}-{size}")
        assert path.stat().st_size > 10_000  # a page, not a blank


def test_the_packer_follows_an_order_on_the_screen(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter, browser: Browser
) -> None:
    order = kiosk_order()
    station = station_with(tmp_path, broker, fake, [order])
    errors: list[str] = []
    try:
        station.start().ready().kiosk_ready()
        pages = open_pages(browser, station.kiosk_url, errors)
        page = pages["1080p"]
        html = page.locator("html")
        expect(html).to_have_attribute("data-connection", "live", timeout=WAIT)
        expect(html).to_have_attribute("data-state", "idle")
        expect(page.locator("#next-step")).to_have_text("scan your badge (OP-…)")
        expect(page.locator("#operator")).to_have_text("Nobody logged in")
        expect(page.locator("#next-to-pack li").first).to_contain_text(order["order_no"])
        expect(page.locator("#next-to-pack li .when").first).to_contain_text("pack by")
        shoot(pages, "idle")

        station.login()
        expect(page.locator("#operator")).to_have_text("Packer 0042", timeout=WAIT)

        scans = packing_scans(order)  # order, item, CMD-NEXT-PARCEL, item, item...
        station.scan_and_wait(scans[0])
        expect(html).to_have_attribute("data-state", "packing", timeout=WAIT)
        expect(page.locator("#order-no")).to_have_text(order["order_no"])
        expect(page.locator("#parcel-of")).to_have_text("Parcel 1 of 2")
        total = _items(order)
        expect(page.locator("#progress")).to_have_text(f"0 of {total} items")
        expect(page.locator("#lines tbody tr")).to_have_count(len(order["lines"]))
        deadlines = page.locator("#deadlines")
        expect(deadlines).to_contain_text("Pack by")
        expect(deadlines).to_contain_text("Ship by")
        expect(deadlines).to_contain_text(re.compile(r"\d+ min \d\d s left"))

        first = order["lines"][0]
        station.scan_and_wait(scans[1])
        row = page.locator(f"#lines tr[data-sku='{first['sku']}']")
        expect(row.locator(".verified")).to_have_text(f"1 / {first['qty']}", timeout=WAIT)
        expect(page.locator("#progress")).to_have_text(f"1 of {total} items")
        expect(page.locator("#signal-word")).to_have_text("OK")
        expect(html).to_have_attribute("data-tone", "ok")
        expect(html).to_have_attribute("data-last-sound", "ok")
        shoot(pages, "packing")

        # A wrong item: red, the reason in words, an icon; the bench waits for CMD-OK.
        station.scan_and_wait(WRONG_ITEM)
        expect(html).to_have_attribute("data-state", "alarm", timeout=WAIT)
        expect(html).to_have_attribute("data-tone", "alarm")
        expect(page.locator("#signal-word")).to_have_text("Alarm")
        reason = page.locator("#signal-reason")
        expect(reason).to_contain_text("Wrong item")
        expect(reason).to_contain_text(WRONG_ITEM)
        expect(page.locator("#signal-icon svg")).to_have_count(1)
        expect(page.locator("#next-step")).to_have_text("take the item out, then scan CMD-OK")
        expect(html).to_have_attribute("data-audio", "on")  # the kiosk's autoplay setting
        expect(html).to_have_attribute("data-last-sound", "alarm")
        shoot(pages, "alarm")

        station.scan_and_wait("CMD-OK")
        expect(html).to_have_attribute("data-state", "packing", timeout=WAIT)
        expect(page.locator("#signal-reason")).to_contain_text("Alarm cleared")
        expect(row.locator(".verified")).to_have_text(f"1 / {first['qty']}")  # nothing added

        station.scan_and_wait(scans[2])  # CMD-NEXT-PARCEL: parcel 1's waybill prints
        expect(page.locator("#parcel-of")).to_have_text("Parcel 2 of 2", timeout=WAIT)
        for code in scans[3:]:
            station.scan_and_wait(code)
        expect(html).to_have_attribute("data-state", "done", timeout=WAIT)
        expect(html).to_have_attribute("data-tone", "ok")
        expect(page.locator("#signal-word")).to_have_text("Done")
        expect(html).to_have_attribute("data-last-sound", "done")
        expect(page.locator("#next-step")).to_have_text("scan an order or its waybill")
        assert len(station.events("shipment.shipped")) == 2  # both parcels confirmed
        assert len(fake.jobs) == 2
        expect(page.locator("#next-to-pack li")).to_have_count(0)
        shoot(pages, "done")

        assert all(p.evaluate("window.__sameDocument") is True for p in pages.values())
        assert errors == []
    finally:
        station.close()


def test_the_screen_says_when_the_bench_is_gone_and_recovers(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter, browser: Browser
) -> None:
    order = kiosk_order()
    station = station_with(tmp_path, broker, fake, [order])
    errors: list[str] = []
    try:
        station.start().ready().kiosk_ready()
        pages = open_pages(browser, station.kiosk_url, errors)
        page = pages["1080p"]
        html = page.locator("html")
        expect(html).to_have_attribute("data-connection", "live", timeout=WAIT)
        station.login()
        scans = packing_scans(order)
        station.scan_and_wait(scans[0])
        station.scan_and_wait(scans[1])
        expect(page.locator("#progress")).to_have_text(f"1 of {_items(order)} items", timeout=WAIT)
        expect(page.locator("#lost")).to_be_hidden()

        station.kill()  # kill -9: no goodbye on the stream
        expect(html).to_have_attribute("data-connection", "lost", timeout=WAIT)
        lost = page.locator("#lost")
        expect(lost).to_be_visible()
        expect(lost).to_contain_text("Not connected to the bench")
        expect(page.locator("#connection")).to_have_text("Not connected")
        expect(page.locator("#order-no")).to_have_text(order["order_no"])  # the last view
        shoot(pages, "disconnected")

        station.start().ready().kiosk_ready()
        expect(html).to_have_attribute("data-connection", "live", timeout=WAIT)
        expect(lost).to_be_hidden()
        expect(html).to_have_attribute("data-state", "packing")
        # The order resumed where it was, with the restart notice beside its progress.
        expect(page.locator("#progress")).to_have_text(f"1 of {_items(order)} items")
        notice = page.locator("#notice")
        expect(notice).to_be_visible()
        expect(notice).to_have_text("Restarted — check that your last item was counted")
        shoot(pages, "restarted")

        station.scan_and_wait(scans[2])  # the next scan: the notice goes
        expect(notice).to_be_hidden(timeout=WAIT)
        assert all(p.evaluate("window.__sameDocument") is True for p in pages.values())
        assert errors == []
    finally:
        station.close()
