"""The kiosk web app: the packer's page, its live feed, the view as JSON, a health check.

Routes:

- ``/``: the page (``static/kiosk.html``; its script and style are vendored beside
  it, nothing comes from the internet);
- ``/events``: Server-Sent Events, one ``view`` event (the whole
  :class:`~edge.view.BenchView` as JSON, ``id`` its frame number) at connect and after
  every change, a ``ping`` event every :data:`HEARTBEAT` seconds in between (the
  page's watchdog hears it; a comment line would not reach the page's script);
- ``/api/view``: the view now, as JSON;
- ``/healthz``: 200 while the screen can be drawn, 503 otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from edge.kiosk.feed import ScreenSource, ViewFeed

__all__ = ["HEARTBEAT", "RETRY_MS", "create_kiosk_app"]

STATIC = Path(__file__).resolve().parent / "static"

HEARTBEAT = 10.0
"""Seconds between ``ping`` events on a quiet stream (the page calls the connection
lost after three missed)."""

RETRY_MS = 1000
"""How soon the browser reconnects after the stream broke (the SSE ``retry:``)."""

_NO_CACHE = {"Cache-Control": "no-cache, no-store"}


def create_kiosk_app(
    *, source: ScreenSource, station: str, version: str, refresh: float = 2.0
) -> tuple[FastAPI, ViewFeed]:
    """The kiosk app over ``source`` (an :class:`~edge.agent.Agent`) and its feed.

    ``version`` is the running packline's (``/healthz``); ``refresh`` how often the
    view is drawn again when the bench did not change it (see :class:`ViewFeed`). The
    feed runs while the app's lifespan does (uvicorn with ``lifespan="on"``).
    """
    feed = ViewFeed(source=source, refresh=refresh)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(feed.run(), name="kiosk-feed")
        try:
            yield
        finally:
            await feed.stop()
            await task

    app = FastAPI(
        title=f"packline kiosk {station}",
        version=version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    def page() -> FileResponse:
        """The packer's page."""
        return FileResponse(STATIC / "kiosk.html", headers=_NO_CACHE)

    @app.get("/api/view")
    async def api_view() -> Response:
        """The packer's screen now, as JSON (no customer data)."""
        view = await asyncio.to_thread(source.view)
        return Response(view.model_dump_json(), media_type="application/json", headers=_NO_CACHE)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 while the screen is drawn and sent, 503 when it cannot be drawn."""
        frame = feed.latest
        body: dict[str, object] = {
            "status": "ok",
            "station": station,
            "version": version,
            "view_version": frame.view.version if frame else None,
        }
        if frame is None or feed.failing:
            body["status"] = "starting" if frame is None and not feed.failing else "error"
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @app.get("/events")
    async def events() -> StreamingResponse:
        """The view at connect and after every change (Server-Sent Events)."""

        async def stream() -> AsyncIterator[str]:
            yield f"retry: {RETRY_MS}\n\n"
            after = 0
            while not feed.stopping:
                frame = await feed.next_frame(after=after, timeout=HEARTBEAT)
                if frame is None:
                    if not feed.stopping:
                        yield "event: ping\ndata: {}\n\n"
                    continue
                after = frame.seq
                yield f"id: {frame.seq}\nevent: view\ndata: {frame.data}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={**_NO_CACHE, "X-Accel-Buffering": "no"},
        )

    return app, feed
