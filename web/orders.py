"""The orders page (``/orders``) and its API (``/api/orders...``).

Counts by state, orders about to breach (a countdown) and overdue, blocked orders with
the reason, orders shipped twice, search by order or tracking number, and one order's
timeline (``/orders/{order_no}``). Customer data is masked unless the role needs it
(:meth:`central.users.User.may_see_customers`), on the page and in the API alike.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine

from central.db import utcnow
from central.order_board import (
    OrderNotFound,
    blocked_orders,
    order_counts,
    order_timeline,
    orders_at_risk,
    recent_orders,
    search_orders,
    shipped_twice,
)
from central.settings import CentralSettings
from central.users import User
from web.auth import CurrentUser, current_user
from web.layout import render

__all__ = ["orders_routes"]

SEARCH = Query(default="", max_length=64, description="an order or tracking number")


def orders_routes(*, engine: Engine, settings: CentralSettings) -> APIRouter:
    """The orders page, its live fragment, one order's page and their JSON."""
    router = APIRouter(dependencies=[Depends(current_user)])

    def board(user: User, q: str) -> dict[str, Any]:
        see = user.may_see_customers()
        found = search_orders(engine, q, see_customers=see) if q else None
        return {
            "now": utcnow().isoformat(),
            "counts": order_counts(engine),
            **orders_at_risk(engine),
            "blocked": blocked_orders(engine),
            "shipped_twice": shipped_twice(engine),
            "q": q,
            "found": found,
            "recent": recent_orders(engine, see_customers=see, limit=25) if found is None else [],
        }

    def one(user: User, order_no: str) -> dict[str, Any]:
        try:
            return order_timeline(engine, order_no, see_customers=user.may_see_customers())
        except OrderNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @router.get("/orders", response_class=HTMLResponse)
    def orders_page(request: Request, user: CurrentUser, q: str = SEARCH) -> HTMLResponse:
        """Orders: counts, at risk, blocked, shipped twice, search."""
        return render(request, "orders.html", board(user, q))

    @router.get("/fragments/orders", response_class=HTMLResponse)
    def orders_fragment(request: Request, user: CurrentUser, q: str = SEARCH) -> HTMLResponse:
        """The part of the orders page that live updates replace."""
        return render(request, "_orders.html", board(user, q))

    @router.get("/orders/{order_no}", response_class=HTMLResponse)
    def order_page(request: Request, order_no: str, user: CurrentUser) -> HTMLResponse:
        """One order: its parcels, deadlines and timeline."""
        return render(request, "order.html", {"order": one(user, order_no)})

    @router.get("/api/orders")
    def api_orders(user: CurrentUser, q: str = SEARCH) -> dict[str, Any]:
        """``?q=``: orders whose number or tracking number is ``q`` (or whose number
        starts with it); without it the latest changed. One row per order, its parcels
        inside."""
        see = user.may_see_customers()
        if q:
            return {"orders": search_orders(engine, q, see_customers=see)}
        return {"orders": recent_orders(engine, see_customers=see)}

    @router.get("/api/orders/board")
    def api_board(user: CurrentUser) -> dict[str, Any]:
        """What the orders page shows: ``counts``, ``about_to_breach``, ``overdue``,
        ``blocked``, ``shipped_twice``."""
        data = board(user, "")
        data.pop("found")
        data.pop("q")
        data.pop("recent")
        return data

    @router.get("/api/orders/{order_no}")
    def api_order(order_no: str, user: CurrentUser) -> dict[str, Any]:
        """One order with ``parcels``, ``deadlines`` and ``timeline``."""
        return one(user, order_no)

    return router
