"""The scanner primitive: a scanner yields decoded strings with the time of the first key."""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Callable

__all__ = [
    "GS",
    "Scan",
    "Scanner",
    "ScannerState",
    "StateListener",
    "UnreadableListener",
    "UnreadableScan",
]

GS = "\x1d"
"""ASCII group separator: GS1's FNC1 inside a barcode, kept as is in ``Scan.text``."""


class ScannerState(enum.Enum):
    """Connection state of a scanner; ``gone`` is a state, not a crash."""

    OPENING = "opening"
    READY = "ready"
    GONE = "gone"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scan:
    """One decoded barcode. Times are of its first character."""

    text: str
    at_wall: float
    at_mono: float
    source: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class UnreadableScan:
    """A complete scan that could not be decoded; never returned by :meth:`Scanner.read`.

    ``raw`` is a printable rendering of what arrived (``repr`` of bytes, or key names),
    for the log and for a technician, never for business use. ``reason`` is a short
    sentence a person understands.
    """

    reason: str
    raw: str
    at_wall: float
    at_mono: float
    source: str = ""


StateListener = Callable[[ScannerState, str], None]
"""Called with the new state and a human-readable detail (e.g. the OS error)."""

UnreadableListener = Callable[[UnreadableScan], None]
"""Called (on the reading thread) for each scan that was dropped as unreadable."""


class Scanner(abc.ABC):
    """A barcode scanner reached by URL. Blocking API; run it in its own thread."""

    url: str

    @abc.abstractmethod
    def read(self, timeout: float | None = None) -> Scan | None:
        """Return the next complete scan, or None when ``timeout`` passed first.

        A device that vanishes is reopened with jittered backoff inside this call;
        state changes go to the listener given at construction. Raises
        ``ScannerGone`` only when the scanner was closed.
        """

    @property
    @abc.abstractmethod
    def state(self) -> ScannerState:
        """The scanner's current connection state."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop reading and release the device; a blocked ``read`` returns."""

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
