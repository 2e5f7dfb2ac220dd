"""The kiosk server with a real agent in this process: its routes, its live stream, and
that the bench never waits for a page (one that cannot be drawn, or never reads)."""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from drivers.fakes.scanner import ScriptedScanner
from edge.agent import Agent
from edge.factory import build_agent
from edge.kiosk.app import STATIC
from edge.kiosk.listen import KioskUnavailable, bind_kiosk
from edge.kiosk.server import KioskServer
from edge.settings import StationSettings
from edge.view import BenchView, ViewChanges
from packline.devbroker import free_port
from packline.samples import packing_scans, sample_orders
from sync.messages import OrdersMessage
from sync.order import validate_order
from tests.support.browser import chromium
from tests.support.waiting import wait_for

ORDERS = sample_orders(4, prefix="KSK")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    settings = StationSettings.model_validate(
        {
            "station": "bench-kiosk",
            "site": "wh9",
            "data_dir": tmp_path / "station",
            # Nothing listens there: the bench works offline, as it must.
            "mqtt_url": f"mqtt://127.0.0.1:{free_port()}",
            "printer": f"file://{tmp_path / 'printed'}",
            "print_packing_list": False,
        }
    )
    bench = build_agent(settings, version="t", scanner=ScriptedScanner(scans=[]))
    orders = [validate_order(o) for o in ORDERS]
    bench.store.apply_orders(OrdersMessage(orders=orders, cursor=len(orders)))
    try:
        yield bench
    finally:
        bench.close()


def serve(source: Any, *, refresh: float = 0.2) -> KioskServer:
    server = KioskServer(
        sock=bind_kiosk("127.0.0.1:0"),
        source=source,
        station="bench-kiosk",
        version="9.9",
        refresh=refresh,
    )
    server.start()
    return server


@pytest.fixture
def kiosk(agent: Agent) -> Iterator[KioskServer]:
    server = serve(agent)
    try:
        yield server
    finally:
        server.stop()


class Stream:
    """An open ``/events`` stream read on a thread: each ``view`` event into a queue."""

    def __init__(self, url: str) -> None:
        self.views: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self.pings = 0
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()

    def _read(self, url: str) -> None:
        event, data, frame_id = "", "", 0
        try:
            with self._client.stream("GET", url + "events") as resp:
                assert resp.headers["content-type"].startswith("text/event-stream")
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line.startswith("id: "):
                        frame_id = int(line[4:])
                    elif line == "" and event:
                        if event == "view":
                            self.views.put((frame_id, json.loads(data)))
                        else:
                            self.pings += 1
                        event, data = "", ""
        except httpx.HTTPError:
            pass  # closed by the test

    def next(self, *, timeout: float = 20) -> tuple[int, dict[str, Any]]:
        return self.views.get(timeout=timeout)

    def until(self, test: Any, *, timeout: float = 20) -> dict[str, Any]:
        """The first view for which ``test(view)`` holds."""
        while True:
            _, view = self.next(timeout=timeout)
            if test(view):
                return view

    def close(self) -> None:
        self._client.close()


