"""``packline central tickets …`` (after-sales tickets, D7) and
``packline central import-tracking FILE`` (carrier scans)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from packline.commands import command_group
from sync.errors import UserError

__all__ = ["app", "import_tracking"]

app = command_group(help="After-sales tickets: complaints, returns, exchanges, reissues (D7).")

CONFIG = typer.Option(
    None, "--config", metavar="FILE", help="TOML settings file (see docs/central.md)."
)
DB_URL = typer.Option(
    None, "--db-url", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://..."
)
BY = typer.Option(..., "--by", metavar="NAME", help="Who does it (recorded in the history).")
ID = typer.Argument(..., metavar="ID", help="The ticket's number.")
TEXT = typer.Option(..., "--text", metavar="TEXT", help="What was said or done.")


@app.command("open")
def tickets_open(
    category: str = typer.Option(
        ..., "--category", metavar="C", help="complaint, return, exchange or reissue."
    ),
    order: str | None = typer.Option(None, "--order", metavar="ORDER_NO", help="The order."),
    description: str = typer.Option(
        ..., "--description", metavar="TEXT", help="What the customer wants."
    ),
    dept: str | None = typer.Option(
        None, "--dept", metavar="D", help="Responsible department (default: the category's)."
    ),
    severity: str = typer.Option("general", "--severity", metavar="S", help="general or major."),
    by: str = BY,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Open a ticket; its alert goes to the department, first response due in 10 min."""
    from central.orders import get_order
    from central.watch.context import Watch
    from central.watch.tickets import open_ticket
    from packline.commands.central import _act

    def run(watch: Watch) -> int:
        if order is not None and get_order(watch.conn, order) is None:
            raise UserError(f"no order {order!r} in the database")
        return open_ticket(
            watch,
            category=category,
            order_no=order,
            description=description,
            dept=dept,
            severity=severity,
            by=by,
        )

    typer.echo(f"ticket #{_act(config, db_url, run)} opened")


@app.command("list")
def tickets_list(
    open_only: bool = typer.Option(False, "--open", help="Only those not closed."),
    as_json: bool = typer.Option(False, "--json", help="A JSON list instead of lines."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Tickets, newest first."""
    from central.watch.tickets import list_tickets
    from packline.commands.central import _show

    found = _show(config, db_url, lambda e: list_tickets(e, open_only=open_only))
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    for t in found:
        typer.echo(
            f"#{t['id']:<5} {t['state']:<10} {t['category']:<9} {t['dept']}/L{t['level']:<3} "
            f"{t['order_no'] or '-':<20} {t['opened_at'][:16]}  respond by "
            f"{t['respond_by'][11:16]}  {t['description']}"
        )


@app.command("show")
def tickets_show(
    ticket_id: int = ID,
    as_json: bool = typer.Option(False, "--json", help="JSON instead of lines."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """One ticket with its whole history."""
    from central.watch.tickets import ticket_detail
    from packline.commands.central import _show

    t = _show(config, db_url, lambda e: ticket_detail(e, ticket_id))
    if as_json:
        typer.echo(json.dumps(t, ensure_ascii=False, indent=2))
        return
    typer.echo(f"ticket #{t['id']}")
    for name in (
        "category", "state", "severity", "dept", "level_name", "order_no", "customer",
        "description", "opened_at", "opened_by", "respond_by", "responded_at",
        "responded_by", "acknowledged_by", "closed_by", "confirmation",
    ):  # fmt: skip
        if t.get(name) not in (None, ""):
            typer.echo(f"  {name + ':':<16} {t[name]}")
    typer.echo("history:")
    for h in t["history"]:
        text = f"  {h['text']}" if h["text"] else ""
        typer.echo(f"  {h['at'][:19]}  {h['entry']:<16} {h['by']:<16} -> {h['state']}{text}")


@app.command("ack")
def tickets_ack(
    ticket_id: int = ID, by: str = BY, db_url: str | None = DB_URL, config: Path | None = CONFIG
) -> None:
    """Acknowledge a ticket: its alert stops repeating (the response is still due)."""
    from central.watch.tickets import acknowledge_ticket
    from packline.commands.central import _act

    _act(config, db_url, lambda w: acknowledge_ticket(w, ticket_id, by=by))
    typer.echo(f"ticket #{ticket_id} acknowledged by {by}")


@app.command("respond")
def tickets_respond(
    ticket_id: int = ID,
    text: str = TEXT,
    by: str = BY,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Record the response to the customer; the first one stops the response clock."""
    from central.watch.tickets import respond
    from packline.commands.central import _act

    _act(config, db_url, lambda w: respond(w, ticket_id, text=text, by=by))
    typer.echo(f"ticket #{ticket_id}: response recorded by {by}")


@app.command("follow-up")
def tickets_follow_up(
    ticket_id: int = ID,
    text: str = TEXT,
    by: str = BY,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Record a follow-up (a call back, a parcel sent again)."""
    from central.watch.tickets import follow_up
    from packline.commands.central import _act

    _act(config, db_url, lambda w: follow_up(w, ticket_id, text=text, by=by))
    typer.echo(f"ticket #{ticket_id}: follow-up recorded by {by}")


@app.command("close")
def tickets_close(
    ticket_id: int = ID,
    confirmation: str | None = typer.Option(
        None,
        "--confirmation",
        metavar="TEXT",
        help="What the customer confirmed, and how (needed to close).",
    ),
    by: str = BY,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Close a ticket with the customer's confirmation; sends the resolved alert."""
    from central.watch.tickets import close_ticket
    from packline.commands.central import _act

    _act(
        config,
        db_url,
        lambda w: close_ticket(w, ticket_id, confirmation=confirmation or "", by=by),
    )
    typer.echo(f"ticket #{ticket_id} closed by {by}")


def import_tracking(
    file: Path = typer.Argument(
        ..., metavar="FILE", help="Carrier scans as CSV or JSON: tracking_no, at, status, location."
    ),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Store carrier scans; a parcel without any, or one that stopped moving, opens
    logistics_stalled. Rows that cannot be read are named and skipped; the rest is kept."""
    from central.watch.tracking import import_scans, read_tracking_file
    from packline.commands.central import _act

    scans, refused = read_tracking_file(file)
    result = _act(config, db_url, lambda w: import_scans(w, scans))
    for why in refused:
        typer.echo(f"refused: {why}", err=True)
    typer.echo(
        f"{result.stored} carrier scans stored, {result.known} known already, "
        f"{len(refused)} rows refused"
    )
    if refused and not scans:
        raise typer.Exit(2)
