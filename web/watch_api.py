"""The watch's JSON API: exceptions, tickets, alerts, deadlines and the timeout KPI
(docs/central.md, "API").

``/api/exceptions`` (list, open), ``/api/exceptions/{id}`` (with its history) and its
steps (``ack``, ``plan``, ``resolve``, ``close``), ``/api/alerts`` (the newest first) and
``/api/alerts/ack``, ``/api/deadlines?state=warned|breached``, ``/api/tickets`` (list,
open), ``/api/tickets/{id}`` and its steps (``ack``, ``respond``, ``follow-up``,
``close``), ``/api/kpi/timeouts?from=&to=&shop=&dept=``. Mistakes answer with a
status and ``{"detail": "..."}``: 404 unknown id, 409 a step the state does not allow,
403 someone not on the policy's list of who may acknowledge, 422 bad input.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from central.clock import Clock, SystemClock
from central.db import orders
from central.reports import timeout_kpi
from central.settings import CentralSettings
from central.users import User
from central.watch.acks import AlertAck, acknowledge
from central.watch.alerts import recent_alerts
from central.watch.context import Watch
from central.watch.deadlines import STATES, list_deadlines
from central.watch.exceptions import (
    ExceptionNotFound,
    ExceptionRefused,
    NotAllowed,
    acknowledge_exception,
    close_exception,
    exception_detail,
    list_exceptions,
    open_exception,
    post_plan,
    resolve_exception,
)
from central.watch.tables import exceptions
from central.watch.tickets import (
    TicketNotFound,
    acknowledge_ticket,
    close_ticket,
    follow_up,
    list_tickets,
    open_ticket,
    respond,
    ticket_detail,
)
from web.auth import CurrentUser, ensure_dept, require_role

__all__ = ["watch_routes"]

T = TypeVar("T")

#: Exception steps: a supervisor within their department, a manager, an admin.
Step = Annotated[User, Depends(require_role("supervisor", "manager"))]
#: Figures for the reports: not for packers.
Reader = Annotated[User, Depends(require_role("supervisor", "manager"))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NewException(_Body):
    """``POST /api/exceptions``."""

    type: str = Field(min_length=1)
    order_no: str | None = Field(default=None, max_length=64)
    description: str = Field(min_length=1, max_length=2000)
    severity: Literal["general", "major"] | None = None
    dept: str | None = Field(default=None, max_length=48)
    cause_class: str | None = None
    by: str | None = Field(default=None, min_length=1, max_length=64)


class By(_Body):
    """Who does a step: the user logged in unless given (only an admin may name
    someone else, e.g. a supervisor who called it in)."""

    by: str | None = Field(default=None, min_length=1, max_length=64)


class Plan(By):
    """``POST /api/exceptions/{id}/plan``."""

    text: str = Field(min_length=1, max_length=2000)


class NewTicket(_Body):
    """``POST /api/tickets``."""

    category: Literal["complaint", "return", "exchange", "reissue"]
    order_no: str | None = Field(default=None, max_length=64)
    description: str = Field(min_length=1, max_length=2000)
    dept: str | None = Field(default=None, max_length=48)
    severity: Literal["general", "major"] = "general"
    by: str | None = Field(default=None, min_length=1, max_length=64)


class Said(By):
    """``POST /api/tickets/{id}/respond`` and ``…/follow-up``."""

    text: str = Field(min_length=1, max_length=2000)


class Confirmed(By):
    """``POST /api/tickets/{id}/close``: the customer's confirmation (409 without)."""

    confirmation: str = ""


class Report(By):
    """``POST /api/exceptions/{id}/resolve``: the resolution report."""

    cause: str = ""
    action: str = ""
    outcome: str = ""
    cause_class: str | None = None


