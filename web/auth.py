"""Who is asking: log-in, sessions, API tokens, CSRF and role checks (docs/web.md).

Every page and ``/api/`` route depends on :func:`current_user`; routes that only
some roles may use depend on :func:`require_role`. A browser logs in at ``/login``
and holds a session cookie (HttpOnly, SameSite=Lax, Secure when served over TLS); a
script sends ``Authorization: Bearer TOKEN`` with a token from
``packline central user token NAME``. A request that changes something and comes with
the session cookie must carry the session's CSRF token, as the form field
``csrf_token`` or the ``X-CSRF-Token`` header (the base layout puts it in
``<meta name="csrf-token">`` for scripts); a bearer token is not sent by browsers on
their own, so it needs none.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from central.users import User, session_user, token_user

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "Auth",
    "CurrentUser",
    "LoginRequired",
    "LoginThrottle",
    "csrf_input",
    "csrf_token",
    "current_user",
    "ensure_dept",
    "may_act_in",
    "require_role",
]

SESSION_COOKIE = "packline_session"
#: Double-submit cookie protecting the log-in form itself (there is no session yet).
LOGIN_CSRF_COOKIE = "packline_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """No valid session or token: pages redirect to ``/login``, the API answers 401."""


@dataclass
class LoginThrottle:
    """At most ``attempts`` failed log-ins per ``window`` seconds per client address
    and per user name; more answer 429 until the oldest failure leaves the window."""

    attempts: int = 5
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, collections.deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        times = self._failures.setdefault(key, collections.deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def wait(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for every key (0: allowed now)."""
        now = self.clock()
        with self._lock:
            longest = 0.0
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.attempts:
                    longest = max(longest, times[0] + self.window - now)
            return longest

    def failed(self, *keys: str) -> None:
        """Count a failed attempt against each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """A good log-in clears the name's failures (not the address's)."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


@dataclass
class Auth:
    """What the auth dependencies need, kept on ``app.state.auth``."""

    engine: Engine
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


def _auth(request: Request) -> Auth:
    auth = getattr(request.app.state, "auth", None)
    if not isinstance(auth, Auth):  # pragma: no cover - a wiring mistake
        raise RuntimeError("app.state.auth is not set (web.app.create_app sets it)")
    return auth


async def current_user(request: Request) -> User:
    """The logged-in user (``.name``, ``.role``, ``.dept``) — a FastAPI dependency.

    Raises :class:`LoginRequired` without a valid session or token, and 403 when a
    request that changes something comes with the session cookie but without its
    CSRF token.
    """
    cached = getattr(request.state, "user", None)
    if isinstance(cached, User):
        return cached
    auth = _auth(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        user = await run_in_threadpool(token_user, auth.engine, header[7:].strip())
        if user is None:
            raise HTTPException(
                status_code=401,
                detail="unknown API token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.user, request.state.csrf = user, ""
        return user
    token = request.cookies.get(SESSION_COOKIE)
    found = await run_in_threadpool(session_user, auth.engine, token) if token else None
    if found is None:
        raise LoginRequired()
    user, csrf = found
    if request.method not in _SAFE:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
        if not given or not secrets.compare_digest(given, csrf):
            raise HTTPException(
                status_code=403, detail="CSRF token missing or wrong: reload the page"
            )
    request.state.user, request.state.csrf = user, csrf
    return user


#: A parameter type giving the current user: ``def page(user: CurrentUser)``.
CurrentUser = Annotated[User, Depends(current_user)]


def require_role(*roles: str) -> Callable[..., Awaitable[User]]:
    """A dependency giving the current user when their role is one of ``roles``
    (an admin always passes), else 403: ``Depends(require_role("manager"))``."""
    allowed = frozenset(roles) | {"admin"}

    async def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise HTTPException(
                status_code=403,
                detail=f"{user.name} is a {user.role}; this needs " + " or ".join(sorted(allowed)),
            )
        return user

    return check


def may_act_in(user: User, dept: str | None) -> bool:
    """Whether ``user`` may act on something of department ``dept``: a supervisor
    only within their own, managers and admins everywhere, packers nowhere."""
    if user.role in ("admin", "manager"):
        return True
    return user.role == "supervisor" and dept is not None and dept == user.dept


def ensure_dept(user: User, dept: str | None) -> None:
    """403 unless :func:`may_act_in` (``user``, ``dept``)."""
    if not may_act_in(user, dept):
        where = f"department {dept}" if dept else "no department"
        raise HTTPException(
            status_code=403, detail=f"{user.name} ({user.role}) may not act for {where}"
        )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, for a form or a script ('' for a bearer token)."""
    return str(getattr(request.state, "csrf", "") or "")


def csrf_input(request: Request) -> Markup:
    """``<input type="hidden" name="csrf_token" value="...">`` for a form."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, escape(csrf_token(request))
    )
