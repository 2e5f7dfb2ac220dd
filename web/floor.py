"""The floor page (``/``): every station as a tile, live; ``/api/floor`` gives the same.

The tiles come from :func:`central.floor.station_tiles` for the site served
(``central serve --site X`` shows site X only). An admin retires a station that no
longer exists (``POST /api/stations/{station}/retire``, or the tile's button).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from central.db import utcnow
from central.floor import StationNotFound, floor_summary, retire_station, station_tiles
from central.settings import CentralSettings
from central.users import User
from central.views import recent_shipments
from web.auth import current_user, require_role
from web.layout import render

__all__ = ["floor_routes"]

Admin = Annotated[User, Depends(require_role("admin"))]


def floor_routes(
    *, engine: Engine, settings: CentralSettings, shipments_shown: int = 25
) -> APIRouter:
    """The floor page, its live fragment, ``/api/floor`` and retiring a station."""
    router = APIRouter(dependencies=[Depends(current_user)])

    def floor() -> dict[str, Any]:
        tiles = station_tiles(
            engine,
            site=settings.site,
            labels_low=settings.labels_low,
            backlog_alert_after=settings.backlog_alert_after,
            skew_tolerance=settings.skew_tolerance,
        )
        return {"tiles": tiles, "summary": floor_summary(tiles)}

    def page_data() -> dict[str, Any]:
        return {
            **floor(),
            "shipments": recent_shipments(engine, limit=shipments_shown, site=settings.site),
        }

    @router.get("/", response_class=HTMLResponse)
    @router.head("/", include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        """The floor: station tiles and the latest shipments."""
        return render(request, "index.html", page_data())

    @router.get("/fragments/status", response_class=HTMLResponse)
    def status_fragment(request: Request) -> HTMLResponse:
        """The part of the floor that live updates replace."""
        return render(request, "_floor.html", page_data())

    @router.get("/api/floor")
    def api_floor() -> dict[str, Any]:
        """What the floor shows: ``site``, ``summary`` (counts by level) and ``stations``
        (tiles, worst first)."""
        data = floor()
        return {
            "site": settings.site,
            "now": utcnow().isoformat(),
            "summary": data["summary"],
            "stations": data["tiles"],
        }

    def retire(station: str) -> None:
        try:
            retire_station(engine, station, site=settings.site)
        except StationNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @router.post("/api/stations/{station}/retire")
    async def api_retire(station: str, _admin: Admin) -> dict[str, Any]:
        """Retire a station that no longer exists (admins only)."""
        await run_in_threadpool(retire, station)
        return {"retired": station}

    @router.post("/stations/{station}/retire")
    async def form_retire(station: str, _admin: Admin) -> Response:
        """The tile's button: retire, then back to the floor."""
        await run_in_threadpool(retire, station)
        return RedirectResponse("/", status_code=303)

    @router.get("/api/stations/{station}")
    def api_station(station: str) -> dict[str, Any]:
        """One station's tile."""
        for tile in floor()["tiles"]:
            if tile["station"] == station:
                return dict(tile)
        raise HTTPException(status_code=404, detail=f"no station {station!r}")

    return router
