"""``packline central report weekly|monthly``: the shipping report on the command line.

The same numbers as ``/reports`` (both call :func:`central.reports.build_report`):
lines for a person, ``--json`` for a program, ``--csv FILE`` for a spreadsheet.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer

from packline.commands import command_group
from sync.errors import UserError

__all__ = ["app", "report_settings"]

app = command_group(help="Weekly and monthly shipping reports (A3).")

CONFIG = typer.Option(
    None, "--config", metavar="FILE", help="TOML settings file (see docs/central.md)."
)
DB_URL = typer.Option(
    None, "--db-url", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://..."
)
CSV = typer.Option(
    None, "--csv", metavar="FILE", help="Also write every table to FILE as CSV ('-': stdout)."
)
JSON = typer.Option(False, "--json", help="The whole report as one JSON document.")
NOW = typer.Option(
    None, "--now", metavar="ISO8601", help="Count as the database stood at this time (default now)."
)


def report_settings(settings: Any) -> dict[str, Any]:
    """The report's options from central's settings: the site's time zone, the
    department a missed deadline belongs to, and every department of the routing."""
    rules = settings.rules()
    depts = sorted({route.dept for route in rules.routing.values()})
    return {
        "timezone": str(getattr(settings, "timezone", "Asia/Shanghai")),
        "default_dept": rules.route("shipping_delay").dept,
        "departments": depts,
    }


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UserError(f"--now must be an ISO 8601 time with its zone, got {text!r}")
    return moment.astimezone(dt.UTC)


def _percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _duration(value: Any) -> str:
    if value is None:
        return "—"
    minutes = float(value) / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _run(kind: str, text: str, *, config: Path | None, db_url: str | None,
         csv_file: Path | None, as_json: bool, now: str | None) -> None:  # fmt: skip
    from central.reports import build_report, parse_period, report_csv, site_zone
    from central.settings import CentralSettings
    from packline.commands.central import _database
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    options = report_settings(settings)
    period = parse_period(kind, text, site_zone(options["timezone"]))
    at = _now(now)
    if csv_file is not None and str(csv_file) != "-" and not csv_file.parent.is_dir():
        raise UserError(f"cannot write {csv_file}: no folder {csv_file.parent}")
    with _database(settings.db_url) as engine:
        report = build_report(
            engine, period, now=at, default_dept=options["default_dept"],
            departments=options["departments"],
        )  # fmt: skip
    if csv_file is not None:
        text_csv = report_csv(report)
        if str(csv_file) == "-":
            typer.echo(text_csv, nl=False)
            return
        try:
            csv_file.write_text(text_csv, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {csv_file}: {exc.strerror}") from None
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    s = report.summary
    local = period.start.astimezone(period.zone)
    last = (period.end - dt.timedelta(seconds=1)).astimezone(period.zone)
    typer.echo(
        f"{kind} report {period.label} ({local:%Y-%m-%d} to {last:%Y-%m-%d}, {period.zone.key})"
    )
    typer.echo(f"  orders shipped      {s['orders_shipped']} ({s['parcels_shipped']} parcels)")
    typer.echo(
        f"  on-time rate        {_percent(s['on_time_rate'])} "
        f"({s['on_time']} of {s['orders_shipped_with_deadline']} with a deadline)"
    )
    typer.echo(
        f"  timeout rate        {_percent(s['timeout_rate'])} "
        f"({s['timed_out']} of {s['orders_due']} orders due)"
    )
    for dept, due, missed, rate in report.table("timeouts_by_dept").rows:
        typer.echo(f"    {dept:<18}{_percent(rate)} ({missed} of {due})")
    typer.echo(
        f"  exceptions          {s['exceptions_opened']} opened ({s['exceptions_major']} major), "
        f"{s['exceptions_resolved']} resolved, {s['exceptions_open_at_end']} still open"
    )
    for row in report.table("exceptions_by_type").rows:
        typer.echo(f"    {row[0]:<18}{row[1]}")
    typer.echo(
        f"  mean time to ack    {_duration(s['mean_ack_s'])}; "
        f"to resolve {_duration(s['mean_resolve_s'])}"
    )
    if csv_file is not None:
        typer.echo(f"  tables written to {csv_file}")


@app.command("weekly")
def weekly(
    week: str = typer.Option(
        ..., "--week", metavar="YYYY-Www", help="The ISO week, e.g. 2026-W48."
    ),
    csv_file: Path | None = CSV,
    as_json: bool = JSON,
    now: str | None = NOW,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Orders shipped, on-time and timeout rates, exceptions of one ISO week."""
    _run("weekly", week, config=config, db_url=db_url, csv_file=csv_file, as_json=as_json, now=now)


@app.command("monthly")
def monthly(
    month: str = typer.Option(..., "--month", metavar="YYYY-MM", help="The month, e.g. 2026-11."),
    csv_file: Path | None = CSV,
    as_json: bool = JSON,
    now: str | None = NOW,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """The month's summary for management, week by week."""
    _run(
        "monthly", month, config=config, db_url=db_url, csv_file=csv_file, as_json=as_json, now=now
    )
