"""The tickets pages (D7): open tickets with their 10-minute first-response clock, one
ticket with its append-only history, and the forms to act on it.

Same pattern as the exceptions pages (:mod:`web.pages`): server-rendered in the base
layout, refreshed over ``/events/watch``, plain form POSTs with the CSRF token answered
by a redirect back (or the page again with the refusal in words). The JSON twins are
``/api/tickets…`` (:mod:`web.watch_api`). Who may act is checked here: supervisors of
the ticket's department, managers and admins; packers open none of these pages.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from central.clock import Clock, SystemClock
from central.settings import CentralSettings
from central.users import User
from central.watch.board import alarm_timers
from central.watch.context import Watch
from central.watch.exceptions import ExceptionNotFound, ExceptionRefused, NotAllowed
from central.watch.tickets import (
    CATEGORIES,
    acknowledge_ticket,
    close_ticket,
    dedup_key,
    follow_up,
    list_tickets,
    open_ticket,
    respond,
    ticket_detail,
)
from web.auth import may_act_in, require_role
from web.layout import render
from web.pages import ActionRefused

__all__ = ["ticket_action", "ticket_routes"]

VIEWER = Depends(require_role("supervisor", "manager"))
Step = Literal["ack", "respond", "follow-up", "close"]


def ticket_routes(
    *, engine: Engine, settings: CentralSettings, clock: Clock | None = None
) -> APIRouter:
    """``/tickets``, ``/tickets/{id}`` and their fragments and forms."""
    router = APIRouter()
    time: Clock = clock or SystemClock()
    rules = settings.rules()
    depts = sorted(set(rules.tickets.values()))

    def board(user: User, *, show: str) -> dict[str, Any]:
        found = list_tickets(engine, open_only=show == "open", limit=300)
        timers = alarm_timers(engine, [dedup_key(t["id"]) for t in found])
        for t in found:
            t["timers"] = timers.get(dedup_key(t["id"]))
            t["may_act"] = may_act_in(user, t["dept"])
        return {
            "tickets": found,
            "show": show,
            "now": time.now().isoformat(),
            "categories": CATEGORIES,
            "may_open": user.role in ("manager", "admin") or user.dept in depts,
        }

    def one(user: User, ticket_id: int) -> dict[str, Any]:
        try:
            t = ticket_detail(engine, ticket_id)
        except ExceptionNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        t["timers"] = alarm_timers(engine, [dedup_key(ticket_id)]).get(dedup_key(ticket_id))
        t["may_act"] = may_act_in(user, t["dept"])
        return {"t": t, "now": time.now().isoformat()}

    @router.get("/tickets", response_class=HTMLResponse)
    def tickets_page(
        request: Request, show: Literal["open", "all"] = "open", user: User = VIEWER
    ) -> HTMLResponse:
        """Open tickets with their first-response clock and escalation."""
        return render(request, "tickets.html", board(user, show=show))

    @router.get("/fragments/tickets", response_class=HTMLResponse)
    def tickets_fragment(
        request: Request, show: Literal["open", "all"] = "open", user: User = VIEWER
    ) -> HTMLResponse:
        """The list the live updates replace."""
        return render(request, "_tickets.html", board(user, show=show))

    @router.post("/tickets")
    async def ticket_open_form(request: Request, user: User = VIEWER) -> Response:
        """Open a ticket from the form on the list."""
        fields = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
        category = fields.get("category", "")
        dept = rules.tickets.get(category)
        if dept is not None and not may_act_in(user, dept):
            context = board(user, show="open")
            context.update(error=f"{user.name} may not open {category} tickets ({dept})")
            return render(request, "tickets.html", context, status_code=403)

        def run() -> int:
            with engine.begin() as conn:
                watch = Watch(conn=conn, now=time.now(), rules=rules, site=settings.site)
                return open_ticket(
                    watch,
                    category=category,
                    order_no=fields.get("order_no") or None,
                    description=fields.get("description", ""),
                    by=user.name,
                )

        try:
            ticket_id = await run_in_threadpool(run)
        except ExceptionRefused as exc:
            context = board(user, show="open")
            context.update(error=str(exc), fields=fields)
            return render(request, "tickets.html", context, status_code=409)
        return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)

    @router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
    def ticket_page(request: Request, ticket_id: int, user: User = VIEWER) -> HTMLResponse:
        """One ticket: its clock, its history and the forms to act."""
        return render(request, "ticket.html", one(user, ticket_id))

    @router.get("/fragments/tickets/{ticket_id}", response_class=HTMLResponse)
    def ticket_fragment(request: Request, ticket_id: int, user: User = VIEWER) -> HTMLResponse:
        """The part of one ticket's page the live updates replace."""
        return render(request, "_ticket.html", one(user, ticket_id))

    @router.post("/tickets/{ticket_id}/{step}")
    async def ticket_form(
        request: Request, ticket_id: int, step: Step, user: User = VIEWER
    ) -> Response:
        """A step from the page's forms: done, then back to the ticket."""
        fields = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
        try:
            await run_in_threadpool(
                ticket_action, engine, settings, time, user, ticket_id, step, fields
            )
        except ActionRefused as exc:
            if exc.status == 404:
                raise HTTPException(status_code=404, detail=exc.detail) from None
            context = one(user, ticket_id)
            context.update(error=exc.detail, step=step, fields=fields)
            return render(request, "ticket.html", context, status_code=exc.status)
        return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)

    return router


def ticket_action(
    engine: Engine,
    settings: CentralSettings,
    clock: Clock,
    user: User,
    ticket_id: int,
    step: str,
    fields: dict[str, str],
) -> None:
    """Do ``step`` on a ticket for ``user`` in one transaction; :class:`ActionRefused`
    (404, 403 or 409) when it may not be done."""
    try:
        detail = ticket_detail(engine, ticket_id)
    except ExceptionNotFound as exc:
        raise ActionRefused(404, str(exc)) from None
    if not may_act_in(user, detail["dept"]):
        raise ActionRefused(403, f"{user.name} may not act for department {detail['dept']}")
    text = fields.get("text", "")
    try:
        with engine.begin() as conn:
            watch = Watch(conn=conn, now=clock.now(), rules=settings.rules(), site=settings.site)
            if step == "ack":
                acknowledge_ticket(watch, ticket_id, by=user.name, check_allowed=True)
            elif step == "respond":
                respond(watch, ticket_id, text=text, by=user.name)
            elif step == "follow-up":
                follow_up(watch, ticket_id, text=text, by=user.name)
            elif step == "close":
                close_ticket(
                    watch, ticket_id, confirmation=fields.get("confirmation", ""), by=user.name
                )
            else:
                raise ActionRefused(404, f"no step {step!r}")
    except NotAllowed as exc:
        raise ActionRefused(403, str(exc)) from None
    except ExceptionRefused as exc:
        raise ActionRefused(409, str(exc)) from None
