"""The exceptions, benches, equipment and reports pages in Debian's Chromium: a
supervisor acknowledges an exception and sees its repeat timer stop, a resolution
without its report is refused, a packer gets 403 on reports, every page at desktop and
phone width (screenshots under tests/_output/<test>/)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from central.ingest import record_status
from central.users import add_user
from central.watch import WatchRules
from central.watch.context import Watch
from central.watch.exceptions import open_exception
from sync.messages import StationStatus
from tests.support.browser import screenshot
from tests.support.reports import week_of_packing
from tests.support.watch import bench_event
from tests.web.conftest import PASSWORD, log_in

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1920, "height": 1080}


def _exception(engine: Engine, description: str, *, dept: str = "warehouse") -> int:
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=dt.datetime.now(dt.UTC), rules=WatchRules(), site="webtest")
        new = open_exception(watch, type="damaged", description=description, found_by="cs.zhou",
                             dept=dept)  # fmt: skip
    assert new is not None
    return new


def _page(browser: Browser, live_url: str, name: str, *, viewport: dict[str, int]) -> Page:
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    log_in(page, live_url, name)
    return page


@pytest.mark.browser
def test_acknowledge_stops_the_repeat_and_a_resolution_needs_its_report(
    browser: Browser, live_url: str, engine: Engine, shots: Path
) -> None:
    add_user(engine, "sup-wang", role="supervisor", dept="warehouse", password=PASSWORD)
    xid = _exception(engine, "<script>alert(1)</script> box crushed")
    other = _exception(engine, "wrong parcel to a customer", dept="customer_service")
    page = _page(browser, live_url, "sup-wang", viewport=DESKTOP)
    page.goto(live_url + "/exceptions")
    row = page.locator(f"tr#x{xid}")
    # Escaped: the description is text, not a script.
    expect(row).to_contain_text("<script>alert(1)</script> box crushed")
    repeat = row.locator("td.next-repeat [data-due]")
    expect(repeat).to_have_text(re.compile(r"^in 1[0-5] min$"))
    # Another department's exception: to be seen, not acted on.
    expect(page.locator(f"tr#x{other} button.ack")).to_have_count(0)
    expect(page.locator("#live")).to_have_text("live", timeout=20_000)
    screenshot(page, shots, "exceptions")

    row.locator("button.ack").click()
    row = page.locator(f"tr#x{xid}")
    expect(row.locator("td.next-repeat")).to_contain_text("stopped — acknowledged by sup-wang")
    expect(row.locator("td.next-repeat [data-due]")).to_have_count(0)
    expect(row).to_contain_text("acknowledged")

    # Resolving with no report: refused, in words, and nothing changed.
    page.goto(f"{live_url}/exceptions/{xid}")
    form = page.locator("#resolve-form")
    form.locator("input[name=cause]").fill("box too weak")
    with page.expect_response(f"**/exceptions/{xid}/resolve") as answer:
        form.locator("button[type=submit]").click()
    assert answer.value.status == 409
    expect(page.locator("#refused")).to_contain_text(
        "a resolution report needs cause, action and outcome: action, outcome missing"
    )
    expect(page.locator("#x-state")).to_contain_text("acknowledged")
    expect(page.locator("#resolve-form input[name=cause]")).to_have_value("box too weak")
    screenshot(page, shots, "exception-refused")

    form = page.locator("#resolve-form")
    form.locator("input[name=action]").fill("reshipped in a double-wall box")
    form.locator("input[name=outcome]").fill("customer received it")
    form.locator("button[type=submit]").click()
    expect(page.locator("#x-state")).to_contain_text("resolved")
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(3)
    expect(history.nth(2)).to_contain_text("outcome: customer received it")
    screenshot(page, shots, "exception-resolved")

    # The other department's exception refuses a step sent anyway (server side).
    answer = page.request.post(
        f"{live_url}/exceptions/{other}/ack",
        form={"csrf_token": page.locator("meta[name=csrf-token]").get_attribute("content") or ""},
    )
    assert answer.status == 403
    assert page.errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_a_new_exception_appears_without_a_reload(
    browser: Browser, live_url: str, engine: Engine
) -> None:
    add_user(engine, "mgr-li", role="manager", password=PASSWORD)
    page = _page(browser, live_url, "mgr-li", viewport=DESKTOP)
    page.goto(live_url + "/exceptions")
    expect(page.locator("#live")).to_have_text("live", timeout=20_000)
    page.evaluate("window.__sameDocument = true")
    xid = _exception(engine, "pallet dropped")
    expect(page.locator(f"tr#x{xid}")).to_contain_text("pallet dropped", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True


@pytest.mark.browser
def test_a_packer_gets_403_on_the_supervisors_pages(
    browser: Browser, live_url: str, engine: Engine
) -> None:
    add_user(engine, "pk-chen", role="packer", password=PASSWORD)
    page = _page(browser, live_url, "pk-chen", viewport=PHONE)
    for path in ("/reports", "/exceptions", "/equipment", "/benches"):
        answer = page.goto(live_url + path)
        assert answer is not None and answer.status == 403, path


@pytest.mark.browser
def test_every_page_at_desktop_and_phone_width(
    browser: Browser, live_url: str, engine: Engine, shots: Path
) -> None:
    add_user(engine, "admin-wu", role="admin", password=PASSWORD)
    week_of_packing(engine, site="webtest")
    record_status(
        engine,
        StationStatus(
            station="bench-01", online=True, printer="no media", printer_detail="roll empty",
            printer_model="QL-820NWB", printer_serial="tcp://10.0.0.5:9100", scanner="ready",
            scanner_device="/dev/ttyACM0", labels_left=12,
        ),
        site="webtest",
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    bench_event(engine, "bench-01", "device.state", at=now, site="webtest", device="printer",
                state="no media", detail="roll empty")  # fmt: skip
    bench_event(engine, "bench-01", "scan.rejected", at=now, site="webtest",
                text="6901234567892", reason="Label 100x150 does not fit the 62 mm roll",
                code="label_does_not_fit")  # fmt: skip
    for viewport, tag in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = _page(browser, live_url, "admin-wu", viewport=viewport)
        page.goto(live_url + "/reports?week=2026-W48")
        expect(page.locator("#kpi-on-time")).to_have_text("75.0%")
        expect(page.locator("body")).to_have_attribute("data-charts", "drawn")
        screenshot(page, shots, f"reports-{tag}")
        page.goto(live_url + "/reports?month=2026-11")
        expect(page.locator("#table-weekly")).to_contain_text("2026-W48")
        screenshot(page, shots, f"reports-monthly-{tag}")

        page.goto(live_url + "/equipment")
        printer = page.locator("#bench-01-printer")
        expect(printer).to_contain_text("QL-820NWB")
        expect(printer).to_contain_text("low: 12")
        expect(printer).to_contain_text("no media")
        screenshot(page, shots, f"equipment-{tag}")

        page.goto(live_url + "/benches")
        bench = page.locator("#bench-bench-01")
        expect(bench).to_contain_text("label_does_not_fit × 1")
        expect(bench).to_contain_text("station.toml")
        screenshot(page, shots, f"benches-{tag}")

        page.goto(live_url + "/exceptions?show=all")
        expect(page.locator("#exceptions-table")).to_contain_text("shipping delay")
        screenshot(page, shots, f"exceptions-{tag}")
        for path in ("/reports?week=2026-W48", "/equipment", "/benches", "/exceptions"):
            page.goto(live_url + path)
            wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 1, f"{path} is {wide}px wider than the {tag} screen"
        assert page.errors == []  # type: ignore[attr-defined]
        page.close()


@pytest.mark.browser
def test_a_maintenance_entry_from_the_page(browser: Browser, live_url: str, engine: Engine) -> None:
    add_user(engine, "sup-wang", role="supervisor", dept="warehouse", password=PASSWORD)
    record_status(
        engine,
        StationStatus(station="bench-01", online=True, printer="ready", printer_model="ZD421",
                      printer_serial="zpl+tcp://10.0.0.9:9100", labels_left=400),
        site="webtest",
    )  # fmt: skip
    page = _page(browser, live_url, "sup-wang", viewport=PHONE)
    page.goto(live_url + "/equipment")
    form = page.locator("#note-form")
    form.locator("select[name=kind]").select_option("repair")
    form.locator("input[name=text]").fill("new platen roller")
    form.locator("button[type=submit]").click()
    expect(page.locator("#bench-01-printer")).to_contain_text("repair new platen roller")
    form = page.locator("#note-form")
    form.locator("button[type=submit]").click()  # no text
    expect(page.locator("#refused")).to_contain_text("text")
