"""The printer primitive: a printer takes a rendered job and returns a status.

Every transport module implements :class:`Printer`. A job carries an id; a job id that
was already printed successfully is not printed again unless ``reprint=True``, so a
retry after a timeout never produces a second label.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Sequence

from PIL import Image

__all__ = [
    "PrintJob",
    "PrintResult",
    "Printer",
    "PrinterState",
    "PrinterStatus",
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
    """A label printer reached through one transport."""

    url: str

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
