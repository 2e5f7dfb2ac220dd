"""The watch's JSON API: exceptions, alerts and deadlines (docs/central.md, "API").

``/api/exceptions`` (list, open), ``/api/exceptions/{id}`` (with its history) and its
steps (``ack``, ``plan``, ``resolve``, ``close``), ``/api/alerts`` (the newest first) and
``/api/alerts/ack``, ``/api/deadlines?state=warned|breached``. Mistakes answer with a
status and ``{"detail": "..."}``: 404 unknown id, 409 a step the state does not allow,
403 someone not on the policy's list of who may acknowledge, 422 bad input.

Who may act is checked on the server (:func:`exception_action`, shared with the
``/exceptions`` page's forms): packers never; a supervisor only on exceptions of their
own department; managers and admins on all. The step is recorded as done by the
logged-in user; ``by`` in the body may name someone else only for an admin (acting
for a person, as the CLI on the central host does).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from central.users import User
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from central.clock import Clock, SystemClock
from central.db import orders
from central.settings import CentralSettings
from central.watch.acks import AlertAck, acknowledge
from central.watch.alerts import recent_alerts
from central.watch.context import Watch
from central.watch.deadlines import STATES, list_deadlines
from central.watch.exceptions import (
    ExceptionNotFound,
    ExceptionRefused,
    NotAllowed,
    acknowledge_exception,
    assign_exception,
    close_exception,
    exception_detail,
    list_exceptions,
    open_exception,
    post_plan,
    resolve_exception,
)
from central.watch.tables import escalations, exceptions
from web.auth import current_user, may_act_in

__all__ = ["ActionRefused", "exception_action", "watch_routes"]

T = TypeVar("T")

#: The logged-in user (web.auth), as a route's parameter default.
SIGNED_IN = Depends(current_user)


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
    """Who does a step: the logged-in user unless an admin names someone."""

    by: str | None = Field(default=None, min_length=1, max_length=64)


class Plan(By):
    """``POST /api/exceptions/{id}/plan``."""

    text: str = Field(min_length=1, max_length=2000)


class Assign(By):
    """``POST /api/exceptions/{id}/assign``: another department and/or a person."""

    dept: str | None = Field(default=None, max_length=48)
    to: str = Field(default="", max_length=64)


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

    def detail(exception_id: int) -> dict[str, Any]:
        try:
            return exception_detail(engine, exception_id)
        except ExceptionNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

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
    def api_open_exception(body: NewException, user: User = SIGNED_IN) -> dict[str, Any]:
        """Open an exception by hand (not packers: they report at the bench); 422 for
        an unknown type, order or department."""
        if user.role == "packer":
            raise HTTPException(status_code=403, detail=_may_not(user, "open exceptions"))
        who = _actor(user, body.by)

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
                found_by=who,
            )

        try:
            with engine.begin() as conn:
                new_id = run(Watch(conn=conn, now=time.now(), rules=rules, site=settings.site))
        except ExceptionRefused as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        assert new_id is not None
        return detail(new_id)

    @router.get("/exceptions/{exception_id}")
    def api_exception(exception_id: int) -> dict[str, Any]:
        """One exception with its history."""
        return detail(exception_id)

    def step(user: User, exception_id: int, name: str, body: BaseModel) -> dict[str, Any]:
        fields = {k: v for k, v in body.model_dump().items() if v is not None}
        try:
            exception_action(engine, settings, time, user, exception_id, name, fields)
        except ActionRefused as exc:
            raise HTTPException(status_code=exc.status, detail=exc.detail) from None
        return detail(exception_id)

    @router.post("/exceptions/{exception_id}/ack")
    def api_ack(exception_id: int, body: By, user: User = SIGNED_IN) -> dict[str, Any]:
        """Acknowledge (the policy's list of who may applies)."""
        return step(user, exception_id, "ack", body)

    @router.post("/exceptions/{exception_id}/plan")
    def api_plan(exception_id: int, body: Plan, user: User = SIGNED_IN) -> dict[str, Any]:
        """Post the department's plan."""
        return step(user, exception_id, "plan", body)

    @router.post("/exceptions/{exception_id}/assign")
    def api_assign(exception_id: int, body: Assign, user: User = SIGNED_IN) -> dict[str, Any]:
        """Hand it to another department (its alarm follows) and/or a person."""
        return step(user, exception_id, "assign", body)

    @router.post("/exceptions/{exception_id}/resolve")
    def api_resolve(exception_id: int, body: Report, user: User = SIGNED_IN) -> dict[str, Any]:
        """Resolve with a report (cause, action, outcome); 409 without one."""
        return step(user, exception_id, "resolve", body)

    @router.post("/exceptions/{exception_id}/close")
    def api_close(exception_id: int, body: By, user: User = SIGNED_IN) -> dict[str, Any]:
        """Close a resolved exception."""
        return step(user, exception_id, "close", body)

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
    def api_alert_ack(body: AlertAck, user: User = SIGNED_IN) -> dict[str, Any]:
        """``{"dedup_key"|"exception_id": ..., "by": ...}``, as over MQTT; the alarm's
        department decides who may (a supervisor only their own)."""
        dept = _alarm_dept(engine, body.dedup_key, body.exception_id)
        if not may_act_in(user, dept):
            raise HTTPException(
                status_code=403, detail=_may_not(user, f"act for department {dept or '-'}")
            )
        if body.by != user.name and user.role != "admin":
            raise HTTPException(status_code=403, detail=_not_as(user, body.by))
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


class ActionRefused(Exception):
    """A step on an exception that is refused: ``status`` (403, 404, 409, 422) and
    ``detail`` in words."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _may_not(user: User, what: str) -> str:
    return f"{user.name} ({user.role}{' ' + user.dept if user.dept else ''}) may not {what}"


def _not_as(user: User, by: str | None) -> str:
    return f"{user.name} acts as themself, not as {by!r} (only an admin acts for someone)"


def _actor(user: User, by: str | None) -> str:
    """Who the step is recorded as done by."""
    if by is None or by == user.name:
        return user.name
    if user.role == "admin":
        return by
    raise HTTPException(status_code=403, detail=_not_as(user, by))


def _alarm_dept(engine: Engine, key: str | None, exception_id: int | None) -> str | None:
    with engine.connect() as conn:
        if exception_id is not None:
            return conn.execute(
                sa.select(exceptions.c.dept).where(exceptions.c.id == exception_id)
            ).scalar()
        return conn.execute(
            sa.select(escalations.c.dept)
            .where(escalations.c.dedup_key == key)
            .order_by(escalations.c.id.desc())
            .limit(1)
        ).scalar()


def exception_action(
    engine: Engine,
    settings: CentralSettings,
    clock: Clock,
    user: User,
    exception_id: int,
    step: str,
    fields: dict[str, Any],
) -> None:
    """Do ``step`` (``ack``, ``plan``, ``assign``, ``resolve``, ``close``) on an
    exception for ``user``, with the form's or body's ``fields``, in one transaction.

    Raises :class:`ActionRefused`: 404 unknown exception, 403 a role or department
    that may not (or someone not on the policy's list), 409 a step the state does not
    allow or a resolution without its report.
    """
    try:
        who = _actor(user, str(fields["by"]) if fields.get("by") else None)
    except HTTPException as exc:
        raise ActionRefused(403, str(exc.detail)) from None
    rules = settings.rules()

    def text(name: str) -> str:
        return str(fields.get(name) or "")

    try:
        with engine.begin() as conn:
            watch = Watch(conn=conn, now=clock.now(), rules=rules, site=settings.site)
            dept = conn.execute(
                sa.select(exceptions.c.dept).where(exceptions.c.id == exception_id)
            ).scalar()
            if dept is None:
                raise ExceptionNotFound(f"no exception #{exception_id}")
            if not may_act_in(user, dept):
                raise ActionRefused(403, _may_not(user, f"act for department {dept}"))
            if step == "ack":
                acknowledge_exception(watch, exception_id, by=who, check_allowed=True)
            elif step == "plan":
                post_plan(watch, exception_id, text=text("text"), by=who)
            elif step == "assign":
                assign_exception(
                    watch, exception_id, by=who, dept=text("dept") or None, to=text("to")
                )
            elif step == "resolve":
                resolve_exception(
                    watch,
                    exception_id,
                    cause=text("cause"),
                    action=text("action"),
                    outcome=text("outcome"),
                    by=who,
                    cause_class=text("cause_class") or None,
                )
            elif step == "close":
                close_exception(watch, exception_id, by=who)
            else:
                raise ActionRefused(404, f"no step {step!r}")
    except ExceptionNotFound as exc:
        raise ActionRefused(404, str(exc)) from None
    except NotAllowed as exc:
        raise ActionRefused(403, str(exc)) from None
    except ExceptionRefused as exc:
        raise ActionRefused(409, str(exc)) from None


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