def test_the_page_its_assets_health_and_view(agent: Agent, kiosk: KioskServer) -> None:
    with httpx.Client(base_url=kiosk.url, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200 and 'data-state="idle"' in page.text
        for asset in ("/static/kiosk.js", "/static/kiosk.css"):
            assert client.get(asset).status_code == 200
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["station"] == "bench-kiosk"
        view = client.get("/api/view").json()
        assert view["state"] == "idle" and view["station"] == "bench-kiosk"
        assert view["next_step"] == "scan your badge (OP-…)"

        agent.handle_scan("OP-0042")
        agent.handle_scan(ORDERS[0]["order_no"])
        view = client.get("/api/view").json()
        assert view["state"] == "packing" and view["operator"] == "0042"
        assert view["order"]["order_no"] == ORDERS[0]["order_no"]
        # No customer data on the packer's screen (C1).
        recipient = ORDERS[0]["recipient"]
        text = json.dumps(view, ensure_ascii=False)
        for field in ("name", "phone", "address"):
            assert recipient[field] not in text
        assert client.get("/api/nothing").status_code == 404


def test_nothing_on_the_page_comes_from_the_internet() -> None:
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name


def test_every_change_reaches_an_open_stream(agent: Agent, kiosk: KioskServer) -> None:
    stream = Stream(kiosk.url)
    try:
        first_id, view = stream.next()
        assert view["state"] == "idle" and view["operator"] is None
        agent.handle_scan("OP-0042")
        view = stream.until(lambda v: v["operator"] == "0042")
        assert view["feedback"]["outcome"] == "ok"
        agent.handle_scan(ORDERS[0]["order_no"])
        view = stream.until(lambda v: v["state"] == "packing")
        agent.handle_scan("6900000000000")  # a wrong item
        view = stream.until(lambda v: v["state"] == "alarm")
        assert view["alarm"]["code"] == "wrong_item" and "Wrong item" in view["alarm"]["message"]
        agent.handle_scan("CMD-OK")
        last_id, view = stream.next()
        while view["state"] != "packing":
            last_id, view = stream.next()
        assert last_id > first_id
    finally:
        stream.close()


class HeldScreen:
    """The agent's screen, except that drawing it can be held up (a page that cannot be
    drawn, a machine too busy to draw it): what the bench does meanwhile is the test."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.hold = threading.Event()
        self.release = threading.Event()
        self.held = threading.Event()

    @property
    def changes(self) -> ViewChanges:
        return self.agent.changes

    def view(self) -> BenchView:
        if self.hold.is_set():
            self.held.set()
            self.release.wait(timeout=60)
        return self.agent.view()


def test_the_bench_never_waits_for_its_screen(agent: Agent) -> None:
    screen = HeldScreen(agent)
    server = serve(screen)
    stalled = socket.create_connection(server.sock.getsockname()[:2])
    stream = Stream(server.url)
    try:
        # A page that asked for the stream and never reads it.
        stalled.sendall(b"GET /events HTTP/1.1\r\nHost: kiosk\r\n\r\n")
        stream.next()
        screen.hold.set()
        agent.handle_scan("OP-0042")
        assert screen.held.wait(timeout=20)  # the screen is being drawn, and stuck

        order = ORDERS[1]
        scans = packing_scans(order)
        told = [agent.handle_scan(code) for code in scans]
        # Every scan was judged and recorded while the screen could not be drawn.
        assert not screen.release.is_set()
        assert all(t.ok for t in told), [t.message for t in told]
        assert told[-1].outcome == "done"
        shipped = agent.store.events(type="shipment.shipped")
        assert [e.payload["order_no"] for e in shipped] == [order["order_no"]]

        screen.hold.clear()
        screen.release.set()
        view = stream.until(lambda v: v["state"] == "done")
        assert view["last_order_no"] == order["order_no"]
    finally:
        screen.release.set()
        stream.close()
        stalled.close()
        server.stop()


class FailingScreen:
    """A screen that cannot be drawn until ``fixed`` is set."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.fixed = threading.Event()

    @property
    def changes(self) -> ViewChanges:
        return self.agent.changes

    def view(self) -> BenchView:
        if not self.fixed.is_set():
            raise RuntimeError("cannot draw")
        return self.agent.view()


def test_health_says_when_the_screen_cannot_be_drawn(agent: Agent) -> None:
    screen = FailingScreen(agent)
    server = serve(screen, refresh=0.05)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["status"] == "error"
            screen.fixed.set()
            wait_for(lambda: client.get("/healthz").status_code == 200, what="healthy")
    finally:
        server.stop()


@pytest.mark.browser
def test_the_link_to_central_and_a_clock_far_off_are_said_in_words(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = agent.view()
    assert view.sync.link == "starting" and view.sync.broker == "not started"
    assert view.sync.clock_skew_s is None and view.sync.name_conflict is None
    # The uplink really tries the broker the settings name, where nothing listens.
    url = agent.settings.mqtt_url
    agent.uplink.start()
    refused = f"cannot reach the broker at {url}: connection refused"
    wait_for(lambda: agent.view().sync.link == "unreachable", what="the link down")
    assert agent.view().sync.broker == refused

    server = serve(agent)
    try:
        with chromium(autoplay=False) as browser:
            page = browser.new_page(viewport={"width": 800, "height": 480})
            page.goto(server.url)
            html = page.locator("html")
            expect(html).to_have_attribute("data-link", "unreachable", timeout=20_000)
            expect(page.locator("#broker")).to_have_text(
                f"C{refused[1:]} — keep packing, records wait here"
            )
            expect(page.locator("#broker-fact")).to_have_class(re.compile(r"\bbad\b"))
            # A clock a few seconds off is no news for the packer; hours off is.
            uplink = type(agent.uplink)
            skew = [4.0]
            monkeypatch.setattr(uplink, "clock_skew_s", property(lambda self: skew[0]))
            expect(page.locator("#skew-fact")).to_be_hidden()
            skew[0] = -3 * 3600.0 - 125
            expect(page.locator("#skew")).to_have_text(
                "This bench is 3 h 02 min behind central", timeout=20_000
            )
            expect(page.locator("#skew-fact")).to_have_class(re.compile(r"\bbad\b"))
            view = agent.view()
            assert view.sync.clock_skew_large and view.sync.clock_skew_s == skew[0]
            # Central's words while another bench uses this name outrank the rest.
            words = "another bench uses the name bench-kiosk"
            monkeypatch.setattr(uplink, "name_conflict", property(lambda self: words))
            expect(html).to_have_attribute("data-link", "name_conflict", timeout=20_000)
            expect(page.locator("#broker")).to_have_text(f"A{words[1:]}")
            conflict = page.locator("#conflict")
            expect(conflict).to_be_visible()
            expect(conflict).to_have_text(words)
            # Without the kiosk's autoplay setting the browser keeps quiet until a tap,
            # and the page says so; the tap turns the sound on.
            expect(html).to_have_attribute("data-audio", "off")
            button = page.locator("#sound")
            expect(button).to_be_visible()
            button.click()
            expect(html).to_have_attribute("data-audio", "on")
            expect(button).to_be_hidden()
    finally:
        server.stop()


def test_the_address_is_taken_as_tcp_so_views_are_not_held_back() -> None:
    # asyncio turns Nagle off only on sockets named TCP; a 0 here costs a 40 ms
    # delayed ACK on a view sent right after another (bench/scan_feedback.py).
    with bind_kiosk("127.0.0.1:0") as sock:
        assert sock.proto == socket.IPPROTO_TCP
        with bind_kiosk(f"localhost:{free_port()}") as named:
            assert named.getsockname()[0] in ("127.0.0.1", "::1")


@pytest.mark.parametrize(
    ("listen", "words"),
    [
        ("127.0.0.1", "give kiosk_listen as host:port"),
        ("nosuch.invalid:8090", "unknown host 'nosuch.invalid'"),
        ("192.0.2.1:8090", "not an address of this machine"),
    ],
)
def test_an_address_that_cannot_be_had_says_why(listen: str, words: str) -> None:
    with pytest.raises(KioskUnavailable) as caught:
        bind_kiosk(listen)
    assert words in str(caught.value)
    assert str(caught.value).startswith("cannot serve the packer's screen on ")


def test_the_docs_quote_the_line_a_port_in_use_gives() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "station.md").read_text()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(KioskUnavailable) as caught:
            bind_kiosk(f"127.0.0.1:{port}")
    line = f"packline: error: {caught.value}".replace(str(port), "8090")
    assert f"\n{line}\n" in doc
