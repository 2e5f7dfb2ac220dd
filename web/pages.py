"""The supervisors' and managers' pages: exceptions, tickets, benches, equipment, reports.

Each page is rendered on the server in the base layout (:func:`web.layout.render`) and
refreshes itself over ``/events/watch`` (the same Server-Sent Events recovery as the
floor, ``web/static/live.js``); every action is a plain form POST carrying the CSRF
token, answered by a redirect back (or the page again with the refusal in words), and
has its JSON twin under ``/api/``. The numbers come from the same functions the command
line uses: :mod:`central.reports`, :mod:`central.equipment`, :mod:`central.benches`, the
watch's :mod:`central.watch.exceptions` and :mod:`central.watch.board`.

Who may do what is checked here, on the server: packers open none of these pages;
a supervisor acts only on exceptions of their own department; managers and admins
everywhere (:func:`web.auth.ensure_dept`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from central.benches import bench_problems
from central.clock import Clock, SystemClock
from central.db import READ_ONLY, events
from central.equipment import NOTE_KINDS, EquipmentRefused, add_note, equipment_ledger
from central.reports import (
    BadPeriod,
    Report,
    build_report,
    parse_period,
    report_csv,
    table_csv,
)
from central.settings import CentralSettings
from central.users import User
from central.watch.board import alarm_timers
from central.watch.context import Watch
from central.watch.exceptions import (
    ExceptionNotFound,
    ExceptionRefused,
    NotAllowed,
    acknowledge_exception,
    assign_exception,
    close_exception,
    dedup_key,
    exception_detail,
    list_exceptions,
    post_plan,
    resolve_exception,
)
from central.watch.rules import CAUSE_CLASSES
from central.watch.tables import alerts, exception_history, exceptions, ticket_history
from web.auth import current_user, may_act_in, require_role
from web.layout import render

__all__ = ["ActionRefused", "exception_action", "page_routes", "watch_change_token"]

#: Who may open these pages (an admin always may).
VIEWERS = ("supervisor", "manager")
VIEWER = Depends(require_role(*VIEWERS))
SIGNED_IN = Depends(current_user)


def watch_change_token(engine: Engine) -> str:
    """Changes whenever an exception, a ticket, their history, an alert or a bench event
    changed: what the pages' event stream watches."""
    from central.equipment import equipment_notes

    with engine.connect().execution_options(**READ_ONLY) as conn:
        values = conn.execute(
            sa.select(
                sa.select(sa.func.max(exception_history.c.id)).scalar_subquery(),
                sa.select(sa.func.max(exceptions.c.updated_at)).scalar_subquery(),
                sa.select(sa.func.max(alerts.c.id)).scalar_subquery(),
                sa.select(sa.func.max(events.c.id)).scalar_subquery(),
                sa.select(sa.func.max(equipment_notes.c.id)).scalar_subquery(),
                sa.select(sa.func.max(ticket_history.c.id)).scalar_subquery(),
            )
        ).one()
    return ":".join(str(v) for v in values)


class AssignBody(BaseModel):
    """``POST /api/exceptions/{id}/assign``: another department and/or a person."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    dept: str | None = Field(default=None, max_length=48)
    to: str = Field(default="", max_length=64)
    by: str | None = Field(default=None, min_length=1, max_length=64)


class NoteBody(BaseModel):
    """``POST /api/equipment/notes``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    station: str = Field(min_length=1, max_length=64)
    device: Literal["printer", "scanner"]
    text: str = Field(min_length=1, max_length=2000)
    kind: str = "maintenance"
    at: dt.datetime | None = None
    device_id: str | None = Field(default=None, max_length=255)


