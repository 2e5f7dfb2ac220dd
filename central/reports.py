"""Weekly and monthly shipping reports (A3), from the database the watch keeps.

One function, :func:`build_report`, computes every number the ``/reports`` page, its
JSON (``/api/reports/...``), its CSV exports and ``packline central report`` show, so
they never disagree. A report covers a :class:`Period` (an ISO week or a calendar
month) in the site's time zone; what it counts:

- **orders shipped**: an order is shipped when its ship deadline was met (the bench's
  time of its last parcel, corrected for clock skew); an order without deadlines
  counts at its first parcel. **Parcels shipped** counts every parcel confirmed.
- **on-time rate**: of the orders shipped that had a ship deadline, the share shipped
  by it.
- **timeout rate per department**: of the orders with a deadline (pack or ship) due in
  the period, the share that missed one, attributed to the department its
  ``shipping_delay`` exception was routed to (the routing table's department when no
  exception was opened). The rates of the departments add up to the overall rate.
- **exceptions** opened in the period by type, by cause class (internal or external)
  and by outcome (their state at the end of the period, from the append-only history),
  and the mean time from opening to acknowledgement and to resolution, per department.

Every table is a :class:`Table` (title, columns, rows) so that one CSV writer serves
them all. Works on SQLite and PostgreSQL: the grouping by day happens here, in the
site's time zone, not in SQL.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import READ_ONLY, orders, shipments
from central.watch.rules import CAUSE_CLASSES
from central.watch.tables import deadlines, exception_history, exceptions
from sync.errors import UserError

__all__ = [
    "BadPeriod",
    "Period",
    "Report",
    "Table",
    "build_report",
    "month_period",
    "parse_period",
    "report_csv",
    "site_zone",
    "table_csv",
    "timeout_kpi",
    "week_period",
]

Kind = Literal["weekly", "monthly"]

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class BadPeriod(UserError, ValueError):
    """A week or month that cannot be read; ``str()`` says what is expected."""


def site_zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (``Asia/Shanghai``); :class:`BadPeriod` otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadPeriod(f"unknown time zone {name!r} (use a name such as Asia/Shanghai)") from None


@dataclasses.dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC, with its name (``2026-W48``, ``2026-11``) and zone."""

    kind: Kind
    label: str
    start: dt.datetime
    end: dt.datetime
    zone: ZoneInfo

    def days(self) -> list[tuple[dt.date, dt.datetime, dt.datetime]]:
        """Each local day of the period with its UTC bounds."""
        out: list[tuple[dt.date, dt.datetime, dt.datetime]] = []
        day = self.start.astimezone(self.zone).date()
        while True:
            lo = dt.datetime.combine(day, dt.time(), self.zone).astimezone(dt.UTC)
            if lo >= self.end:
                return out
            hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.zone)
            out.append((day, lo, hi.astimezone(dt.UTC)))
            day += dt.timedelta(days=1)


def _local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def week_period(text: str, zone: ZoneInfo) -> Period:
    """The ISO week ``2026-W48`` (Monday 00:00 to Monday 00:00, site time)."""
    m = _WEEK.match(text.strip())
    if not m:
        raise BadPeriod(f"a week is written YYYY-Www (e.g. 2026-W48), not {text!r}")
    try:
        monday = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise BadPeriod(f"{m[1]} has no week {int(m[2])} ({text!r})") from None
    start = _local_midnight(monday, zone)
    end = _local_midnight(monday + dt.timedelta(days=7), zone)
    return Period("weekly", f"{m[1]}-W{m[2]}", start, end, zone)


