"""``packline central`` command group: ``serve``, ``import-orders``, ``dead-letters``,
``tick``, ``exceptions``, ``tickets``, ``import-tracking``, ``backup`` and ``restore``.

Library errors are translated here into :class:`sync.errors.UserError`, which the
top-level command prints as one line before exiting with code 2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from packline.commands import command_group
from packline.commands.users import app as users_app
from sync.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from central.settings import CentralSettings
    from central.watch.context import Watch
    from sync.mqtt import BrokerURL

__all__ = ["app", "exceptions_app"]

app = command_group()
exceptions_app = command_group(help="List, open and handle shipping exceptions (D3-D6).")
app.add_typer(exceptions_app, name="exceptions")
app.add_typer(users_app, name="user")

CONFIG = typer.Option(
    None, "--config", metavar="FILE", help="TOML settings file (see docs/central.md)."
)
DB_URL = typer.Option(
    None, "--db-url", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://..."
)
MQTT_URL = typer.Option(None, "--mqtt-url", metavar="URL", help="Broker, mqtt://host:port.")
SITE = typer.Option(None, "--site", help="Site whose stations to serve.")
BY = typer.Option(..., "--by", metavar="NAME", help="Who does it (recorded in the history).")

T = TypeVar("T")


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
    worker: str | None = typer.Option(
        None,
        "--worker",
        metavar="NAME",
        help="This process's name among several on one database (docs/scale.md).",
    ),
    no_web: bool = typer.Option(
        False, "--no-web", help="Ingest only: no status page (docs/scale.md)."
    ),
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
        worker=worker,
        web=False if no_web else None,
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
    from central.orders import OrderFileError, read_orders_file
    from central.orders import import_orders as run
    from central.settings import CentralSettings, shown_db_url
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    try:
        batch = read_orders_file(file)
    except OrderFileError as exc:
        raise UserError(f"nothing imported: {exc}") from None
    with _database(settings.db_url, failing=f"nothing imported from {file}: database error") as db:
        result = run(db, batch, deadlines=settings.deadlines)
    for warning in result.warnings():
        typer.echo(f"{file}: {warning}", err=True)
    typer.echo(f"{file}: {result.summary()}; database {shown_db_url(settings.db_url)}")


# --------------------------------------------------------------------------- backups


@app.command("backup")
def backup_cmd(
    to: Path = typer.Option(..., "--to", metavar="DIR", help="The backup folder."),
    full: bool = typer.Option(
        False, "--full", help="A full snapshot (default: what changed since the last backup)."
    ),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Back up the database into DIR: a full snapshot or an incremental one (C3)."""
    from central.backup import backup
    from central.settings import CentralSettings
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    typer.echo(backup(settings.db_url, to, full=full).summary())


@app.command("restore")
def restore_cmd(
    source: Path = typer.Option(..., "--from", metavar="DIR", help="The backup folder."),
    db_url: str = typer.Option(
        ..., "--db-url", metavar="URL", help="An empty database to restore into."
    ),
) -> None:
    """Restore the last full backup in DIR and every incremental after it."""
    from central.backup import restore
    from central.settings import shown_db_url

    typer.echo(restore(source, db_url).summary(shown_db_url(db_url)))


# --------------------------------------------------------------------------- the watch


def _settings(config: Path | None, **overrides: Any) -> CentralSettings:
    from central.settings import CentralSettings
    from packline.settings import load_settings

    return load_settings(CentralSettings, config, **overrides)


@contextmanager
def _database(url: str, *, failing: str = "database error") -> Iterator[Engine]:
    """The migrated database at ``url``; a database error in the block becomes one
    line, ``{failing}: {reason}`` (one that cannot be opened says so already)."""
    import sqlalchemy as sa

    from central.db import error_reason, open_db

    engine = open_db(url)
    try:
        yield engine
    except sa.exc.SQLAlchemyError as exc:
        raise UserError(f"{failing}: {error_reason(exc)}") from None
    finally:
        engine.dispose()