def _this_week(now: dt.datetime, zone: Any) -> str:
    year, week, _ = now.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def page_routes(
    *,
    engine: Engine,
    settings: CentralSettings,
    clock: Clock | None = None,
    poll_interval: float = 1.0,
) -> APIRouter:
    """The routes of the pages and their JSON, over ``engine``, at ``clock``'s time."""
    router = APIRouter()
    time: Clock = clock or SystemClock()
    rules = settings.rules()
    zone = settings.zone()
    viewer = VIEWER
    default_dept = rules.route("shipping_delay").dept
    depts = sorted({route.dept for route in rules.routing.values()})

    # ------------------------------------------------------------------ live updates

    @router.get("/events/watch", dependencies=[viewer])
    async def watch_events(request: Request) -> EventSourceResponse:
        """``changed`` whenever exceptions, alerts, bench events or equipment entries
        changed (``hello`` first, on every connection)."""

        async def stream() -> AsyncIterator[dict[str, str]]:
            last: str | None = None
            while not await request.is_disconnected():
                try:
                    token: str | None = await run_in_threadpool(watch_change_token, engine)
                except sa.exc.SQLAlchemyError:
                    token = last
                if token is not None and token != last:
                    yield {"event": "hello" if last is None else "changed", "data": token}
                    last = token
                await asyncio.sleep(poll_interval)

        return EventSourceResponse(stream(), ping=15)

    # ------------------------------------------------------------------ exceptions

    def board(user: User, *, show: str) -> dict[str, Any]:
        found = list_exceptions(engine, open_only=show == "open", limit=300)
        if show == "resolved":
            found = [x for x in found if x["state"] == "resolved"]
        timers = alarm_timers(engine, [dedup_key(x["id"]) for x in found])
        for x in found:
            x["timers"] = timers.get(dedup_key(x["id"]))
            x["may_act"] = may_act_in(user, x["dept"])
        return {
            "exceptions": found,
            "show": show,
            "now": time.now().isoformat(),
            "cause_classes": list(CAUSE_CLASSES),
            "depts": depts,
        }

    @router.get("/exceptions", response_class=HTMLResponse)
    def exceptions_page(
        request: Request,
        show: Literal["open", "resolved", "all"] = "open",
        user: User = VIEWER,
    ) -> HTMLResponse:
        """Open exceptions with their timers and what may be done to them."""
        return render(request, "exceptions.html", board(user, show=show))

    @router.get("/fragments/exceptions", response_class=HTMLResponse)
    def exceptions_fragment(
        request: Request,
        show: Literal["open", "resolved", "all"] = "open",
        user: User = VIEWER,
    ) -> HTMLResponse:
        """The list the live updates replace."""
        return render(request, "_exceptions.html", board(user, show=show))

    def one_exception(user: User, exception_id: int) -> dict[str, Any]:
        try:
            x = exception_detail(engine, exception_id)
        except ExceptionNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        x["timers"] = alarm_timers(engine, [dedup_key(exception_id)]).get(dedup_key(exception_id))
        x["may_act"] = may_act_in(user, x["dept"])
        return {
            "x": x,
            "now": time.now().isoformat(),
            "cause_classes": list(CAUSE_CLASSES),
            "depts": depts,
        }

    @router.get("/exceptions/{exception_id}", response_class=HTMLResponse)
    def exception_page(request: Request, exception_id: int, user: User = VIEWER) -> HTMLResponse:
        """One exception: its timers, its append-only history and the forms to act."""
        return render(request, "exception.html", one_exception(user, exception_id))

    @router.get("/fragments/exceptions/{exception_id}", response_class=HTMLResponse)
    def exception_fragment(
        request: Request, exception_id: int, user: User = VIEWER
    ) -> HTMLResponse:
        """The part of one exception's page the live updates replace."""
        return render(request, "_exception.html", one_exception(user, exception_id))

    @router.post("/exceptions/{exception_id}/{step}")
    async def exception_form(
        request: Request,
        exception_id: int,
        step: Literal["ack", "plan", "assign", "resolve", "close"],
        user: User = SIGNED_IN,
    ) -> Response:
        """A step from the page's forms: done, then back to where the form was."""
        form = await request.form()
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        back = fields.get("back", "")
        if not back.startswith("/exceptions") or back.startswith("//"):
            back = f"/exceptions/{exception_id}"
        try:
            await run_in_threadpool(
                exception_action,
                engine,
                settings,
                time,
                user,
                exception_id,
                step,
                fields,
            )
        except ActionRefused as exc:
            context = one_exception(user, exception_id) if exc.status != 404 else {}
            if exc.status == 404:
                raise HTTPException(status_code=404, detail=exc.detail) from None
            context.update(error=exc.detail, step=step, fields=fields)
            return render(request, "exception.html", context, status_code=exc.status)
        return RedirectResponse(back, status_code=303)

    @router.post("/api/exceptions/{exception_id}/assign")
    def api_assign(exception_id: int, body: AssignBody, user: User = SIGNED_IN) -> dict[str, Any]:
        """Hand an exception to another department (its alarm follows) and/or a person:
        a supervisor of its department, a manager or an admin; 409 when nothing changes."""
        fields = {k: v for k, v in body.model_dump().items() if v is not None}
        try:
            exception_action(engine, settings, time, user, exception_id, "assign", fields)
        except ActionRefused as exc:
            raise HTTPException(status_code=exc.status, detail=exc.detail) from None
        return exception_detail(engine, exception_id)

    # ------------------------------------------------------------------ benches

    def benches_data() -> dict[str, Any]:
        return bench_problems(engine, now=time.now(), site=settings.site)

    @router.get("/benches", response_class=HTMLResponse, dependencies=[viewer])
    def benches_page(request: Request) -> HTMLResponse:
        """Refused scans, dead letters and integrity errors per bench."""
        return render(request, "benches.html", benches_data())

    @router.get("/fragments/benches", response_class=HTMLResponse, dependencies=[viewer])
    def benches_fragment(request: Request) -> HTMLResponse:
        """The part of the benches page the live updates replace."""
        return render(request, "_benches.html", benches_data())

    @router.get("/api/benches", dependencies=[viewer])
    def api_benches() -> dict[str, Any]:
        """Per bench: recent refusals (and counts by code, with hints), dead letters,
        integrity errors; ``unassigned``: dead letters naming no station."""
        return benches_data()

    # ------------------------------------------------------------------ equipment

    def ledger() -> list[dict[str, Any]]:
        found = equipment_ledger(engine, now=time.now(), labels_low=settings.labels_low)
        mine = _site_stations(engine, settings.site)
        return [d for d in found if d["station"] in mine]

    @router.get("/equipment", response_class=HTMLResponse, dependencies=[viewer])
    def equipment_page(request: Request) -> HTMLResponse:
        """Every printer and scanner, label stock, faults and maintenance."""
        return render(request, "equipment.html", {"devices": ledger(), "kinds": NOTE_KINDS})

    @router.get("/fragments/equipment", response_class=HTMLResponse, dependencies=[viewer])
    def equipment_fragment(request: Request) -> HTMLResponse:
        """The part of the equipment page the live updates replace."""
        return render(request, "_equipment.html", {"devices": ledger(), "kinds": NOTE_KINDS})

    @router.get("/api/equipment", dependencies=[viewer])
    def api_equipment() -> dict[str, Any]:
        """The equipment ledger (docs/equipment.md)."""
        return {"equipment": ledger()}

    def note(user: User, body: NoteBody) -> dict[str, Any]:
        if body.station not in _site_stations(engine, settings.site):
            raise EquipmentRefused(f"no station {body.station!r} at site {settings.site}")
        return add_note(
            engine,
            station=body.station,
            device=body.device,
            text=body.text,
            by=user.name,
            kind=body.kind,
            at=body.at,
            now=time.now(),
            device_id=body.device_id or None,
        )

    @router.post("/api/equipment/notes", status_code=201)
    def api_equipment_note(body: NoteBody, user: User = VIEWER) -> dict[str, Any]:
        """Add a maintenance entry (``by`` is the logged-in user); 422 when refused."""
        try:
            return note(user, body)
        except EquipmentRefused as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None

    @router.post("/equipment/notes")
    async def equipment_form(request: Request, user: User = VIEWER) -> Response:
        """The page's form for a maintenance entry."""
        form = await request.form()
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        error = ""
        try:
            at = _form_time(fields.get("at", ""), zone)
            body = NoteBody(
                station=fields.get("station", ""),
                device=fields.get("device", ""),  # type: ignore[arg-type]
                text=fields.get("text", ""),
                kind=fields.get("kind", "maintenance"),
                at=at,
                device_id=fields.get("device_id") or None,
            )
            await run_in_threadpool(note, user, body)
        except EquipmentRefused as exc:
            error = str(exc)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            error = _first_error(exc)
        if error:
            context = {"devices": ledger(), "kinds": NOTE_KINDS, "error": error}
            return render(request, "equipment.html", context, status_code=422)
        anchor = f"#{fields.get('station', '')}-{fields.get('device', '')}"
        return RedirectResponse("/equipment" + anchor, status_code=303)

    # ------------------------------------------------------------------ reports

    def report(kind: str, period: str) -> Report:
        try:
            span = parse_period(kind, period, zone)
        except BadPeriod as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return build_report(
            engine, span, now=time.now(), default_dept=default_dept, departments=depts
        )

    @router.get("/reports", response_class=HTMLResponse, dependencies=[viewer])
    def reports_page(
        request: Request, week: str | None = None, month: str | None = None
    ) -> HTMLResponse:
        """The week's (or month's) report with charts and CSV downloads."""
        kind, period = ("monthly", month) if month else ("weekly", week)
        period = period or _this_week(time.now(), zone)
        try:
            span = parse_period(kind, period, zone)
        except BadPeriod as exc:
            context = {"error": str(exc), "kind": kind, "period": period}
            return render(request, "reports.html", context, status_code=422)
        made = build_report(
            engine, span, now=time.now(), default_dept=default_dept, departments=depts
        )
        return render(
            request,
            "reports.html",
            {"report": made, "data": made.as_json(), "kind": kind, "period": span.label},
        )

    @router.get("/api/reports/{kind}/{period}", dependencies=[viewer])
    def api_report(kind: Literal["weekly", "monthly"], period: str) -> dict[str, Any]:
        """The report as ``packline central report ... --json`` gives it."""
        return report(kind, period).as_json()

    @router.get("/reports/{kind}/{period}.csv", dependencies=[viewer])
    def report_csv_all(kind: Literal["weekly", "monthly"], period: str) -> Response:
        """Every table of the report in one CSV (as ``--csv``)."""
        made = report(kind, period)
        name = f"packline-{kind}-{made.period.label}.csv"
        return _csv(report_csv(made), name)

    @router.get("/reports/{kind}/{period}/{table}.csv", dependencies=[viewer])
    def report_csv_table(kind: Literal["weekly", "monthly"], period: str, table: str) -> Response:
        """One table of the report as CSV."""
        made = report(kind, period)
        try:
            chosen = made.table(table)
        except KeyError:
            names = ", ".join(t.name for t in made.tables)
            raise HTTPException(
                status_code=404, detail=f"no table {table!r} (there are {names})"
            ) from None
        return _csv(table_csv(chosen), f"packline-{kind}-{made.period.label}-{table}.csv")

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
    return f"{user.name} may act only as {user.name}, not {by}"


def _actor(user: User, by: str | None) -> str:
    """Who the step is recorded as done by."""
    if by is None or by == user.name:
        return user.name
    if user.role == "admin":
        return by
    raise HTTPException(status_code=403, detail=_not_as(user, by))


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


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _site_stations(engine: Engine, site: str) -> set[str]:
    from central.db import stations

    with engine.connect().execution_options(**READ_ONLY) as conn:
        return set(
            conn.execute(sa.select(stations.c.station).where(stations.c.site == site)).scalars()
        )


def _form_time(text: str, zone: Any) -> dt.datetime | None:
    """A ``datetime-local`` field (site time) as UTC; None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EquipmentRefused(f"not a time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}"
    return str(exc)
