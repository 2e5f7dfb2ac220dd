"""The central web app: status page, JSON API and health check.

The page is rendered on the server; a small vendored script listens to ``/events``
(Server-Sent Events) and re-fetches the status fragment when the data changed. The
change signal is a database poll (:func:`central.views.change_token`), so it works
whichever process wrote the data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from central.db import READ_ONLY
from central.settings import CentralSettings
from central.views import change_token, list_stations, recent_shipments
from web.watch_api import watch_routes

__all__ = ["create_app"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def _clock(value: str | None) -> str:
    """``2026-01-10T09:15:02.123+00:00`` → ``2026-01-10 09:15:02`` (UTC)."""
    if not value:
        return "—"
    try:
        moment = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def create_app(
    *,
    engine: Engine,
    settings: CentralSettings,
    version: str,
    poll_interval: float = 1.0,
    shipments_shown: int = 25,
    broker_state: Callable[[], str | None] | None = None,
) -> FastAPI:
    """The web app over ``engine``.

    ``version`` is the running packline's, shown by ``/healthz`` and the API docs;
    ``broker_state`` says why central is not connected to its broker (None while it
    is), for ``/healthz``;
    ``poll_interval`` is how often each open page's event stream checks the database
    for changes; ``shipments_shown`` how many recent shipments the page lists.
    """
    app = FastAPI(title="packline central", version=version, docs_url="/api/docs")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["clock"] = _clock
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page_data() -> dict[str, Any]:
        return {
            "site": settings.site,
            "stations": list_stations(engine),
            "shipments": recent_shipments(engine, limit=shipments_shown),
        }

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 when the database answers and the broker is connected; 503 otherwise,
        saying which (``"status": "waiting for the broker"`` while central waits)."""
        try:
            with engine.connect().execution_options(**READ_ONLY) as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
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

    @app.get("/api/stations")
    def api_stations() -> dict[str, Any]:
        """Every station with its health and sync state."""
        return {"stations": list_stations(engine)}

    @app.get("/api/shipments")
    def api_shipments(limit: int = Query(default=50, ge=1, le=1000)) -> dict[str, Any]:
        """The latest shipments, newest first; no recipient data."""
        return {"shipments": recent_shipments(engine, limit=limit)}

    app.include_router(watch_routes(engine=engine, settings=settings))

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        """The status page."""
        return templates.TemplateResponse(request, "index.html", page_data())

    @app.get("/fragments/status", response_class=HTMLResponse)
    def status_fragment(request: Request) -> HTMLResponse:
        """The part of the page that live updates replace."""
        return templates.TemplateResponse(request, "_status.html", page_data())

    @app.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        """``changed`` whenever the page's data may have changed (and ``hello`` first)."""

        async def stream() -> AsyncIterator[dict[str, str]]:
            last: str | None = None
            while not await request.is_disconnected():
                token: str | None
                try:
                    token = await run_in_threadpool(change_token, engine)
                except sa.exc.SQLAlchemyError as exc:
                    log.warning("status stream cannot read the database: %s", exc)
                    token = last
                if token is not None and token != last:
                    yield {"event": "hello" if last is None else "changed", "data": token}
                    last = token
                await asyncio.sleep(poll_interval)

        return EventSourceResponse(stream(), ping=15)

    return app
