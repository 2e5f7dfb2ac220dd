"""Fixtures for the web tests: a migrated SQLite database with a station and a shipment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy.engine import Engine

from central.db import open_db
from central.ingest import record_status, store_batch
from central.settings import CentralSettings
from central.users import add_user, issue_token
from sync.messages import StationStatus
from tests.support.browser import OUTPUT, chromium
from tests.support.central import batch, event

#: The password of every user the web tests add.
PASSWORD = "correct horse battery"


@pytest.fixture
def settings(tmp_path: Path) -> CentralSettings:
    return CentralSettings(db_url=f"sqlite:///{tmp_path / 'central.db'}", site="webtest")


@pytest.fixture
def engine(settings: CentralSettings) -> Iterator[Engine]:
    eng = open_db(settings.db_url)
    record_status(
        eng,
        StationStatus(
            station="bench-01", online=True, printer="ready", scanner="ok", labels_left=180,
            backlog=2, orders_cursor=3, at_wall=1_800_000_000.0,
            backlog_oldest_at=1_800_000_000.0 - 47 * 60,
        ),
        site="webtest",
    )  # fmt: skip
    record_status(eng, StationStatus(station="bench-02", online=False), site="webtest")
    store_batch(eng, batch("bench-01", event("bench-01", 1, order_no="PDD-FIRST")), site="webtest")
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def admin_token(engine: Engine) -> str:
    """An API token of the admin ``root`` (docs/web.md: scripts send it as a bearer)."""
    add_user(engine, "root", role="admin", password=PASSWORD)
    return issue_token(engine, "root")


@pytest.fixture
def api_headers(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def live_url(engine: Engine, settings: CentralSettings) -> Iterator[str]:
    """The web app served by a real uvicorn on a free port, in a thread of this process."""
    import threading
    import time

    import uvicorn

    from packline.serve import listen_http
    from web.app import create_app

    app = create_app(engine=engine, settings=settings, version="9.9.9", poll_interval=0.25)
    sock = listen_http("127.0.0.1", 0)
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def log_in(page: Page, base: str, name: str, password: str = PASSWORD) -> None:
    """Log ``page`` in at ``base`` as ``name`` through the form, landing on the floor."""
    page.goto(base + "/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, as a supervisor's browser (no autoplay flag)."""
    with chromium(autoplay=False) as b:
        yield b


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """The test's folder for screenshots (tests/_output/TEST)."""
    return OUTPUT / str(request.node.name)
