"""The watch's JSON API: exceptions, alerts and deadlines (docs/central.md, "API").

``/api/exceptions`` (list, open), ``/api/exceptions/{id}`` (with its history) and its
steps (``ack``, ``plan``, ``resolve``, ``close``), ``/api/alerts`` (the newest first) and
``/api/alerts/ack``, ``/api/deadlines?state=warned|breached``. Mistakes answer with a
status and ``{"detail": "..."}``: 404 unknown id, 409 a step the state does not allow,
403 someone not on the policy's list of who may acknowledge, 422 bad input.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query
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
    close_exception,
    exception_detail,
    list_exceptions,
    open_exception,
    post_plan,
    resolve_exception,
)

__all__ = ["watch_routes"]

T = TypeVar("T")


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
    by: str = Field(min_length=1, max_length=64)


class By(_Body):
    """Who does a step."""

    by: str = Field(min_length=1, max_length=64)


class Plan(By):
    """``POST /api/exceptions/{id}/plan``."""

    text: str = Field(min_length=1, max_length=2000)


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
    def api_open_exception(body: NewException) -> dict[str, Any]:
        """Open an exception by hand; 422 for an unknown type, order or department."""

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
                found_by=body.by,
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

    @router.post("/exceptions/{exception_id}/ack")
    def api_ack(exception_id: int, body: By) -> dict[str, Any]:
        """Acknowledge (the policy's list of who may applies)."""
        act(lambda w: acknowledge_exception(w, exception_id, by=body.by, check_allowed=True))
        return detail(exception_id)

    @router.post("/exceptions/{exception_id}/plan")
    def api_plan(exception_id: int, body: Plan) -> dict[str, Any]:
        """Post the department's plan."""
        act(lambda w: post_plan(w, exception_id, text=body.text, by=body.by))
        return detail(exception_id)

    @router.post("/exceptions/{exception_id}/resolve")
    def api_resolve(exception_id: int, body: Report) -> dict[str, Any]:
        """Resolve with a report (cause, action, outcome); 409 without one."""
        act(
            lambda w: resolve_exception(
                w,
                exception_id,
                cause=body.cause,
                action=body.action,
                outcome=body.outcome,
                by=body.by,
                cause_class=body.cause_class,
            )
        )
        return detail(exception_id)

    @router.post("/exceptions/{exception_id}/close")
    def api_close(exception_id: int, body: By) -> dict[str, Any]:
        """Close a resolved exception."""
        act(lambda w: close_exception(w, exception_id, by=body.by))
        return detail(exception_id)

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
    def api_alert_ack(body: AlertAck) -> dict[str, Any]:
        """``{"dedup_key"|"exception_id": ..., "by": ...}``, as over MQTT."""
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
