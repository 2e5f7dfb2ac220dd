"""``packline central equipment list|note``: the equipment ledger (A4) from the shell."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer

from packline.commands import command_group
from sync.errors import UserError

__all__ = ["app"]

app = command_group(help="The printers and scanners of the stations, with maintenance (A4).")

CONFIG = typer.Option(
    None, "--config", metavar="FILE", help="TOML settings file (see docs/central.md)."
)
DB_URL = typer.Option(
    None, "--db-url", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://..."
)


def _time(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UserError(
            f"{option} must be an ISO 8601 time with its zone, e.g. 2026-11-23T09:30:00+08:00, "
            f"got {text!r}"
        )
    return moment.astimezone(dt.UTC)


@app.command("list")
def equipment_list(
    station: str | None = typer.Option(None, "--station", help="Only this station's devices."),
    as_json: bool = typer.Option(False, "--json", help="A JSON list instead of lines."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Every printer and scanner, with state, label stock, faults and maintenance."""
    from central.equipment import equipment_ledger
    from central.settings import CentralSettings
    from packline.commands.central import _database
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    with _database(settings.db_url) as engine:
        ledger = equipment_ledger(
            engine, now=dt.datetime.now(dt.UTC), labels_low=settings.labels_low, station=station
        )
    if as_json:
        typer.echo(json.dumps(ledger, ensure_ascii=False, indent=2))
        return
    if not ledger:
        typer.echo("no devices reported yet" + (f" at {station}" if station else ""))
        return
    for d in ledger:
        labels = ""
        if d["labels_left"] is not None:
            low = " LOW" if d["labels_low_now"] else ""
            labels = f"  labels {d['labels_left']}/{d['labels_low']}{low}"
        typer.echo(
            f"{d['station']:<12} {d['device']:<8} {d['model'] or '-':<12} {d['device_id']:<32} "
            f"{d['state']:<10} since {d['first_seen'][:10]}  faults {d['fault_count']}"
            f"  notes {len(d['notes'])}{labels}"
        )


@app.command("note")
def equipment_note(
    station: str = typer.Argument(..., metavar="STATION", help="The station, e.g. bench-01."),
    device: str = typer.Option(..., "--device", metavar="printer|scanner", help="Which device."),
    text: str = typer.Option(..., "--text", metavar="TEXT", help="What was done."),
    by: str = typer.Option(..., "--by", metavar="NAME", help="Who did it."),
    kind: str = typer.Option(
        "maintenance",
        "--kind",
        help="maintenance, repair, cleaning, replaced, installed, retired or note.",
    ),
    at: str | None = typer.Option(
        None, "--at", metavar="ISO8601", help="When it was done (default now)."
    ),
    device_id: str | None = typer.Option(
        None,
        "--device-id",
        metavar="ID",
        help="A device the station used before (default: the one now).",
    ),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Add a maintenance entry to a device's record (entries are never changed)."""
    from central.equipment import add_note
    from central.settings import CentralSettings
    from packline.commands.central import _database
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    when = _time(at, "--at")
    with _database(settings.db_url, failing="nothing recorded: database error") as engine:
        note = add_note(
            engine, station=station, device=device, text=text, by=by, kind=kind, at=when,
            now=dt.datetime.now(dt.UTC), device_id=device_id,
        )  # fmt: skip
    typer.echo(
        f"entry #{note['id']} recorded: {note['station']} {note['device']} {note['device_id']}: "
        f"{note['kind']} by {note['by']} at {note['at'][:16]}: {note['text']}"
    )
