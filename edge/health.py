"""What the station knows of its devices, for its status report (B2, A2).

The printer's state is read, never assumed: after every print job (the job's own
status readback) and by polling at an explicit interval, so a roll that runs out
between orders shows on the status page before the next scan. The scanner's state is
the scanner's own: it reports every change.
"""

from __future__ import annotations

import logging
from typing import Any

from drivers.errors import DriverError
from drivers.printers.base import Printer, PrinterStatus, PrintResult
from drivers.scanners.base import Scanner
from edge.clock import Clock

__all__ = ["DeviceHealth"]

log = logging.getLogger(__name__)


class DeviceHealth:
    """The printer and scanner part of the station status.

    :meth:`poll` reads the printer's status when ``interval`` seconds (on the
    injected clock's monotonic time) have passed since the last reading; the bench
    tells it what each print job said with :meth:`note_print` and :meth:`note_fault`.
    """

    def __init__(
        self, *, printer: Printer, scanner: Scanner, clock: Clock, interval: float
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the device health interval must be positive, got {interval}")
        self.printer = printer
        self.scanner = scanner
        self.clock = clock
        self.interval = interval
        self._printer_state = "unknown"
        self._printer_detail = ""
        self._labels_left: int | None = None
        self._checked_at: float | None = None

    def report(self) -> dict[str, Any]:
        """The device fields of :class:`~sync.messages.StationStatus`."""
        return {
            "printer": self._printer_state,
            "printer_detail": self._printer_detail,
            "scanner": self.scanner.state.value,
            "labels_left": self._labels_left,
        }

    def check_printer(self) -> None:
        """Read the printer's status now and remember it."""
        self._checked_at = self.clock.mono()
        try:
            status = self.printer.status()
        except DriverError as exc:
            self._printer_state, self._printer_detail = "offline", str(exc)
            return
        self._remember(status)

    def poll(self) -> bool:
        """Read the printer when the interval has passed; True when it did."""
        now = self.clock.mono()
        if self._checked_at is not None and now - self._checked_at < self.interval:
            return False
        self.check_printer()
        return True

    def note_print(self, result: PrintResult) -> None:
        """A job was printed: its status readback is the printer's newest state."""
        if result.status is not None:
            self._remember(result.status)
        else:
            self._printer_state, self._printer_detail = "ready", result.detail

    def note_fault(self, detail: str) -> None:
        """A job failed with a printer fault, in the printer's own words."""
        self._printer_state, self._printer_detail = "fault", detail

    def _remember(self, status: PrinterStatus) -> None:
        self._printer_state = status.state.value
        self._printer_detail = status.detail
        self._labels_left = status.labels_left
