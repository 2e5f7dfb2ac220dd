"""The floor is read and rendered once per change (web/floor.py), served by a real
uvicorn: the next request after a change shows it, whichever process wrote it, and
what one viewer may do never shows on another's copy."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from central.settings import CentralSettings
from central.users import add_user, issue_token
from tests.web.conftest import PASSWORD

RETIRE = "Retire this station"


@pytest.fixture
def client(live_url: str, api_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=30, headers=api_headers) as c:
        yield c


def _in_another_process(settings: CentralSettings, code: str) -> None:
    """Run ``code`` (with ``engine`` open on the test's database) in a process of its own."""
    script = "import sys\nfrom central.db import open_db\nengine = open_db(sys.argv[1])\n"
    done = subprocess.run(
        [sys.executable, "-c", script + textwrap.dedent(code), settings.db_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def _tile(html: str, station: str) -> str:
    found = re.search(rf'<article [^>]*data-station="{station}".*?</article>', html, re.S)
    assert found, html
    return found.group(0)


def test_the_next_request_after_a_change_by_another_process_shows_it(
    client: httpx.Client, settings: CentralSettings
) -> None:
    # Read and rendered once, and again: the second is the kept copy.
    for _ in range(2):
        assert "Ready" in _tile(client.get("/").text, "bench-01")
        assert client.get("/api/stations/bench-01").json()["printer_words"] == "Ready"
    _in_another_process(
        settings,
        """
        from central.ingest import record_status
        from sync.messages import StationStatus
        record_status(
            engine,
            StationStatus(
                station="bench-01", online=True, printer="no media", label_size="62",
                scanner="ok", labels_left=0, backlog=2,
            ),
            site="webtest",
        )
        """,
    )
    tile = _tile(client.get("/fragments/status").text, "bench-01")
    assert "Out of labels — load a new 62 mm roll" in tile and 'data-level="fault"' in tile
    stations = {s["station"]: s for s in client.get("/api/stations").json()["stations"]}
    assert (stations["bench-01"]["printer"], stations["bench-01"]["labels_left"]) == ("no media", 0)
    assert client.get("/api/floor").json()["summary"]["fault"] == 1

    _in_another_process(
        settings,
        """
        from central.ingest import store_batch
        from tests.support.central import batch, event
        store_batch(engine, batch("bench-01", event("bench-01", 2, order_no="PDD-SECOND")))
        """,
    )
    assert "PDD-SECOND" in client.get("/").text
    _in_another_process(
        settings,
        """
        from central.ingest import record_status
        from sync.messages import StationStatus
        record_status(engine, StationStatus(station="bench-01", online=False), site="webtest")
        """,
    )
    assert 'data-level="offline"' in _tile(client.get("/").text, "bench-01")
    assert client.get("/api/stations").json()["stations"][0]["online"] is False


def test_a_shipment_stored_by_this_process_shows_at_once(
    client: httpx.Client, engine: Engine
) -> None:
    from central.ingest import store_batch
    from tests.support.central import batch, event

    assert "PDD-THIRD" not in client.get("/fragments/status").text
    store_batch(engine, batch("bench-01", event("bench-01", 2, order_no="PDD-THIRD")))
    assert "PDD-THIRD" in client.get("/fragments/status").text


def test_retire_buttons_only_on_an_admins_copy(
    live_url: str, engine: Engine, client: httpx.Client
) -> None:
    # bench-02 is offline: an admin may retire it. The admin asks first, so a copy with
    # the button is kept when the supervisor asks.
    assert RETIRE in _tile(client.get("/").text, "bench-02")
    add_user(engine, "sup-wang", role="supervisor", dept="warehouse", password=PASSWORD)
    headers = {"Authorization": f"Bearer {issue_token(engine, 'sup-wang')}"}
    with httpx.Client(base_url=live_url, timeout=30, headers=headers) as sup:
        for path in ("/", "/fragments/status"):
            assert RETIRE not in sup.get(path).text
    # An admin logged in with a session gets its own CSRF token in the button.
    add_user(engine, "admin-zhao", role="admin", password=PASSWORD)
    with httpx.Client(base_url=live_url, timeout=30) as browser:
        form = browser.get("/login").text
        login_token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert login_token
        browser.post(
            "/login",
            data={
                "username": "admin-zhao",
                "password": PASSWORD,
                "csrf_token": login_token.group(1),
                "next": "/",
            },
        )
        page = browser.get("/").text
        session_csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        assert session_csrf and session_csrf.group(1)
        tile = _tile(page, "bench-02")
        assert f'name="csrf_token" value="{session_csrf.group(1)}"' in tile
        retired = browser.post(
            "/stations/bench-02/retire",
            data={"csrf_token": session_csrf.group(1)},
            follow_redirects=False,
        )
        assert retired.status_code == 303
        assert 'data-station="bench-02"' not in browser.get("/").text
