"""The printer primitive: a printer takes a rendered job and returns a status.

Every printer implements :class:`Printer`. A job carries an id; a job id that was
already printed successfully is not printed again unless ``reprint=True``, so a retry
after a timeout never produces a second label. :class:`ManagedPrinter` is the base of
the printers packline ships (Brother QL, ZPL, file): it keeps that promise with the
job ledger and adds the label stock estimate, so a printer only reads its status and
sends a job (returning a :class:`SendOutcome`).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import threading
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from drivers.errors import NoMedia
from drivers.printers.ledger import JobLedger, LabelStock, LedgerEntry, stock_and_ledger

__all__ = [
    "ManagedPrinter",
    "PrintJob",
    "PrintResult",
    "Printer",
    "PrinterState",
    "PrinterStatus",
    "SendOutcome",
]


class PrinterState(enum.Enum):
    """What a printer reports, in words a packer understands (``.value``)."""

    READY = "ready"
    BUSY = "busy"
    NO_MEDIA = "no media"
    COVER_OPEN = "cover open"
    WRONG_MEDIA = "wrong media"
    OFFLINE = "offline"
    ERROR = "error"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrinterStatus:
    """One reading of a printer's state.

    ``detail`` holds the printer's own words (error bits, phase); ``media_width_mm`` is
    the loaded label width when the printer can tell; ``labels_left`` is the estimate
    of the station's label stock, or ``None`` when no roll size is configured.
    """

    state: PrinterState
    detail: str = ""
    model: str | None = None
    media_width_mm: int | None = None
    media_length_mm: int | None = None
    labels_left: int | None = None
    page_count: int | None = None

    @property
    def ready(self) -> bool:
        """True when a job can be sent now."""
        return self.state is PrinterState.READY


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrintJob:
    """A rendered job: label images, or raw printer bytes (e.g. carrier-supplied ZPL).

    Exactly one of ``images`` and ``raw`` is given.
    """

    job_id: str
    images: Sequence[Image.Image] = ()
    raw: bytes | None = None
    copies: int = 1
    reprint: bool = False

    def __post_init__(self) -> None:
        if bool(self.images) == (self.raw is not None):
            raise ValueError("a PrintJob needs either images or raw bytes, not both")
        if self.copies < 1:
            raise ValueError("copies must be at least 1")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrintResult:
    """What happened to a job.

    ``verified`` is True only when the printer itself confirmed the print (status
    readback); False when the transport cannot confirm and all we know is that the
    bytes were written. ``duplicate`` is True when the job id had already printed and
    nothing was sent this time.
    """

    job_id: str
    verified: bool
    duplicate: bool = False
    status: PrinterStatus | None = None
    detail: str = ""


class Printer(abc.ABC):
    """A label printer reached through one transport.

    ``dpi`` is the resolution labels must be rendered at for this printer, and
    ``label_key`` the label stock it is set up for (a Brother QL's ``label=``), when
    the printer has one; the station takes both from here by default.
    """

    url: str
    dpi: int | None = None
    label_key: str | None = None

    @abc.abstractmethod
    def status(self) -> PrinterStatus:
        """Read the printer's state now; never assumed. Raises ``PrinterOffline``."""

    @abc.abstractmethod
    def print(self, job: PrintJob) -> PrintResult:
        """Print ``job`` (checking status first) or raise a ``PrinterError`` subclass."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the transport."""

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclasses.dataclass(frozen=True, kw_only=True)
class SendOutcome:
    """How sending one job went, as the transport saw it (before ledger bookkeeping).

    ``verified`` is True when the printer confirmed the job; ``labels`` is how many
    labels came out (for the stock estimate), each ``label_length_mm`` long when known.
    """

    verified: bool
    detail: str
    labels: int
    label_length_mm: float | None = None
    status: PrinterStatus | None = None


class ManagedPrinter(Printer):
    """A :class:`Printer` with the ledger and the label stock wired in.

    Subclasses implement :meth:`_read_status` and :meth:`_send`; this class makes
    retries idempotent, serialises jobs, and adds ``labels_left`` to every status.
    """

    def __init__(
        self,
        *,
        url: str,
        ledger_path: Path | None = None,
        roll_labels: int | None = None,
        roll_length_mm: float | None = None,
    ) -> None:
        self.url = url
        ledger, stock = stock_and_ledger(
            ledger_path=ledger_path, roll_labels=roll_labels, roll_length_mm=roll_length_mm
        )
        #: Job ids sent and finished: a retry of one of them prints nothing.
        self.ledger: JobLedger = ledger
        #: The estimate of labels left on the roll.
        self.stock: LabelStock = stock
        self._job_lock = threading.Lock()

    @abc.abstractmethod
    def _read_status(self) -> PrinterStatus:
        """Read the printer's state now (without the stock estimate)."""

    @abc.abstractmethod
    def _send(self, job: PrintJob) -> SendOutcome:
        """Check status, send ``job`` and confirm it; raise a ``PrinterError`` on faults."""

    def _already_printed(self, job_id: str) -> LedgerEntry | None:
        """The finished ledger entry for ``job_id``; file printers also look at their files.

        A job the station was still sending when it stopped counts as printed only
        when the printer's page counter moved on since; otherwise it is sent again.
        """
        entry = self.ledger.get(job_id)
        if entry is None or entry.state == "done":
            return entry
        now = self._page_counter()
        if entry.page_count is not None and now is not None and now > entry.page_count:
            return dataclasses.replace(
                entry,
                state="recovered",
                verified=True,
                detail="printed before the station stopped (the page counter moved on)",
            )
        return None

    def _page_counter(self) -> int | None:
        """The printer's lifetime page counter, for printers that have one (else None)."""
        return None

    def _with_stock(self, status: PrinterStatus) -> PrinterStatus:
        self.stock.observe(
            media_out=status.state is PrinterState.NO_MEDIA,
            ready=status.state is PrinterState.READY,
        )
        return dataclasses.replace(status, labels_left=self.stock.labels_left())

    def status(self) -> PrinterStatus:
        """Read the printer's state now, with the label stock estimate."""
        return self._with_stock(self._read_status())

    def print(self, job: PrintJob) -> PrintResult:
        """Print ``job`` once: a job id already printed returns ``duplicate=True``."""
        with self._job_lock:
            if not job.reprint:
                entry = self._already_printed(job.job_id)
                if entry is not None:
                    return PrintResult(
                        job_id=job.job_id,
                        verified=entry.verified,
                        duplicate=True,
                        detail=entry.detail
                        if entry.state == "recovered"
                        else "already printed; not sent again (ask for a reprint)",
                    )
            self.ledger.record(
                LedgerEntry(
                    job_id=job.job_id,
                    verified=False,
                    labels=0,
                    state="sending",
                    page_count=self._page_counter(),
                )
            )
            try:
                outcome = self._send(job)
            except BaseException as exc:
                # It did not print (or not all of it): a retry sends it again.
                self.ledger.record(
                    LedgerEntry(job_id=job.job_id, verified=False, labels=0, state="failed")
                )
                # Let the stock see a no-media fault so a fresh roll is noticed later.
                if isinstance(exc, NoMedia):
                    self.stock.observe(media_out=True, ready=False)
                raise
            self.ledger.record(
                LedgerEntry(
                    job_id=job.job_id,
                    verified=outcome.verified,
                    labels=outcome.labels,
                    detail=outcome.detail,
                )
            )
            self.stock.consume(labels=outcome.labels, length_mm=outcome.label_length_mm)
            status = outcome.status
            if status is not None:
                status = dataclasses.replace(status, labels_left=self.stock.labels_left())
            return PrintResult(
                job_id=job.job_id,
                verified=outcome.verified,
                status=status,
                detail=outcome.detail,
            )
