"""``packline edge``: run a packing station, check it, load orders, read its records."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from edge.settings import StationSettings
from edge.uplink import duration_words
from packline import __version__
from packline.commands import command_group
from packline.logs import setup_logging
from packline.settings import load_settings
from sync.errors import UserError

if TYPE_CHECKING:
    from edge.store import StationStore

__all__ = ["app"]

app = command_group()
orders_app = command_group()
app.add_typer(orders_app, name="orders", help="Load orders into a station without central.")

ConfigOption = typer.Option(
    None, "--config", "-c", metavar="FILE", help="Station settings, station.toml (docs/station.md)."
)
StationOption = typer.Option(None, help="Station name (overrides the config).")
DataDirOption = typer.Option(None, metavar="DIR", help="Where the station store lives.")


def _settings(config: Path | None, **overrides: object) -> StationSettings:
    return load_settings(StationSettings, config, **overrides)


def _open_store(settings: StationSettings, *, must_exist: bool = True) -> StationStore:
    from edge.clock import SystemClock
    from edge.store import StationStore

    if must_exist and not settings.db_path.is_file():
        raise UserError(
            f"no station store at {settings.db_path}: check station and data_dir "
            "(the store is made by the first `packline edge run`)"
        )
    return StationStore(settings.db_path, station=settings.station, clock=SystemClock())


@app.command()
def run(
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    site: str | None = typer.Option(None, "--site", help="Site (warehouse) of this station."),
    mqtt_url: str | None = typer.Option(None, metavar="URL", help="Broker, mqtt://host:port."),
    scanner: str | None = typer.Option(
        None, metavar="URL", help="Scanner, e.g. serial:///dev/ttyACM0."
    ),
    printer: str | None = typer.Option(
        None, metavar="URL", help="Printer, e.g. file:///tmp/labels."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run the edge agent until Ctrl-C or SIGTERM, and the packer's screen on kiosk_listen.

    Settings that can never work (a label the printer cannot print, a resolution that
    is not the printer's, an unwritable data_dir) and a kiosk_listen port in use stop
    it with one line and exit code 2; a device that is missing or off is shown as a
    state and the bench waits for it.
    """
    from edge.factory import build_agent
    from edge.kiosk.listen import bind_kiosk
    from edge.kiosk.server import KioskServer

    setup_logging()
    settings = _settings(
        config,
        station=station,
        site=site,
        mqtt_url=mqtt_url,
        scanner=scanner,
        printer=printer,
        data_dir=data_dir,
    )
    # The screen's port first: a second agent for this bench stops here, before it
    # opens the scanner, the printer or the store.
    sock = bind_kiosk(settings.kiosk_listen)
    try:
        agent = build_agent(settings, version=__version__)
    except BaseException:
        sock.close()
        raise
    kiosk = KioskServer(sock=sock, source=agent, station=settings.station, version=__version__)

    def _stop(signum: int, frame: FrameType | None) -> None:
        # The screen stops drawing first: the agent is about to close its store.
        kiosk.feed.stop_soon()
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    kiosk.start()
    try:
        agent.run()
    finally:
        kiosk.stop()


