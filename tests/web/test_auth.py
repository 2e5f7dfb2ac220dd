"""Log-in, sessions, CSRF, API tokens and the log-in rate limit, over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from central.users import add_user, authenticate, list_users, remove_user, set_password
from tests.web.conftest import PASSWORD


@pytest.fixture
def browser_like(live_url: str, engine: Engine) -> Iterator[httpx.Client]:
    """A client with a cookie jar, as a browser; ``sup-li`` exists."""
    add_user(engine, "sup-li", role="supervisor", dept="warehouse", password=PASSWORD)
    with httpx.Client(base_url=live_url, timeout=30) as c:
        yield c


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def log_in(client: httpx.Client, name: str = "sup-li", password: str = PASSWORD) -> httpx.Response:
    form = client.get("/login")
    return client.post(
        "/login",
        data={
            "username": name,
            "password": password,
            "csrf_token": _form_token(form.text),
            "next": "/",
        },
    )


def test_pages_send_to_log_in_and_the_api_answers_401(browser_like: httpx.Client) -> None:
    page = browser_like.get("/?q=1")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Fq%3D1"
    assert browser_like.head("/").status_code == 303  # HEAD works (no 405)
    api = browser_like.get("/api/stations")
    assert api.status_code == 401 and "log in" in api.json()["detail"]
    assert browser_like.get("/events").status_code == 401
    assert (
        browser_like.get("/api/stations", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )


def test_log_in_sets_a_safe_cookie_and_log_out_ends_the_session(
    browser_like: httpx.Client,
) -> None:
    done = log_in(browser_like)
    assert done.status_code == 303 and done.headers["location"] == "/"
    cookie = done.headers["set-cookie"]
    assert "packline_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
    me = browser_like.get("/api/me").json()
    assert me == {"name": "sup-li", "role": "supervisor", "dept": "warehouse"}
    page = browser_like.get("/")
    assert page.status_code == 200 and "sup-li" in page.text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None

    # Log-out is an action: without the CSRF token it is refused.
    assert browser_like.post("/logout").status_code == 403
    out = browser_like.post("/logout", data={"csrf_token": token.group(1)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert browser_like.get("/api/me").status_code == 401


def test_an_old_cookie_is_dead_after_log_out(live_url: str, browser_like: httpx.Client) -> None:
    log_in(browser_like)
    stolen = browser_like.cookies["packline_session"]
    page = browser_like.get("/")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    browser_like.post("/logout", headers={"X-CSRF-Token": token.group(1)})
    with httpx.Client(base_url=live_url, cookies={"packline_session": stolen}) as other:
        assert other.get("/api/me").status_code == 401


def test_actions_with_the_cookie_need_the_csrf_token(
    browser_like: httpx.Client, engine: Engine
) -> None:
    log_in(browser_like)
    page = browser_like.get("/")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    body = {"type": "damaged", "description": "box crushed", "by": "sup-li"}
    refused = browser_like.post("/api/exceptions", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = browser_like.post("/api/exceptions", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    done = browser_like.post("/api/exceptions", json=body, headers={"X-CSRF-Token": token.group(1)})
    assert done.status_code == 201, done.text


def test_log_in_refuses_a_form_without_its_token(browser_like: httpx.Client) -> None:
    browser_like.get("/login")
    forged = browser_like.post(
        "/login", data={"username": "sup-li", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert forged.status_code == 403
    assert "packline_session" not in forged.headers.get("set-cookie", "")


def test_next_is_a_path_on_this_server_only(browser_like: httpx.Client) -> None:
    form = browser_like.get("/login", params={"next": "//evil.example/x"})
    assert 'name="next" value="/"' in form.text
    done = browser_like.post(
        "/login",
        data={
            "username": "sup-li",
            "password": PASSWORD,
            "csrf_token": _form_token(form.text),
            "next": "https://evil.example/",
        },
    )
    assert done.headers["location"] == "/"


def test_failed_log_ins_are_limited(browser_like: httpx.Client) -> None:
    for _ in range(5):
        assert log_in(browser_like, password="wrong password").status_code == 401
    limited = log_in(browser_like)  # even the right password waits now
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many failed log-ins" in limited.text


def test_wrong_password_says_so_without_saying_which(browser_like: httpx.Client) -> None:
    unknown = log_in(browser_like, name="nobody")
    wrong = log_in(browser_like, password="not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong user name or password." in unknown.text and "Wrong user name" in wrong.text


def test_users_are_hashed_with_argon2_and_changes_end_sessions(engine: Engine) -> None:
    import sqlalchemy as sa

    from central.users import UserRefused, session_user, start_session, users

    user = add_user(engine, "mgr-zhao", role="manager", password=PASSWORD)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert authenticate(engine, "mgr-zhao", PASSWORD) == user
    assert authenticate(engine, "mgr-zhao", PASSWORD + "x") is None
    token, _ = start_session(engine, user)
    assert session_user(engine, token) is not None
    set_password(engine, "mgr-zhao", "a new long password")
    assert session_user(engine, token) is None
    with pytest.raises(UserRefused, match="needs --dept"):
        add_user(engine, "sup-x", role="supervisor", password=PASSWORD)
    with pytest.raises(UserRefused, match="exists already"):
        add_user(engine, "mgr-zhao", role="manager", password=PASSWORD)
    with pytest.raises(UserRefused, match="at least 8"):
        add_user(engine, "short", role="packer", password="short")
    remove_user(engine, "mgr-zhao")
    assert [u["name"] for u in list_users(engine)] == []
