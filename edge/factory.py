"""Build a station's parts from its settings and hand them to an :class:`Agent`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from drivers.printers import open_printer
from drivers.scanners import open_scanner
from drivers.scanners.base import Scanner, ScannerState, UnreadableScan
from edge.agent import Agent, log_feedback
from edge.bench import Bench, Outcome, unreadable
from edge.clock import Clock, SystemClock
from edge.health import DeviceHealth
from edge.settings import StationSettings
from edge.store import StationStore
from edge.uplink import Uplink, station_session

__all__ = ["build_agent"]

log = logging.getLogger(__name__)


def build_agent(
    settings: StationSettings,
    *,
    version: str,
    clock: Clock | None = None,
    scanner: Scanner | None = None,
    feedback: Callable[[Outcome], None] = log_feedback,
) -> Agent:
    """The agent of the station ``settings`` describe, every part opened.

    ``version`` is reported in the station's status. ``scanner`` replaces the one the
    settings name (tests hand in a scripted one). A bad device or broker URL raises
    here, before anything runs; a scanner that is not plugged in yet is a state
    (``gone``), not an error.
    """
    clock = clock or SystemClock()
    store = StationStore(settings.db_path, station=settings.station, clock=clock)
    try:
        printer = open_printer(settings.printer, **_ledger(settings))
    except BaseException:
        store.close()
        raise
    if scanner is None:

        def on_unreadable(scan: UnreadableScan) -> None:
            feedback(unreadable(scan))

        try:
            scanner = open_scanner(
                settings.scanner, on_state=_log_scanner_state, on_unreadable=on_unreadable
            )
        except BaseException:
            printer.close()
            store.close()
            raise
    devices = DeviceHealth(
        printer=printer, scanner=scanner, clock=clock, interval=settings.health_interval
    )
    session = station_session(
        site=settings.site,
        station=settings.station,
        mqtt_url=settings.mqtt_url,
        version=version,
        instance_id=store.instance_id,
    )
    uplink = Uplink(
        session=session,
        outbox=store,
        site=settings.site,
        station=settings.station,
        version=version,
        health=devices.report,
        clock=clock,
        data_dir=settings.data_dir,
        resend_after=settings.resend_after,
    )
    bench = Bench(
        store=store,
        printer=printer,
        devices=devices,
        clock=clock,
        operator=settings.operator or settings.station,
        label_size=settings.label_size,
        label_dpi=settings.label_dpi,
    )
    agent = Agent(
        settings=settings,
        store=store,
        printer=printer,
        scanner=scanner,
        devices=devices,
        bench=bench,
        uplink=uplink,
        version=version,
        feedback=feedback,
    )
    uplink.health = agent.health
    return agent


def _log_scanner_state(state: ScannerState, detail: str) -> None:
    # The status report reads the scanner's state itself; this is for the log.
    log.info("scanner %s%s", state.value, f": {detail}" if detail else "")


def _ledger(settings: StationSettings) -> dict[str, object]:
    """A persistent print ledger in the station's data dir, unless the URL names one.

    The printer refuses a job id it already printed, but only a ledger on disk keeps
    that promise across a crash between printing a label and recording it.
    """
    if "ledger=" in settings.printer:
        return {}
    return {"ledger": settings.data_dir / f"{settings.station}.printed.jsonl"}
