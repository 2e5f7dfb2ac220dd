"""The central web app: status page, JSON API and health check.

The page is rendered on the server; a small vendored script listens to ``/events``
(Server-Sent Events) and re-fetches the status fragment when the data changed. The
change signal is a database poll (:func:`central.views.change_token`), so it works
whichever process wrote the data; one poll per process serves every open page
(:class:`web.changes.ChangeFeed`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from central.db import READ_ONLY, error_reason, utcnow
from central.floor import FloorModel, TileRules
from central.settings import CentralSettings
from central.users import authenticate, end_session, start_session
from central.views import change_token, recent_shipments
from web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Auth,
    CurrentUser,
    LoginRequired,
    LoginThrottle,
    current_user,
)
from web.changes import ChangeFeed
from web.floor import floor_routes
from web.layout import make_templates, render
from web.metrics import CONTENT_TYPE, TickStats, metrics_text
from web.orders import orders_routes
from web.pages import page_routes
from web.ticket_pages import ticket_routes
from web.watch_api import watch_routes

__all__ = ["create_app"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def create_app(
    *,
    engine: Engine,
    settings: CentralSettings,
    version: str,
    poll_interval: float = 1.0,
    shipments_shown: int = 25,
    broker_state: Callable[[], str | None] | None = None,
    throttle: LoginThrottle | None = None,
    tick_stats: Callable[[], TickStats] | None = None,
) -> FastAPI:
    """The web app over ``engine``.

    ``version`` is the running packline's, shown by ``/healthz`` and the API docs;
    ``broker_state`` says why central is not connected to its broker (None while it
    is), for ``/healthz``; ``throttle`` limits failed log-ins (5 per 5 min by default);
    ``poll_interval`` is how often each open page's event stream checks the database
    for changes; ``shipments_shown`` how many recent shipments the page lists.
    """
    app = FastAPI(title="packline central", version=version, docs_url=None, redoc_url=None)
    app.state.auth = Auth(engine=engine, throttle=throttle or LoginThrottle())
    app.state.templates = make_templates(settings.zone())
    app.state.site = settings.site
    app.state.timezone = settings.timezone
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    signed_in = [Depends(current_user)]

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, _exc: LoginRequired) -> Response:
        # A page sends the browser (or a HEAD from a monitor) to the log-in form; the
        # API, the event stream and fragments answer 401 for their scripts to see.
        is_page = not request.url.path.startswith(("/api/", "/events", "/fragments/"))
        if request.method in ("GET", "HEAD") and is_page:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        return JSONResponse(
            {"detail": "log in first (a session, or Authorization: Bearer TOKEN)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    def _safe_next(target: str) -> str:
        # Only a path on this server: never //other.host or a scheme.
        if target.startswith("/") and not target.startswith("//") and "\\" not in target:
            return target
        return "/"

    def login_page(
        request: Request, *, next_url: str, error: str = "", username: str = "", status: int = 200
    ) -> Response:
        token = secrets.token_urlsafe(24)
        page = render(
            request,
            "login.html",
            {"login_csrf": token, "next": next_url, "error": error, "username": username},
            status_code=status,
        )
        page.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/login",
        )
        return page

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        """The log-in form."""
        return login_page(request, next_url=_safe_next(next))

    @app.post("/login")
    async def login(
        request: Request,
        username: str = Form(default="", max_length=64),
        password: str = Form(default="", max_length=1024),
        csrf_token: str = Form(default=""),
        next: str = Form(default="/"),
    ) -> Response:
        """Check the password; on success a session cookie and a redirect to ``next``.
        Failed attempts are limited per client address and per user name (429)."""
        auth: Auth = app.state.auth
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        target = _safe_next(next)
        if not expected or not secrets.compare_digest(expected, csrf_token):
            return login_page(
                request,
                next_url=target,
                error="The form was stale: please log in again.",
                username=username,
                status=403,
            )
        keys = (f"addr:{request.client.host if request.client else '?'}", f"user:{username}")
        wait = auth.throttle.wait(*keys)
        if wait > 0:
            page = login_page(
                request,
                next_url=target,
                error=f"Too many failed log-ins: try again in {int(wait) + 1} s.",
                username=username,
                status=429,
            )
            page.headers["Retry-After"] = str(int(wait) + 1)
            return page
        user = await run_in_threadpool(authenticate, engine, username, password)
        if user is None:
            auth.throttle.failed(*keys)
            return login_page(
                request,
                next_url=target,
                error="Wrong user name or password.",
                username=username,
                status=401,
            )
        auth.throttle.succeeded(keys[1])
        token, _csrf = await run_in_threadpool(start_session, engine, user)
        done = RedirectResponse(target, status_code=303)
        done.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        done.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return done

    @app.post("/logout")
    async def logout(request: Request, _user: CurrentUser) -> Response:
        """End the session (the form carries the CSRF token)."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await run_in_threadpool(end_session, engine, token)
        done = RedirectResponse("/login", status_code=303)
        done.delete_cookie(SESSION_COOKIE, path="/")
        return done

    @app.get("/api/me")
    def api_me(user: CurrentUser) -> dict[str, Any]:
        """Who is logged in: ``{"name", "role", "dept"}``."""
        return user.as_json()

    @app.get("/healthz")
    @app.head("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """200 when the database answers and the broker is connected; 503 otherwise,
        saying which (``"status": "waiting for the broker"`` while central waits)."""
        try:
            with engine.connect().execution_options(**READ_ONLY) as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            reason = error_reason(exc)
            return JSONResponse({"status": "error", "db": reason}, status_code=503)
        waiting = broker_state() if broker_state is not None else None
        if waiting is not None:
            body = {
                "status": "waiting for the broker",
                "db": "ok",
                "broker": waiting,
                "version": version,
            }
            return JSONResponse(body, status_code=503)
        body = {"status": "ok", "db": "ok", "version": version}
        if broker_state is not None:
            body["broker"] = "connected"
        return JSONResponse(body)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        """Swagger UI from the vendored copy (static/vendor/README.md): no CDN."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="packline central API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/api/redoc", include_in_schema=False)
    def api_redoc() -> HTMLResponse:
        """ReDoc from the vendored copy, without web fonts."""
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="packline central API",
            redoc_js_url="/static/vendor/redoc/redoc.standalone.js",
            redoc_favicon_url="/static/favicon.svg",
            with_google_fonts=False,
        )

    @app.get("/metrics")
    @app.head("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics (no log-in: keep the port on the monitoring network)."""
        body = await run_in_threadpool(metrics_text, engine, site=settings.site, ticks=tick_stats)
        return Response(body, media_type=CONTENT_TYPE)

    floor = FloorModel(
        engine,
        site=settings.site,
        rules=TileRules(
            labels_low=settings.labels_low,
            backlog_alert_after=settings.backlog_alert_after,
            skew_tolerance=settings.skew_tolerance,
        ),
        shipments_shown=shipments_shown,
    )

    @app.get("/api/stations", dependencies=signed_in, response_class=Response)
    def api_stations() -> Response:
        """Every station of the site served, with its health and sync state."""
        body = '{"stations":' + floor.current().station_list_json(utcnow()) + "}"
        return Response(body.encode("utf-8"), media_type="application/json")

    @app.get("/api/shipments", dependencies=signed_in)
    def api_shipments(limit: int = Query(default=50, ge=1, le=1000)) -> dict[str, Any]:
        """The latest shipments, newest first; no recipient data."""
        return {"shipments": recent_shipments(engine, limit=limit, site=settings.site)}

    app.include_router(watch_routes(engine=engine, settings=settings), dependencies=signed_in)

    app.include_router(floor_routes(engine=engine, settings=settings, floor=floor))
    app.include_router(orders_routes(engine=engine, settings=settings))
    app.include_router(page_routes(engine=engine, settings=settings, poll_interval=poll_interval))
    app.include_router(ticket_routes(engine=engine, settings=settings))

    feed = ChangeFeed(lambda: change_token(engine), interval=poll_interval)
    app.state.change_feed = feed

    @app.get("/events", dependencies=signed_in)
    async def events() -> EventSourceResponse:
        """``changed`` whenever the page's data may have changed (and ``hello`` first)."""

        async def stream() -> AsyncIterator[dict[str, str]]:
            event = "hello"
            async with contextlib.aclosing(feed.listen()) as tokens:
                async for token in tokens:
                    yield {"event": event, "data": token}
                    event = "changed"

        return EventSourceResponse(stream(), ping=15)

    return app
