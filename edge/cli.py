"""``packline edge``: run a packing station."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import typer

from edge.settings import StationSettings
from packline.logs import setup_logging
from packline.settings import load_settings

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

ConfigOption = typer.Option(None, "--config", "-c", help="station.toml", dir_okay=False)


def _settings(config: Path | None, **overrides: object) -> StationSettings:
    return load_settings(StationSettings, config, **overrides)


@app.command()
def run(
    config: Path | None = ConfigOption,
    station: str | None = typer.Option(None, help="Station name (overrides the config)."),
    mqtt_url: str | None = typer.Option(None, help="Broker URL, mqtt://host:port."),
    scanner: str | None = typer.Option(None, help="Scanner URL, e.g. serial:///dev/ttyACM0."),
    printer: str | None = typer.Option(None, help="Printer URL, e.g. file:///tmp/labels."),
    data_dir: Path | None = typer.Option(None, help="Where the station store lives."),
) -> None:
    """Run the edge agent until Ctrl-C or SIGTERM."""
    from edge.factory import build_agent
    from packline import __version__

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
def status(config: Path | None = ConfigOption) -> None:
    """Show the station store: orders held, events not yet acknowledged by central."""
    from edge.clock import SystemClock
    from edge.store import StationStore

    settings = _settings(config)
    if not settings.db_path.exists():
        raise typer.BadParameter(f"no station store at {settings.db_path}")
    store = StationStore(settings.db_path, station=settings.station, clock=SystemClock())
    try:
        typer.echo(f"station:  {settings.station} (site {settings.site})")
        typer.echo(f"orders:   {store.order_count()} (cursor {store.orders_cursor()})")
        typer.echo(f"shipped:  {len(store.shipments())} parcels")
        typer.echo(f"backlog:  {store.backlog()} events not yet acknowledged by central")
    finally:
        store.close()
