"""``packline central`` command group: ``serve``, ``import-orders`` and ``dead-letters``.

Library errors are translated here into :class:`sync.errors.UserError`, which the
top-level command prints as one line before exiting with code 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from packline.commands import command_group
from sync.errors import UserError

__all__ = ["app"]

app = command_group()

CONFIG = typer.Option(
    None, "--config", metavar="FILE", help="TOML settings file (see docs/central.md)."
)
DB_URL = typer.Option(
    None, "--db-url", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://..."
)


@app.command()
def serve(
    config: Path | None = CONFIG,
    db_url: str | None = DB_URL,
    mqtt_url: str | None = typer.Option(
        None, "--mqtt-url", metavar="URL", help="Broker, mqtt://host:port."
    ),
    site: str | None = typer.Option(None, "--site", help="Site whose stations to serve."),
    http_host: str | None = typer.Option(None, "--http-host", help="Address of the page."),
    http_port: int | None = typer.Option(None, "--http-port", help="Port of the page."),
) -> None:
    """Run ingest, the orders downlink and the web status page until Ctrl-C."""
    from central.settings import CentralSettings
    from packline import __version__
    from packline.logs import setup_logging
    from packline.serve import serve_central
    from packline.settings import load_settings

    settings = load_settings(
        CentralSettings,
        config,
        db_url=db_url,
        mqtt_url=mqtt_url,
        site=site,
        http_host=http_host,
        http_port=http_port,
    )
    setup_logging()
    serve_central(settings, version=__version__)


@app.command("import-orders")
def import_orders(
    file: Path = typer.Argument(
        ..., metavar="FILE", help="Orders as JSON or CSV (see docs/central.md)."
    ),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Add or update orders from FILE; all of it or, on any error, nothing."""
    import sqlalchemy as sa

    from central.db import DatabaseUnavailable, open_db
    from central.orders import OrderFileError, read_orders_file
    from central.orders import import_orders as run
    from central.settings import CentralSettings, shown_db_url
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    try:
        batch = read_orders_file(file)
    except OrderFileError as exc:
        raise UserError(f"nothing imported: {exc}") from None
    try:
        engine = open_db(settings.db_url)
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from None
    try:
        result = run(engine, batch)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise UserError(f"nothing imported from {file}: database error: {reason}") from None
    finally:
        engine.dispose()
    for warning in result.warnings():
        typer.echo(f"{file}: {warning}", err=True)
    typer.echo(f"{file}: {result.summary()}; database {shown_db_url(settings.db_url)}")


@app.command("dead-letters")
def dead_letters(
    as_json: bool = typer.Option(
        False, "--json", help="One JSON document: the counts by reason and the messages."
    ),
    limit: int = typer.Option(
        50, "--limit", min=1, max=10_000, help="Show at most this many, newest first."
    ),
    station: str | None = typer.Option(None, "--station", help="Only this station's."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """List the station messages central set aside (malformed, oversized, ...)."""
    import json

    from central.db import DatabaseUnavailable, open_db
    from central.deadletters import dead_letter_counts, list_dead_letters
    from central.settings import CentralSettings, shown_db_url
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    try:
        engine = open_db(settings.db_url)
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from None
    try:
        counts = dead_letter_counts(engine)
        letters = list_dead_letters(engine, limit=limit, station=station)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"counts": counts, "dead_letters": letters}, ensure_ascii=False))
        return
    total = sum(counts.values())
    if not total:
        typer.echo(f"no dead letters; database {shown_db_url(settings.db_url)}")
        return
    by_reason = ", ".join(f"{n} {reason}" for reason, n in counts.items() if n)
    typer.echo(f"{total} messages set aside ({by_reason}); newest first:")
    for letter in letters:
        times = f" ×{letter['repeats']}" if letter["repeats"] > 1 else ""
        who = letter["station"] or "-"
        typer.echo(
            f"{letter['last_at'][:19]}  {letter['reason']:<13} {who:<12} "
            f"{letter['size']:>8} B{times}  {letter['detail']}"
        )