@app.command()
def backup(
    to: Path = typer.Option(..., "--to", metavar="DIR", help="Folder for the copy."),
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Copy the station store into DIR (safe while the agent runs)."""
    from edge.backup import backup_station_store

    settings = _settings(config, station=station, data_dir=data_dir)
    if not settings.db_path.is_file():
        raise UserError(
            f"no station store at {settings.db_path}: check station and data_dir "
            "(the store is made by the first `packline edge run`)"
        )
    typer.echo(backup_station_store(settings.db_path, to, station=settings.station))


@app.command()
def check(
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    site: str | None = typer.Option(None, "--site", help="Site (warehouse) of this station."),
    timeout: float = typer.Option(3.0, min=0.1, help="Seconds to wait for the broker."),
) -> None:
    """Check the settings, scanner, printer, label and broker; say what to fix.

    Exit code 0 when everything is ready, 1 when something needs fixing.
    """
    from edge.check import check_station

    setup_logging("ERROR")  # the report says it all; no log lines in between
    settings = _settings(config, station=station, site=site)
    typer.echo(f"station {settings.station} (site {settings.site})")
    typer.echo(f"settings: {config or 'environment'}: valid")
    findings = check_station(settings, broker_timeout=timeout)
    for finding in findings:
        mark = "ok     " if finding.ok else ("NEVER  " if finding.fatal else "PROBLEM")
        typer.echo(f"{mark} {finding.what}: {finding.message}")
        if finding.fix:
            typer.echo(f"        fix: {finding.fix}")
    problems = [f for f in findings if not f.ok]
    if problems:
        typer.echo(f"{len(problems)} to fix")
        raise typer.Exit(1)
    typer.echo("ready to pack")


@app.command()
def status(
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show the station store: orders held, events not yet acknowledged by central."""
    settings = _settings(config, station=station, data_dir=data_dir)
    store = _open_store(settings)
    clock = store.clock
    try:
        link = store.uplink_state()
        typer.echo(f"station:  {settings.station} (site {settings.site})")
        typer.echo(f"instance: {store.instance_id}")
        typer.echo(f"broker:   {_broker(settings)}")
        typer.echo(f"orders:   {store.order_count()} (cursor {store.orders_cursor()})")
        typer.echo(f"shipped:  {len(store.shipments())} parcels")
        typer.echo(
            f"backlog:  {_backlog(store.backlog(), store.backlog_oldest_at(), clock.wall())}"
        )
        typer.echo(f"link:     {_link(link, clock.wall())}")
        skew = link.get("clock_skew_s")
        if isinstance(skew, int | float):
            side = "ahead of" if skew > 0 else "behind"
            typer.echo(f"clock:    {duration_words(abs(skew))} {side} central's (as last measured)")
        if link.get("name_conflict"):
            typer.echo(f"name:     {link['name_conflict']}")
    finally:
        store.close()


def _backlog(count: int, oldest: float | None, now: float) -> str:
    if not count:
        return "0 events: central holds everything recorded here"
    age = f", oldest {duration_words(now - oldest)} old" if oldest is not None else ""
    return f"{count} events not yet acknowledged by central{age}"


def _link(link: dict[str, object], now: float) -> str:
    words = link.get("broker_state")
    if not isinstance(words, str):
        return "unknown (the agent has not run yet)"
    since = link.get("broker_state_since")
    when = (
        f" (since {duration_words(now - since)} ago, as the agent last saw it)"
        if isinstance(since, int | float)
        else ""
    )
    return f"{words}{when}"


def _broker(settings: StationSettings) -> str:
    # Never the password: the URL's str() leaves it out.
    from sync.mqtt import parse_mqtt_url

    where = f" (from {settings.mqtt_url_file})" if settings.mqtt_url_file else ""
    return f"{parse_mqtt_url(settings.mqtt_url)}{where}"


@app.command()
def events(
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    data_dir: Path | None = DataDirOption,
    type_prefix: str | None = typer.Option(
        None, "--type", metavar="PREFIX", help="Only types starting with this (label., scan.)."
    ),
    last: int | None = typer.Option(None, "--last", min=1, help="Only the newest N."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List what the bench recorded, newest last: time, type, and the facts."""
    settings = _settings(config, station=station, data_dir=data_dir)
    store = _open_store(settings)
    try:
        found = store.events(prefix=type_prefix, last=last)
        backlog = {e.seq for e in store.pending(limit=1_000_000)}
    finally:
        store.close()
    for event in found:
        if as_json:
            typer.echo(
                json.dumps(
                    {**event.model_dump(mode="json"), "sent": event.seq not in backlog},
                    ensure_ascii=False,
                )
            )
            continue
        when = datetime.fromtimestamp(event.at_wall, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        facts = "  ".join(
            f"{k}={_short(v)}" for k, v in event.payload.items() if v not in (None, "")
        )
        unsent = "" if event.seq not in backlog else "  (not yet at central)"
        typer.echo(f"{when}  #{event.seq:<5} {event.type:<19} {facts}{unsent}")


def _short(value: object) -> str:
    if isinstance(value, list):
        return (
            ",".join(
                f"{v['sku']}x{v['qty']}" if isinstance(v, dict) and "sku" in v else str(v)
                for v in value
            )
            or "-"
        )
    return str(value)


@orders_app.command("import")
def import_orders(
    file: Path = typer.Argument(..., metavar="FILE", help="Orders: JSON or CSV (docs/central.md)."),
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Load orders from a file into this station (no central yet, or a USB stick).

    The file is read as ``central import-orders`` reads it; an order the station
    holds is replaced only by a higher revision.
    """
    from sync.order import packing_blockers
    from sync.orderfile import OrderFileError, read_orders_file

    settings = _settings(config, station=station, data_dir=data_dir)
    try:
        orders = read_orders_file(file)
    except OrderFileError as exc:
        raise UserError(str(exc)) from None
    store = _open_store(settings, must_exist=False)
    try:
        changed = set(store.import_orders(orders))
    finally:
        store.close()
    for order in orders:
        reasons = packing_blockers(order)
        if reasons and order.order_no in changed:
            typer.echo(
                f"warning: {order.order_no} cannot be packed yet: {'; '.join(reasons)}", err=True
            )
    held = len(orders) - len(changed)
    kept = f", {held} already held at the same or a newer revision" if held else ""
    typer.echo(f"{len(changed)} orders loaded into {settings.station}{kept}")
