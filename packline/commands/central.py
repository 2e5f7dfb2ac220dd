"""``packline central`` command group: ``serve`` and ``import-orders``.

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