def _instant(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UserError(
            f"--now must be an ISO 8601 time with its zone, e.g. 2026-03-02T12:00:00+08:00, "
            f"got {text!r}"
        )
    return moment.astimezone(dt.UTC)


@app.command()
def tick(
    now: str | None = typer.Option(
        None, "--now", metavar="ISO8601", help="The instant to run at (default: now)."
    ),
    db_url: str | None = DB_URL,
    mqtt_url: str | None = MQTT_URL,
    site: str | None = SITE,
    config: Path | None = CONFIG,
) -> None:
    """Run the watch once: fire what is due at NOW, publish it, one line per alert."""
    from central.watch import tick as run_tick
    from sync.mqtt import parse_mqtt_url

    settings = _settings(config, db_url=db_url, mqtt_url=mqtt_url, site=site)
    moment = _instant(now)
    try:
        broker = parse_mqtt_url(settings.mqtt_url)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with _database(settings.db_url) as engine:
        result = run_tick(engine, now=moment, site=settings.site, rules=settings.rules())
        for alert in result.alerts:
            typer.echo(alert.line())
        _publish(engine, broker=broker, site=settings.site)


def _publish(engine: Engine, *, broker: BrokerURL, site: str) -> None:
    """Send what waits in the alert outbox; a broker that cannot take it is one line."""
    import logging
    import socket
    import uuid

    from central.watch import publish_pending
    from central.watch.alerts import unpublished_count
    from sync.session import MqttSession

    def refused(why: str) -> UserError:
        waiting = unpublished_count(engine)
        return UserError(
            f"{why}: {waiting} alerts wait in the outbox for the next tick or central serve"
        )

    try:
        with socket.create_connection((broker.host, broker.port), timeout=5):
            pass
    except OSError as exc:
        raise refused(f"cannot reach the MQTT broker at {broker}: {exc.strerror or exc}") from None
    # This command says itself what went wrong, in one line.
    logging.getLogger("sync.session").setLevel(logging.ERROR)
    session = MqttSession(
        client_id=f"packline-tick-{site}-{uuid.uuid4().hex[:8]}", url=broker, session_expiry=0
    )
    session.start()
    try:
        if not session.wait_connected(10):
            raise refused(f"the MQTT broker at {broker} did not let us in: {session.state.reason}")
        publish_pending(engine, site=site, session=session)
    finally:
        session.stop()


def _act(config: Path | None, db_url: str | None, action: Callable[[Watch], T]) -> T:
    """Run ``action`` in one transaction of the watch, at the current time."""
    from central.watch.context import Watch

    settings = _settings(config, db_url=db_url)
    with _database(settings.db_url) as engine, engine.begin() as conn:
        watch = Watch(
            conn=conn, now=dt.datetime.now(dt.UTC), rules=settings.rules(), site=settings.site
        )
        return action(watch)


def _show(config: Path | None, db_url: str | None, reader: Callable[[Engine], T]) -> T:
    settings = _settings(config, db_url=db_url)
    with _database(settings.db_url) as engine:
        return reader(engine)


@exceptions_app.command("list")
def exceptions_list(
    open_only: bool = typer.Option(
        False, "--open", help="Only those still needing someone (not resolved or closed)."
    ),
    as_json: bool = typer.Option(False, "--json", help="A JSON list instead of lines."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Exceptions, newest first."""
    from central.watch.exceptions import list_exceptions

    found = _show(config, db_url, lambda e: list_exceptions(e, open_only=open_only))
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    for x in found:
        typer.echo(
            f"#{x['id']:<5} {x['state']:<12} {x['severity']:<7} {x['dept']}/L{x['level']:<3} "
            f"{x['type']:<17} {x['order_no'] or '-':<20} {x['opened_at'][:16]}  "
            f"{x['description']}"
        )


@exceptions_app.command("open")
def exceptions_open(
    type_: str = typer.Option(..., "--type", metavar="TYPE", help="shipping_delay, damaged, ..."),
    order: str | None = typer.Option(None, "--order", metavar="ORDER_NO", help="The order."),
    description: str = typer.Option(..., "--description", metavar="TEXT", help="What is wrong."),
    severity: str | None = typer.Option(
        None, "--severity", metavar="S", help="general or major (default: the routing's)."
    ),
    dept: str | None = typer.Option(
        None, "--dept", metavar="D", help="Responsible department (default: the routing's)."
    ),
    cause_class: str | None = typer.Option(
        None, "--cause-class", metavar="C", help="stock_out, carrier_delay, ... (see docs)."
    ),
    by: str = BY,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Open an exception by hand; its alert goes to the department."""
    from central.orders import get_order
    from central.watch.exceptions import open_exception

    def run(watch: Watch) -> int | None:
        if order is not None and get_order(watch.conn, order) is None:
            raise UserError(f"no order {order!r} in the database")
        return open_exception(
            watch,
            type=type_,
            order_no=order,
            description=description,
            severity=severity,
            dept=dept,
            cause_class=cause_class,
            found_by=by,
        )

    typer.echo(f"exception #{_act(config, db_url, run)} opened")


ID = typer.Argument(..., metavar="ID", help="The exception's number.")


@exceptions_app.command("ack")
def exceptions_ack(
    exception_id: int = ID, by: str = BY, db_url: str | None = DB_URL, config: Path | None = CONFIG
) -> None:
    """Acknowledge an exception: its alert stops repeating."""
    from central.watch.exceptions import acknowledge_exception

    _act(config, db_url, lambda w: acknowledge_exception(w, exception_id, by=by))
    typer.echo(f"exception #{exception_id} acknowledged by {by}")


@exceptions_app.command("plan")
def exceptions_plan(
    exception_id: int = ID,
    text: str = typer.Option(..., "--text", metavar="TEXT", help="What will be done."),
    by: str = BY,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Post the department's plan: the exception stops climbing."""
    from central.watch.exceptions import post_plan

    _act(config, db_url, lambda w: post_plan(w, exception_id, text=text, by=by))
    typer.echo(f"exception #{exception_id}: plan posted by {by}")


@exceptions_app.command("resolve")
def exceptions_resolve(
    exception_id: int = ID,
    cause: str | None = typer.Option(None, "--cause", metavar="TEXT", help="Why it happened."),
    action: str | None = typer.Option(None, "--action", metavar="TEXT", help="What was done."),
    outcome: str | None = typer.Option(None, "--outcome", metavar="TEXT", help="The result."),
    cause_class: str | None = typer.Option(
        None, "--cause-class", metavar="C", help="Correct the cause class."
    ),
    by: str = BY,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Resolve with a report (cause, action, outcome); sends the resolved alert."""
    from central.watch.exceptions import resolve_exception

    _act(
        config,
        db_url,
        lambda w: resolve_exception(
            w,
            exception_id,
            cause=cause or "",
            action=action or "",
            outcome=outcome or "",
            by=by,
            cause_class=cause_class,
        ),
    )
    typer.echo(f"exception #{exception_id} resolved by {by}")


@exceptions_app.command("close")
def exceptions_close(
    exception_id: int = ID, by: str = BY, db_url: str | None = DB_URL, config: Path | None = CONFIG
) -> None:
    """Close a resolved exception."""
    from central.watch.exceptions import close_exception

    _act(config, db_url, lambda w: close_exception(w, exception_id, by=by))
    typer.echo(f"exception #{exception_id} closed by {by}")


@exceptions_app.command("show")
def exceptions_show(
    exception_id: int = ID,
    as_json: bool = typer.Option(False, "--json", help="JSON instead of lines."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """One exception with its whole history."""
    from central.watch.exceptions import exception_detail

    x = _show(config, db_url, lambda e: exception_detail(e, exception_id))
    if as_json:
        typer.echo(json.dumps(x, ensure_ascii=False, indent=2))
        return
    fields = (
        "type", "state", "severity", "dept", "level_name", "order_no", "customer",
        "description", "found_at", "found_by", "cause_class", "opened_at", "due_at",
        "plan_due_at", "acknowledged_by", "plan", "resolved_by", "closed_by",
    )  # fmt: skip
    typer.echo(f"exception #{x['id']}")
    for name in fields:
        if x.get(name) not in (None, ""):
            typer.echo(f"  {name + ':':<16} {x[name]}")
    if x.get("report"):
        for part in ("cause", "action", "outcome"):
            typer.echo(f"  {part + ':':<16} {x['report'][part]}")
    typer.echo("history:")
    for h in x["history"]:
        text = f"  {h['text']}" if h["text"] else ""
        typer.echo(f"  {h['at'][:19]}  {h['entry']:<12} {h['by']:<16} -> {h['state']}{text}")


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

    from central.deadletters import dead_letter_counts, list_dead_letters
    from central.settings import CentralSettings, shown_db_url
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    with _database(settings.db_url) as engine:
        counts = dead_letter_counts(engine)
        letters = list_dead_letters(engine, limit=limit, station=station)
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


def _mount_pages() -> None:
    from packline.commands.equipment import app as equipment_app
    from packline.commands.reports import app as report_app
    from packline.commands.tickets import app as tickets_app
    from packline.commands.tickets import import_tracking

    app.add_typer(report_app, name="report")
    app.add_typer(equipment_app, name="equipment")
    app.add_typer(tickets_app, name="tickets")
    app.command("import-tracking")(import_tracking)


_mount_pages()
