"""Build a station's parts from its settings and hand them to an :class:`Agent`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from drivers.printers import open_printer
from drivers.printers.base import Printer
from drivers.scanners import open_scanner
from drivers.scanners.base import Scanner, ScannerState, UnreadableScan
from edge.agent import Agent, log_feedback
from edge.bench import Feedback
from edge.check import resolve_label
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
    feedback: Callable[[Feedback], None] = log_feedback,
) -> Agent:
    """The agent of the station ``settings`` describe, every part opened.

    ``version`` is reported in the station's status. ``scanner`` replaces the one the
    settings name (tests hand in a scripted one). A bad device or broker URL, or a
    label the printer can never print (:class:`~edge.check.CannotWork`), raises here,
    before anything runs; a scanner that is not plugged in yet is a state (``gone``),
    not an error.
    """
    clock = clock or SystemClock()
    store = StationStore(settings.db_path, station=settings.station, clock=clock)
    opened: list[Printer | Scanner] = []
    try:
        printer = open_printer(settings.printer, **_ledger(settings))
        opened.append(printer)
        label, dpi = resolve_label(settings, printer)
        # The agent exists only after the scanner is open, but the scanner reports its
        # first state while opening: these forward to the agent once it is there.
        agent: list[Agent] = []

        def on_state(state: ScannerState, detail: str) -> None:
            # The scanner driver logs its own states; this one only forwards them.
            log.debug("scanner %s%s", state.value, f": {detail}" if detail else "")
            if agent:
                agent[0].devices.note_scanner(state, detail)

        def on_unreadable(scan: UnreadableScan) -> None:
            if agent:
                agent[0].handle_unreadable(scan)
            else:
                log.warning("unreadable scan before the bench was ready: %s", scan.reason)

        if scanner is None:
            scanner = open_scanner(settings.scanner, on_state=on_state, on_unreadable=on_unreadable)
            opened.append(scanner)
    except BaseException:
        for part in reversed(opened):
            part.close()
        store.close()
        raise
    devices = DeviceHealth(
        printer=printer,
        scanner=scanner,
        clock=clock,
        interval=settings.health_every,
        label=label,
    )
    session = station_session(
        site=settings.site,
        station=settings.station,
        mqtt_url=settings.mqtt_url,
        version=version,
        instance_id=store.instance_id,
    )

    def health() -> dict[str, object]:
        return agent[0].health() if agent else devices.report()

    def on_orders(changed: int) -> None:
        if agent:
            agent[0].orders_changed(changed)

    uplink = Uplink(
        session=session,
        outbox=store,
        site=settings.site,
        station=settings.station,
        version=version,
        health=health,
        on_orders=on_orders,
        clock=clock,
        data_dir=settings.data_dir,
        resend_after=settings.resend_after,
        window=settings.batches_in_flight,
    )
    agent.append(
        Agent(
            settings=settings,
            store=store,
            printer=printer,
            scanner=scanner,
            devices=devices,
            uplink=uplink,
            clock=clock,
            label=label,
            label_dpi=dpi,
            version=version,
            feedback=feedback,
        )
    )
    return agent[0]


def _ledger(settings: StationSettings) -> dict[str, object]:
    """A persistent print ledger in the station's data dir, unless the URL names one.

    The printer refuses a job id it already printed, but only a ledger on disk keeps
    that promise across a crash between printing a label and recording it.
    """
    if "ledger=" in settings.printer:
        return {}
    return {"ledger": settings.data_dir / f"{settings.station}.printed.jsonl"}