def watch_routes(
    *, engine: Engine, settings: CentralSettings, clock: Clock | None = None
) -> APIRouter:
    """The watch's routes over ``engine``, acting at ``clock``'s time."""
    router = APIRouter(prefix="/api")
    rules = settings.rules()
    time: Clock = clock or SystemClock()

    def act(step: Callable[[Watch], T]) -> T:
        with _answers(), engine.begin() as conn:
            return step(Watch(conn=conn, now=time.now(), rules=rules, site=settings.site))

    def detail(exception_id: int, _user: User) -> dict[str, Any]:
        # The customer of an exception is stored masked already (customer_of).
        try:
            return exception_detail(engine, exception_id)
        except ExceptionNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    def dept_of(exception_id: int) -> str | None:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(exceptions.c.dept).where(exceptions.c.id == exception_id)
            ).first()
        if row is None:
            raise HTTPException(status_code=404, detail=f"no exception #{exception_id}")
        return str(row.dept) if row.dept is not None else None

    def actor(user: User, by: str | None, exception_id: int | None = None) -> str:
        """Who the step is recorded as; 403 for a supervisor of another department
        or someone naming another person."""
        if exception_id is not None:
            ensure_dept(user, dept_of(exception_id))
        if by is None or by == user.name:
            return user.name
        if user.role != "admin":
            raise HTTPException(
                status_code=403, detail=f"{user.name} may act only as {user.name}, not {by}"
            )
        return by

    @router.get("/exceptions")
    def api_exceptions(
        open_only: bool = Query(default=False, alias="open"),
        state: Literal["open", "acknowledged", "plan_posted", "resolved", "closed"] | None = None,
        order_no: str | None = None,
        limit: int = Query(default=500, ge=1, le=5000),
    ) -> dict[str, Any]:
        """Exceptions, newest first (``?open=true``: those still needing someone)."""
        found = list_exceptions(
            engine, open_only=open_only, state=state, order_no=order_no, limit=limit
        )
        return {"exceptions": found}

    @router.post("/exceptions", status_code=201)
    def api_open_exception(body: NewException, user: CurrentUser) -> dict[str, Any]:
        """Open an exception by hand (anyone logged in may report one); 422 for an
        unknown type, order or department."""
        found_by = actor(user, body.by)

        def run(watch: Watch) -> int | None:
            if (
                body.order_no is not None
                and watch.conn.execute(
                    sa.select(orders.c.order_no).where(orders.c.order_no == body.order_no)
                ).first()
                is None
            ):
                raise ExceptionRefused(f"no order {body.order_no!r}")
            return open_exception(
                watch,
                type=body.type,
                order_no=body.order_no,
                description=body.description,
                severity=body.severity,
                dept=body.dept,
                cause_class=body.cause_class,
                found_by=found_by,
            )

        try:
            with engine.begin() as conn:
                new_id = run(Watch(conn=conn, now=time.now(), rules=rules, site=settings.site))
        except ExceptionRefused as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        assert new_id is not None
        return detail(new_id, user)

    @router.get("/exceptions/{exception_id}")
    def api_exception(exception_id: int, user: CurrentUser) -> dict[str, Any]:
        """One exception with its history."""
        return detail(exception_id, user)

    @router.post("/exceptions/{exception_id}/ack")
    def api_ack(exception_id: int, body: By, user: Step) -> dict[str, Any]:
        """Acknowledge (the policy's list of who may applies)."""
        by = actor(user, body.by, exception_id)
        act(lambda w: acknowledge_exception(w, exception_id, by=by, check_allowed=True))
        return detail(exception_id, user)

    @router.post("/exceptions/{exception_id}/plan")
    def api_plan(exception_id: int, body: Plan, user: Step) -> dict[str, Any]:
        """Post the department's plan."""
        by = actor(user, body.by, exception_id)
        act(lambda w: post_plan(w, exception_id, text=body.text, by=by))
        return detail(exception_id, user)

    @router.post("/exceptions/{exception_id}/resolve")
    def api_resolve(exception_id: int, body: Report, user: Step) -> dict[str, Any]:
        """Resolve with a report (cause, action, outcome); 409 without one."""
        by = actor(user, body.by, exception_id)
        act(
            lambda w: resolve_exception(
                w,
                exception_id,
                cause=body.cause,
                action=body.action,
                outcome=body.outcome,
                by=by,
                cause_class=body.cause_class,
            )
        )
        return detail(exception_id, user)

    @router.post("/exceptions/{exception_id}/close")
    def api_close(exception_id: int, body: By, user: Step) -> dict[str, Any]:
        """Close a resolved exception."""
        by = actor(user, body.by, exception_id)
        act(lambda w: close_exception(w, exception_id, by=by))
        return detail(exception_id, user)

    def ticket(ticket_id: int) -> dict[str, Any]:
        with _answers():
            return ticket_detail(engine, ticket_id)

    def ticket_actor(user: User, by: str | None, ticket_id: int) -> str:
        ensure_dept(user, ticket(ticket_id)["dept"])
        return actor(user, by)

    @router.get("/tickets")
    def api_tickets(
        open_only: bool = Query(default=False, alias="open"),
        order_no: str | None = None,
        limit: int = Query(default=500, ge=1, le=5000),
    ) -> dict[str, Any]:
        """After-sales tickets, newest first (``?open=true``: not closed)."""
        found = list_tickets(engine, open_only=open_only, order_no=order_no, limit=limit)
        now = time.now()
        for t in found:
            if t["responded_at"] is None:
                due = dt.datetime.fromisoformat(t["respond_by"])
                t["respond_seconds_left"] = int((due - now).total_seconds())
        return {"tickets": found, "now": now.isoformat()}

    @router.post("/tickets", status_code=201)
    def api_open_ticket(body: NewTicket, user: Step) -> dict[str, Any]:
        """Open a ticket (a supervisor for their own department)."""
        ensure_dept(user, body.dept or rules.tickets.get(body.category))
        by = actor(user, body.by)

        def run(watch: Watch) -> int:
            if body.order_no is not None:
                known = watch.conn.execute(
                    sa.select(orders.c.order_no).where(orders.c.order_no == body.order_no)
                ).first()
                if known is None:
                    raise TicketNotFound(f"no order {body.order_no!r}")
            return open_ticket(
                watch,
                category=body.category,
                order_no=body.order_no,
                description=body.description,
                dept=body.dept,
                severity=body.severity,
                by=by,
            )

        return ticket(act(run))

    @router.get("/tickets/{ticket_id}")
    def api_ticket(ticket_id: int, _user: CurrentUser) -> dict[str, Any]:
        """One ticket with its history."""
        return ticket(ticket_id)

    @router.post("/tickets/{ticket_id}/ack")
    def api_ticket_ack(ticket_id: int, body: By, user: Step) -> dict[str, Any]:
        """Acknowledge: the alert stops repeating; the response is still due."""
        by = ticket_actor(user, body.by, ticket_id)
        act(lambda w: acknowledge_ticket(w, ticket_id, by=by, check_allowed=True))
        return ticket(ticket_id)

    @router.post("/tickets/{ticket_id}/respond")
    def api_ticket_respond(ticket_id: int, body: Said, user: Step) -> dict[str, Any]:
        """The response to the customer (the first meets the 10-minute clock)."""
        by = ticket_actor(user, body.by, ticket_id)
        act(lambda w: respond(w, ticket_id, text=body.text, by=by))
        return ticket(ticket_id)

    @router.post("/tickets/{ticket_id}/follow-up")
    def api_ticket_follow_up(ticket_id: int, body: Said, user: Step) -> dict[str, Any]:
        """A follow-up, into the history."""
        by = ticket_actor(user, body.by, ticket_id)
        act(lambda w: follow_up(w, ticket_id, text=body.text, by=by))
        return ticket(ticket_id)

    @router.post("/tickets/{ticket_id}/close")
    def api_ticket_close(ticket_id: int, body: Confirmed, user: Step) -> dict[str, Any]:
        """Close with the customer's confirmation; 409 without one."""
        by = ticket_actor(user, body.by, ticket_id)
        act(lambda w: close_ticket(w, ticket_id, confirmation=body.confirmation, by=by))
        return ticket(ticket_id)

    @router.get("/kpi/timeouts")
    def api_kpi_timeouts(
        _user: Reader,
        start: Annotated[dt.date | None, Query(alias="from")] = None,
        end: Annotated[dt.date | None, Query(alias="to")] = None,
        shop: str | None = None,
        dept: str | None = None,
    ) -> dict[str, Any]:
        """Timeout rate per day, shop and department; ``from``/``to`` are local days
        (``to`` included; default: the last 7 days)."""
        zone = settings.zone()
        now = time.now()
        last = end or now.astimezone(zone).date()
        first = start or last - dt.timedelta(days=6)
        if first > last:
            raise HTTPException(status_code=422, detail="from must not be after to")
        lo = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
        hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        rows = timeout_kpi(
            engine,
            start=lo,
            end=hi,
            now=now,
            zone=zone,
            default_dept=rules.route("shipping_delay").dept,
            shop=shop,
            dept=dept,
        )
        return {"from": first.isoformat(), "to": last.isoformat(), "rows": rows}

    @router.get("/alerts")
    def api_alerts(
        limit: int = Query(default=100, ge=1, le=5000),
        dedup_key: str | None = None,
        exception_id: int | None = None,
        order_no: str | None = None,
    ) -> dict[str, Any]:
        """Alerts, newest first, as published (plus ``published_at``)."""
        found = recent_alerts(
            engine, limit=limit, dedup_key=dedup_key, exception_id=exception_id, order_no=order_no
        )
        return {"alerts": found}

    @router.post("/alerts/ack")
    def api_alert_ack(body: AlertAck, user: Step) -> dict[str, Any]:
        """``{"dedup_key"|"exception_id": ..., "by": ...}``, as over MQTT."""
        for_exception = body.exception_id
        if for_exception is None and body.dedup_key is not None:
            sent = recent_alerts(engine, limit=1, dedup_key=body.dedup_key)
            if sent:
                ensure_dept(user, sent[0]["dept"])
        actor(user, body.by, for_exception)
        with _answers():
            done = acknowledge(engine, body, now=time.now(), rules=rules, check_allowed=True)
        return {"acknowledged": done}

    @router.get("/deadlines")
    def api_deadlines(
        state: str | None = None,
        order_no: str | None = None,
        limit: int = Query(default=500, ge=1, le=5000),
    ) -> dict[str, Any]:
        """Deadlines, soonest first; ``?state=warned`` about to breach, ``breached`` overdue."""
        if state is not None and state not in STATES:
            raise HTTPException(status_code=422, detail=f"state must be one of {', '.join(STATES)}")
        now = time.now()
        found = list_deadlines(engine, state=state, order_no=order_no, limit=limit)
        for d in found:
            due = dt.datetime.fromisoformat(d["due_at"])
            d["seconds_left"] = int((due - now).total_seconds())
        return {"deadlines": found, "now": now.isoformat()}

    return router


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """The watch's refusals as HTTP answers: 404, 403, 409."""
    try:
        yield
    except ExceptionNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except NotAllowed as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    except ExceptionRefused as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
