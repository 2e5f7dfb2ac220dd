"""The packing station's agent: scans in, labels out, every fact recorded.

The agent runs the parts it is handed (:func:`edge.factory.build_agent` builds them
from the settings): the scanner loop on its own thread, one bench step per scan
(:mod:`edge.bench`), the printer's health polled at an interval (:mod:`edge.health`),
and the uplink (:mod:`edge.uplink`) delivering records to central in the background
whenever it can. The bench never waits on the network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from drivers.printers.base import Printer
from drivers.scanners.base import Scanner
from edge.bench import Bench, Outcome
from edge.health import DeviceHealth
from edge.settings import StationSettings
from edge.store import StationStore
from edge.uplink import Uplink

__all__ = ["Agent", "log_feedback"]

log = logging.getLogger(__name__)
bench_log = logging.getLogger("packline.bench")

# How long one scanner read waits, so stop() and health polling are noticed.
READ_TIMEOUT = 0.5


def log_feedback(outcome: Outcome) -> None:
    """Tell the packer through the ``packline.bench`` log: ``OK ...`` / ``REFUSED ...``."""
    if outcome.ok:
        bench_log.info("OK      %s", outcome.message)
    else:
        bench_log.warning("REFUSED %s", outcome.message)


class Agent:
    """One packing station. ``handle_scan`` is the whole bench step, synchronously."""

    def __init__(
        self,
        *,
        settings: StationSettings,
        store: StationStore,
        printer: Printer,
        scanner: Scanner,
        devices: DeviceHealth,
        bench: Bench,
        uplink: Uplink,
        version: str,
        feedback: Callable[[Outcome], None] = log_feedback,
    ) -> None:
        self.settings = settings
        self.store = store
        self.printer = printer
        self.scanner = scanner
        self.devices = devices
        self.bench = bench
        self.uplink = uplink
        self.version = version
        self.feedback = feedback
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.last_scan_at: float | None = None

    def handle_scan(self, text: str) -> Outcome:
        """Look up, audit, print and record one scanned order (or waybill) number."""
        with self._lock:
            self.last_scan_at = self.bench.clock.wall()
            outcome = self.bench.handle(text)
        self.feedback(outcome)
        self.uplink.notify()
        return outcome

    def health(self) -> dict[str, Any]:
        """The bench and device part of the station status."""
        return {
            **self.devices.report(),
            "label_size": self.settings.label_size,
            "last_scan_at": self.last_scan_at,
        }

    def run(self) -> None:
        """Run until :meth:`stop`: scanner loop in this thread, sync in the background."""
        log.info(
            "station %s (site %s, packline %s): %d orders, backlog %d, scanner %s, printer %s",
            self.settings.station,
            self.settings.site,
            self.version,
            self.store.order_count(),
            self.store.backlog(),
            self.settings.scanner,
            self.settings.printer,
        )
        self.devices.check_printer()
        self.uplink.start()
        try:
            while not self._stop.is_set():
                scan = self.scanner.read(timeout=READ_TIMEOUT)
                if scan is not None:
                    self.handle_scan(scan.text)
                self.devices.poll()
        finally:
            self.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()

    def close(self) -> None:
        """Close every part: scanner, uplink (an orderly offline status), printer, store."""
        self.scanner.close()
        self.uplink.stop()
        self.printer.close()
        self.store.close()
