"""``packline edge``: run a packing station."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import typer

from edge.settings import StationSettings
from edge.uplink import duration_words
from packline import __version__
from packline.commands import command_group
from packline.logs import setup_logging
from packline.settings import load_settings
from sync.errors import UserError

__all__ = ["app"]

app = command_group()

ConfigOption = typer.Option(
    None, "--config", "-c", metavar="FILE", help="Station settings, station.toml (docs/station.md)."
)
StationOption = typer.Option(None, help="Station name (overrides the config).")
DataDirOption = typer.Option(None, metavar="DIR", help="Where the station store lives.")


def _settings(config: Path | None, **overrides: object) -> StationSettings:
    return load_settings(StationSettings, config, **overrides)


@app.command()
def run(
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    mqtt_url: str | None = typer.Option(None, metavar="URL", help="Broker, mqtt://host:port."),
    scanner: str | None = typer.Option(
        None, metavar="URL", help="Scanner, e.g. serial:///dev/ttyACM0."
    ),
    printer: str | None = typer.Option(
        None, metavar="URL", help="Printer, e.g. file:///tmp/labels."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run the edge agent until Ctrl-C or SIGTERM."""
    from edge.factory import build_agent

    setup_logging()
    settings = _settings(
        config,
        station=station,
        mqtt_url=mqtt_url,
        scanner=scanner,
        printer=printer,
        data_dir=data_dir,
    )
    agent = build_agent(settings, version=__version__)

    def _stop(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    agent.run()


@app.command()
def status(
    config: Path | None = ConfigOption,
    station: str | None = StationOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show the station store: orders held, events not yet acknowledged by central."""
    from edge.clock import SystemClock
    from edge.store import StationStore

    settings = _settings(config, station=station, data_dir=data_dir)
    if not settings.db_path.is_file():
        raise UserError(
            f"no station store at {settings.db_path}: check station and data_dir "
            "(the store is made by the first `packline edge run`)"
        )
    clock = SystemClock()
    store = StationStore(settings.db_path, station=settings.station, clock=clock)
    try:
        link = store.uplink_state()
        typer.echo(f"station:  {settings.station} (site {settings.site})")
        typer.echo(f"instance: {store.instance_id}")
        typer.echo(f"broker:   {_broker(settings)}")
        typer.echo(f"orders:   {store.order_count()} (cursor {store.orders_cursor()})")
        typer.echo(f"shipped:  {len(store.shipments())} parcels")
        typer.echo(
            f"backlog:  {_backlog(store.backlog(), store.oldest_pending_at(), clock.wall())}"
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
