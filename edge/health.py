"""What the station knows of its devices, for the packer's screen and the status (B2, A2).

The printer's state is read, never assumed: after every print job (the job's own
status readback) and by polling at an explicit interval, so a roll that runs out
between orders shows before the next scan. The scanner's state is the scanner's own:
it reports every change. Each change of either is handed to ``on_change`` (the agent
records a ``device.state`` event and refreshes the screen).

The configured label is checked against the media the printer reports, at the first
reading and whenever the printer reports different media: a label that would come out
wrong is refused before it is printed (``label_does_not_fit``).
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

from drivers.errors import DriverError
from drivers.labels.sizes import LabelSize
from drivers.printers.base import Printer, PrinterState, PrinterStatus, PrintResult
from drivers.scanners.base import Scanner, ScannerState
from edge.clock import Clock

__all__ = ["DeviceChange", "DeviceHealth", "PrinterReadiness", "media_problem"]

log = logging.getLogger(__name__)

#: Printer states in which a job may be sent (the job itself checks again).
_CAN_PRINT = frozenset({"ready", "busy", "unknown"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceChange:
    """A device's new state, as recorded in ``device.state``."""

    device: str
    state: str
    detail: str
    model: str = ""
    serial: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrinterReadiness:
    """Whether a label may be printed now, and if not, why in the packer's words."""

    ready: bool
    code: str = ""
    message: str = ""


def _media_words(width: float, length: float | None) -> str:
    if length is None:
        return f"{width:g} mm endless labels"
    return f"{width:g}x{length:g} mm labels"


def media_problem(status: PrinterStatus, expected: LabelSize) -> str:
    """Why ``expected`` labels cannot be printed on the media ``status`` reports; ``""``
    when they can or the printer does not say what is loaded."""
    width = status.media_width_mm
    if not width:
        return ""
    length = status.media_length_mm or None
    want_length = None if expected.length_mm is None else round(expected.length_mm)
    if round(expected.width_mm) == width and want_length == length:
        return ""
    return (
        f"The printer has {_media_words(width, length)} loaded but this bench prints "
        f"{_media_words(expected.width_mm, expected.length_mm)} — load the right roll, or "
        "set label_size in station.toml"
    )


class DeviceHealth:
    """The printer and scanner part of the station status and the packer's screen.

    :meth:`poll` reads the printer's status when ``interval`` seconds (on the
    injected clock's monotonic time) have passed since the last reading; the bench
    tells it what each print job said with :meth:`note_print` and :meth:`note_fault`.
    """

    def __init__(
        self,
        *,
        printer: Printer,
        scanner: Scanner,
        clock: Clock,
        interval: float,
        label: LabelSize | None = None,
        on_change: Callable[[DeviceChange], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the device health interval must be positive, got {interval}")
        self.printer = printer
        self.scanner = scanner
        self.clock = clock
        self.interval = interval
        self.label = label
        self.on_change = on_change
        self._printer_state = "unknown"
        self._printer_detail = ""
        self._printer_model = str(getattr(printer, "model", "") or "")
        self._media = ""
        self._labels_left: int | None = None
        self._label_problem = ""
        self._checked_at: float | None = None
        self._scanner_state = scanner.state.value
        self._scanner_detail = ""

    # -- reading -------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The device fields of :class:`~sync.messages.StationStatus`."""
        return {
            "printer": self._printer_state,
            "printer_detail": self._label_problem or self._printer_detail,
            "printer_model": self._printer_model,
            "printer_serial": self.printer_serial,
            "scanner": self.scanner.state.value,
            "scanner_detail": self._scanner_detail,
            "scanner_device": _device(getattr(self.scanner, "url", "")),
            "labels_left": self._labels_left,
            "label_size": self.label.key if self.label is not None else "",
        }

    @property
    def printer_serial(self) -> str:
        """Where the printer is: its network address or device (no serial number is
        read from the printers packline drives)."""
        return _device(self.printer.url)

    @property
    def printer_state(self) -> str:
        """The printer's last known state in words (``ready``, ``no media``, ...)."""
        return self._printer_state

    @property
    def printer_detail(self) -> str:
        """The printer's own words of its last reading."""
        return self._printer_detail

    @property
    def label_problem(self) -> str:
        """Why the configured label does not fit the loaded media, or ``""``."""
        return self._label_problem

    @property
    def labels_left(self) -> int | None:
        """The label stock estimate, when a roll size is configured."""
        return self._labels_left

    @property
    def scanner_state(self) -> str:
        """The scanner's state in words (``ready``, ``gone``, ...)."""
        return self.scanner.state.value

    @property
    def scanner_detail(self) -> str:
        """The scanner's last reported detail (the OS's reason when gone)."""
        return self._scanner_detail

    def readiness(self) -> PrinterReadiness:
        """B2 as the bench asks it before a label is due: the last reading's verdict."""
        if self._label_problem:
            return PrinterReadiness(
                ready=False, code="label_does_not_fit", message=self._label_problem
            )
        if self._printer_state in _CAN_PRINT:
            return PrinterReadiness(ready=True)
        words = self._printer_detail or self._printer_state
        return PrinterReadiness(
            ready=False, code="printer_not_ready", message=f"Printer {self._printer_state}: {words}"
        )

    # -- updating ------------------------------------------------------------------------

    def check_printer(self) -> None:
        """Read the printer's status now and remember it."""
        self._checked_at = self.clock.mono()
        try:
            status = self.printer.status()
        except DriverError as exc:
            self._set_printer("offline", str(exc))
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
            self._set_printer("ready", result.detail)

    def note_fault(self, detail: str) -> None:
        """A job failed with a printer fault, in the printer's own words."""
        self._set_printer("fault", detail)

    def note_scanner(self, state: ScannerState, detail: str) -> None:
        """The scanner reported a new state (its listener calls this)."""
        if state.value == self._scanner_state and detail == self._scanner_detail:
            return
        self._scanner_state, self._scanner_detail = state.value, detail
        if state in (ScannerState.READY, ScannerState.GONE):
            self._changed(
                DeviceChange(
                    device="scanner",
                    state=state.value,
                    detail=detail,
                    serial=_device(getattr(self.scanner, "url", "")),
                )
            )

    def _remember(self, status: PrinterStatus) -> None:
        if status.model:
            self._printer_model = status.model
        self._labels_left = status.labels_left
        media = f"{status.media_width_mm}x{status.media_length_mm}"
        if self.label is not None and media != self._media:
            # New media (or the first reading): is the configured label still right?
            self._media = media
            problem = media_problem(status, self.label)
            if problem != self._label_problem:
                self._label_problem = problem
                if problem:
                    log.warning("label check: %s", problem)
        state = status.state.value
        if self._label_problem and status.state is PrinterState.READY:
            state = PrinterState.WRONG_MEDIA.value
        self._set_printer(state, status.detail)

    def _set_printer(self, state: str, detail: str) -> None:
        changed = state != self._printer_state
        self._printer_state, self._printer_detail = state, detail
        if changed:
            self._changed(
                DeviceChange(
                    device="printer",
                    state=state,
                    detail=self._label_problem or detail,
                    model=self._printer_model,
                    serial=self.printer_serial,
                )
            )

    def _changed(self, change: DeviceChange) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(change)
        except Exception:  # a listener must not stop the health readings
            log.exception("device change listener failed for %s", change)


def _device(url: str) -> str:
    """The device part of a URL: ``10.0.0.5:9100``, ``/dev/ttyACM0``."""
    parts = urllib.parse.urlsplit(url)
    return parts.netloc or parts.path