def month_period(text: str, zone: ZoneInfo) -> Period:
    """The month ``2026-11`` (the 1st 00:00 to the next month's 1st, site time)."""
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m[2]) <= 12 or int(m[1]) < 1:
        raise BadPeriod(f"a month is written YYYY-MM (e.g. 2026-11), not {text!r}")
    year, month = int(m[1]), int(m[2])
    first = dt.date(year, month, 1)
    after = dt.date(year + month // 12, month % 12 + 1, 1)
    return Period(
        "monthly", f"{year:04d}-{month:02d}", _local_midnight(first, zone),
        _local_midnight(after, zone), zone,
    )  # fmt: skip


def parse_period(kind: str, text: str, zone: ZoneInfo) -> Period:
    """``weekly`` + ``2026-W48`` or ``monthly`` + ``2026-11``."""
    if kind == "weekly":
        return week_period(text, zone)
    if kind == "monthly":
        return month_period(text, zone)
    raise BadPeriod(f"a report is weekly or monthly, not {kind!r}")


@dataclasses.dataclass
class Table:
    """One table of a report: ``name`` (for files and URLs), ``title``, columns, rows."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}``."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclasses.dataclass
class Report:
    """A computed report: its period, the headline numbers and every table."""

    period: Period
    generated_at: dt.datetime
    summary: dict[str, Any]
    tables: list[Table]

    def table(self, name: str) -> Table:
        """The table called ``name``; ``KeyError`` when there is none."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def as_json(self) -> dict[str, Any]:
        """The whole report as JSON-ready data (what ``--json`` and the API give)."""
        return {
            "kind": self.period.kind,
            "period": self.period.label,
            "timezone": self.period.zone.key,
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "summary": self.summary,
            "tables": {
                t.name: {"title": t.title, "columns": t.columns, "rows": t.as_dicts()}
                for t in self.tables
            },
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclasses.dataclass
class _Shipped:
    order_no: str
    at: dt.datetime
    due_at: dt.datetime | None  # the ship deadline, when the order had one


def _shipped_orders(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[_Shipped]:
    met = conn.execute(
        sa.select(deadlines.c.order_no, deadlines.c.met_at, deadlines.c.due_at).where(
            deadlines.c.which == "ship",
            deadlines.c.met_at >= start,
            deadlines.c.met_at < end,
        )
    ).all()
    out = [_Shipped(r.order_no, _utc(r.met_at), _utc(r.due_at)) for r in met]
    ship_deadline = sa.select(deadlines.c.order_no).where(
        deadlines.c.which == "ship", deadlines.c.order_no == shipments.c.order_no
    )
    # Orders without deadlines (no payment time) count at their first parcel.
    first = (
        sa.select(
            shipments.c.order_no,
            sa.func.min(shipments.c.shipped_at_corrected).label("first_at"),
        )
        .where(~ship_deadline.exists())
        .group_by(shipments.c.order_no)
        .subquery()
    )
    plain = conn.execute(
        sa.select(first.c.order_no, first.c.first_at).where(
            first.c.first_at >= start, first.c.first_at < end
        )
    ).all()
    out += [_Shipped(r.order_no, _utc(r.first_at), None) for r in plain]
    return out


def _parcels_by_day(conn: Connection, period: Period) -> Counter[dt.date]:
    rows = conn.execute(
        sa.select(shipments.c.shipped_at_corrected).where(
            shipments.c.shipped_at_corrected >= period.start,
            shipments.c.shipped_at_corrected < period.end,
        )
    ).scalars()
    return Counter(_utc(at).astimezone(period.zone).date() for at in rows)


@dataclasses.dataclass
class _Due:
    dept: str
    timed_out: bool
    shop: str = ""
    #: The deadline it is counted under: the missed one, else its first.
    due_at: dt.datetime | None = None


def _due_orders(
    conn: Connection, start: dt.datetime, end: dt.datetime, *, now: dt.datetime, default_dept: str
) -> dict[str, _Due]:
    """Orders with a deadline due in ``[start, min(end, now))``, whether one was missed,
    and the department a miss belongs to."""
    cutoff = min(end, now)
    rows = conn.execute(
        sa.select(
            deadlines.c.order_no,
            deadlines.c.due_at,
            deadlines.c.met_at,
            deadlines.c.state,
            exceptions.c.dept,
            orders.c.shop,
        )
        .select_from(
            deadlines.outerjoin(exceptions, exceptions.c.id == deadlines.c.exception_id).outerjoin(
                orders, orders.c.order_no == deadlines.c.order_no
            )
        )
        .where(
            deadlines.c.due_at >= start,
            deadlines.c.due_at < cutoff,
            deadlines.c.state != "stopped",
        )
        .order_by(deadlines.c.order_no, deadlines.c.due_at)
    ).all()
    out: dict[str, _Due] = {}
    for r in rows:
        missed = _utc(r.met_at) > _utc(r.due_at) if r.met_at is not None else True
        held = out.get(r.order_no)
        if held is None:
            out[r.order_no] = _Due(r.dept or default_dept, missed, r.shop or "", _utc(r.due_at))
        elif missed and not held.timed_out:
            held.timed_out, held.dept = True, r.dept or default_dept
            held.due_at = _utc(r.due_at)
    return out


@dataclasses.dataclass
class _Exc:
    id: int
    type: str
    dept: str
    severity: str
    cause_class: str
    opened_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    state_at_end: str


def _exceptions_in(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[_Exc]:
    # When it was first opened: a reopened exception's opened_at is its reopening.
    first_open = (
        sa.select(
            exception_history.c.exception_id.label("xid"),
            sa.func.min(exception_history.c.at).label("first_at"),
        )
        .where(exception_history.c.entry == "opened")
        .group_by(exception_history.c.exception_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            exceptions.c.id,
            exceptions.c.type,
            exceptions.c.dept,
            exceptions.c.severity,
            exceptions.c.cause_class,
            first_open.c.first_at,
        )
        .join(first_open, first_open.c.xid == exceptions.c.id)
        .where(first_open.c.first_at >= start, first_open.c.first_at < end)
        .order_by(exceptions.c.id)
    ).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    acked: dict[int, dt.datetime] = {}
    resolved: dict[int, dt.datetime] = {}
    state: dict[int, str] = {}
    history = conn.execute(
        sa.select(
            exception_history.c.exception_id,
            exception_history.c.at,
            exception_history.c.entry,
            exception_history.c.state,
        )
        .where(exception_history.c.exception_id.in_(ids), exception_history.c.at < end)
        .order_by(exception_history.c.exception_id, exception_history.c.id)
    ).all()
    for h in history:
        at = _utc(h.at)
        # A plan acknowledges too; the first of them is the acknowledgement.
        if h.entry in ("acknowledged", "plan") and h.exception_id not in acked:
            acked[h.exception_id] = at
        if h.entry == "resolved" and h.exception_id not in resolved:
            resolved[h.exception_id] = at
        state[h.exception_id] = h.state
    return [
        _Exc(
            id=r.id,
            type=r.type,
            dept=r.dept,
            severity=r.severity,
            cause_class=r.cause_class,
            opened_at=_utc(r.first_at),
            acknowledged_at=acked.get(r.id),
            resolved_at=resolved.get(r.id),
            state_at_end=state.get(r.id, "open"),
        )
        for r in rows
    ]


_OPEN = ("open", "acknowledged", "plan_posted")


def _figures(
    conn: Connection, period: Period, *, now: dt.datetime, default_dept: str
) -> tuple[list[_Shipped], dict[str, _Due], list[_Exc]]:
    return (
        _shipped_orders(conn, period.start, period.end),
        _due_orders(conn, period.start, period.end, now=now, default_dept=default_dept),
        _exceptions_in(conn, period.start, period.end),
    )


def _summary(shipped: list[_Shipped], due: dict[str, _Due], excs: list[_Exc]) -> dict[str, Any]:
    with_deadline = [s for s in shipped if s.due_at is not None]
    on_time = sum(1 for s in with_deadline if s.due_at is not None and s.at <= s.due_at)
    timed_out = sum(1 for d in due.values() if d.timed_out)
    ack = [(e.acknowledged_at - e.opened_at).total_seconds() for e in excs if e.acknowledged_at]
    res = [(e.resolved_at - e.opened_at).total_seconds() for e in excs if e.resolved_at]
    return {
        "orders_shipped": len(shipped),
        "orders_shipped_with_deadline": len(with_deadline),
        "on_time": on_time,
        "on_time_rate": _rate(on_time, len(with_deadline)),
        "orders_due": len(due),
        "timed_out": timed_out,
        "timeout_rate": _rate(timed_out, len(due)),
        "exceptions_opened": len(excs),
        "exceptions_major": sum(1 for e in excs if e.severity == "major"),
        "exceptions_resolved": len(res),
        "exceptions_open_at_end": sum(1 for e in excs if e.state_at_end in _OPEN),
        "mean_ack_s": _mean(ack),
        "mean_resolve_s": _mean(res),
    }


def _summary_table(summary: dict[str, Any], parcels: int) -> Table:
    rows = [[k, v] for k, v in summary.items()]
    rows.insert(1, ["parcels_shipped", parcels])
    return Table("summary", "Summary", ["metric", "value"], rows)


def _daily_table(period: Period, shipped: list[_Shipped], parcels: Counter[dt.date]) -> Table:
    by_day: dict[dt.date, list[_Shipped]] = defaultdict(list)
    for s in shipped:
        by_day[s.at.astimezone(period.zone).date()].append(s)
    rows = []
    for day, _lo, _hi in period.days():
        todays = by_day.get(day, [])
        deadline = [s for s in todays if s.due_at is not None]
        on_time = sum(1 for s in deadline if s.due_at is not None and s.at <= s.due_at)
        rows.append(
            [day.isoformat(), len(todays), parcels.get(day, 0), on_time,
             _rate(on_time, len(deadline))]
        )  # fmt: skip
    return Table(
        "daily",
        "Orders shipped per day",
        ["day", "orders_shipped", "parcels_shipped", "on_time", "on_time_rate"],
        rows,
    )


def _timeouts_table(due: dict[str, _Due], depts: Iterable[str]) -> Table:
    total = len(due)
    missed = Counter(d.dept for d in due.values() if d.timed_out)
    rows = [[dept, total, missed.get(dept, 0), _rate(missed.get(dept, 0), total)]
            for dept in sorted(set(depts) | set(missed))]  # fmt: skip
    return Table(
        "timeouts_by_dept",
        "Timeout rate per department",
        ["dept", "orders_due", "timed_out", "rate"],
        rows,
    )


def _by_type_table(excs: list[_Exc]) -> Table:
    groups: dict[str, list[_Exc]] = defaultdict(list)
    for e in excs:
        groups[e.type].append(e)
    rows = [
        [
            kind,
            len(group),
            sum(1 for e in group if e.severity == "major"),
            sum(1 for e in group if e.resolved_at is not None),
            sum(1 for e in group if e.state_at_end in _OPEN),
        ]
        for kind, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return Table(
        "exceptions_by_type",
        "Exceptions by type",
        ["type", "opened", "major", "resolved", "open_at_end"],
        rows,
    )


def _by_cause_table(excs: list[_Exc]) -> Table:
    counts = Counter(e.cause_class for e in excs)
    rows = [[cause, CAUSE_CLASSES.get(cause, "internal"), n]
            for cause, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]  # fmt: skip
    return Table(
        "exceptions_by_cause", "Exceptions by cause", ["cause_class", "kind", "count"], rows
    )


def _by_outcome_table(excs: list[_Exc]) -> Table:
    counts = Counter(e.state_at_end for e in excs)
    order = ["open", "acknowledged", "plan_posted", "resolved", "closed"]
    rows = [[state, counts[state]] for state in order if counts.get(state)]
    rows += [[state, n] for state, n in sorted(counts.items()) if state not in order]
    return Table(
        "exceptions_by_outcome",
        "Exceptions by outcome (state at the end of the period)",
        ["outcome", "count"],
        rows,
    )


def _response_table(excs: list[_Exc]) -> Table:
    groups: dict[str, list[_Exc]] = defaultdict(list)
    for e in excs:
        groups[e.dept].append(e)
    rows = []
    for dept, group in sorted(groups.items()):
        ack = [(e.acknowledged_at - e.opened_at).total_seconds()
               for e in group if e.acknowledged_at]  # fmt: skip
        res = [(e.resolved_at - e.opened_at).total_seconds() for e in group if e.resolved_at]
        rows.append([dept, len(group), len(ack), _mean(ack), len(res), _mean(res)])
    return Table(
        "response_times",
        "Time to acknowledge and to resolve, per department",
        ["dept", "exceptions", "acknowledged", "mean_ack_s", "resolved", "mean_resolve_s"],
        rows,
    )


def _weeks_of(period: Period) -> list[Period]:
    weeks = []
    day = period.start.astimezone(period.zone).date()
    monday = day - dt.timedelta(days=day.weekday())
    while _local_midnight(monday, period.zone) < period.end:
        year, week, _ = monday.isocalendar()
        weeks.append(week_period(f"{year}-W{week:02d}", period.zone))
        monday += dt.timedelta(days=7)
    return weeks


def _weekly_table(
    conn: Connection, period: Period, *, now: dt.datetime, default_dept: str
) -> Table:
    rows = []
    for week in _weeks_of(period):
        # The part of the week inside the month.
        part = dataclasses.replace(
            week, start=max(week.start, period.start), end=min(week.end, period.end)
        )
        s = _summary(*_figures(conn, part, now=now, default_dept=default_dept))
        rows.append(
            [week.label, s["orders_shipped"], s["on_time_rate"], s["timeout_rate"],
             s["exceptions_opened"], s["mean_ack_s"], s["mean_resolve_s"]]
        )  # fmt: skip
    return Table(
        "weekly",
        "Week by week (days of the month only)",
        ["week", "orders_shipped", "on_time_rate", "timeout_rate", "exceptions_opened",
         "mean_ack_s", "mean_resolve_s"],
        rows,
    )  # fmt: skip


def build_report(
    engine: Engine,
    period: Period,
    *,
    now: dt.datetime,
    default_dept: str = "warehouse",
    departments: Iterable[str] = (),
) -> Report:
    """The report of ``period`` as the database holds it at ``now``.

    ``default_dept`` is where a missed deadline without an exception belongs (the
    routing table's department of ``shipping_delay``); ``departments`` are listed in
    the timeout table even when they missed nothing.
    """
    with engine.connect().execution_options(**READ_ONLY) as conn:
        shipped, due, excs = _figures(conn, period, now=now, default_dept=default_dept)
        parcels = _parcels_by_day(conn, period)
        summary = _summary(shipped, due, excs)
        tables = [
            _summary_table(summary, sum(parcels.values())),
            _daily_table(period, shipped, parcels),
            _timeouts_table(due, [default_dept, *departments]),
            _by_type_table(excs),
            _by_cause_table(excs),
            _by_outcome_table(excs),
            _response_table(excs),
        ]
        if period.kind == "monthly":
            tables.insert(1, _weekly_table(conn, period, now=now, default_dept=default_dept))
    summary = {"parcels_shipped": sum(parcels.values()), **summary}
    return Report(period=period, generated_at=now, summary=summary, tables=tables)


def _cell(value: Any) -> Any:
    return "" if value is None else value


def table_csv(table: Table) -> str:
    """One table as CSV (header row, then the rows)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([_cell(v) for v in row] for row in table.rows)
    return out.getvalue()


def report_csv(report: Report) -> str:
    """Every table of ``report`` in one CSV: each table's title on a line of its own,
    its header and rows, then an empty line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"packline {report.period.kind} report {report.period.label}",
                     f"time zone {report.period.zone.key}"])  # fmt: skip
    writer.writerow([])
    for table in report.tables:
        writer.writerow([table.title])
        writer.writerow(table.columns)
        writer.writerows([_cell(v) for v in row] for row in table.rows)
        writer.writerow([])
    return out.getvalue()


def timeout_kpi(
    engine: Engine,
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    zone: ZoneInfo,
    default_dept: str = "warehouse",
    shop: str | None = None,
    dept: str | None = None,
) -> list[dict[str, Any]]:
    """The timeout rate per local day, shop and department over ``[start, end)``.

    The same counting as the reports' timeout table: an order is counted on the day of
    its deadline (the missed one, else its first) in the site's time zone; ``orders``
    is every order of that day and shop with a deadline due, ``timed_out`` those whose
    miss belongs to ``dept``, so the rates of one day and shop add up to its overall
    rate. Rows: ``{day, shop, dept, orders, timed_out, rate}``, by day, shop, dept.
    """
    with engine.connect().execution_options(**READ_ONLY) as conn:
        due = _due_orders(conn, start, end, now=now, default_dept=default_dept)
    totals: Counter[tuple[dt.date, str]] = Counter()
    missed: Counter[tuple[dt.date, str, str]] = Counter()
    for d in due.values():
        if shop is not None and d.shop != shop:
            continue
        assert d.due_at is not None
        key = (d.due_at.astimezone(zone).date(), d.shop)
        totals[key] += 1
        if d.timed_out:
            missed[(*key, d.dept)] += 1
    rows: list[dict[str, Any]] = []
    for day, shop_name in sorted(totals):
        total = totals[(day, shop_name)]
        depts = {default_dept} | {k[2] for k in missed if k[:2] == (day, shop_name)}
        for name in sorted(depts):
            if dept is not None and name != dept:
                continue
            late = missed.get((day, shop_name, name), 0)
            rows.append(
                {
                    "day": day.isoformat(),
                    "shop": shop_name,
                    "dept": name,
                    "orders": total,
                    "timed_out": late,
                    "rate": _rate(late, total),
                }
            )
    return rows
