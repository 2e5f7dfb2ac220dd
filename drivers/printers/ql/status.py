"""The Brother QL 32-byte status block, as data tables, and what it means for a job.

The same block comes back over USB (answer to ESC i S, and the printer's automatic
replies) and over the network (SNMP, Brother OID ``1.3.6.1.4.1.2435.3.3.9.1.6.1.0``).
Layout, from Brother's "Raster Command Reference" (QL-800/QL-1100 series):

=====  ===================================================================
byte   meaning
=====  ===================================================================
0-3    0x80 (print head mark), 0x20 (size 32), 0x42 ``B``, series code
4      model code (:data:`MODEL_CODES`)
8, 9   error information 1 and 2 (bit tables :data:`ERROR_BITS`)
10     media width, mm
11     media type (:data:`MEDIA_TYPES`)
15     mode
17     media length, mm (0 for endless rolls)
18     status type (:data:`STATUS_TYPES`)
19     phase type: 0 waiting to receive, 1 printing
20-21  phase number (big-endian)
22     notification number (:data:`NOTIFICATIONS`)
=====  ===================================================================
"""

from __future__ import annotations

import dataclasses
import enum

from drivers.errors import (
    CoverOpen,
    NoMedia,
    PrinterBusy,
    PrinterError,
    PrinterOffline,
    WrongMedia,
)
from drivers.printers.base import PrinterState, PrinterStatus

__all__ = [
    "ERROR_BITS",
    "INVALIDATE",
    "MEDIA_TYPES",
    "MODEL_CODES",
    "NOTIFICATIONS",
    "READINESS_STATES",
    "STATUS_BLOCK_LEN",
    "STATUS_REQUEST",
    "STATUS_TYPES",
    "ErrorBit",
    "MediaKind",
    "QLStatus",
    "StatusBlockError",
    "StatusType",
    "build_status_block",
    "check_ready",
    "parse_status",
    "split_status_blocks",
    "to_printer_status",
]

STATUS_BLOCK_LEN = 32
HEADER = b"\x80\x20\x42"
#: Clears a half-received command out of the printer (the "invalidate" command);
#: the QL-800 series wants 400 zero bytes, older models 200 — 400 suits both.
INVALIDATE = b"\x00" * 400
#: ESC @ (initialise) then ESC i S (status information request).
STATUS_REQUEST = b"\x1b\x40\x1b\x69\x53"


class StatusBlockError(ValueError):
    """Bytes that are not a Brother status block (wrong length or header)."""


class StatusType(enum.IntEnum):
    """Byte 18: why the printer sent this block."""

    REPLY = 0x00
    PRINTING_COMPLETED = 0x01
    ERROR_OCCURRED = 0x02
    TURNED_OFF = 0x04
    NOTIFICATION = 0x05
    PHASE_CHANGE = 0x06


STATUS_TYPES: dict[int, str] = {
    StatusType.REPLY: "reply to status request",
    StatusType.PRINTING_COMPLETED: "printing completed",
    StatusType.ERROR_OCCURRED: "error occurred",
    StatusType.TURNED_OFF: "turned off",
    StatusType.NOTIFICATION: "notification",
    StatusType.PHASE_CHANGE: "phase change",
}


class MediaKind(enum.Enum):
    """What kind of roll is loaded."""

    NONE = "no media"
    ENDLESS = "endless"
    DIE_CUT = "die-cut"
    UNKNOWN = "unknown"


#: Byte 11. The QL-800 series reports 0x4A/0x4B, older models 0x0A/0x0B.
MEDIA_TYPES: dict[int, MediaKind] = {
    0x00: MediaKind.NONE,
    0x0A: MediaKind.ENDLESS,
    0x4A: MediaKind.ENDLESS,
    0x0B: MediaKind.DIE_CUT,
    0x4B: MediaKind.DIE_CUT,
}

#: Byte 4.
MODEL_CODES: dict[int, str] = {
    0x4F: "QL-500/QL-550",
    0x31: "QL-560",
    0x32: "QL-570",
    0x33: "QL-580N",
    0x47: "QL-600",
    0x51: "QL-650TD",
    0x35: "QL-700",
    0x36: "QL-710W",
    0x37: "QL-720NW",
    0x38: "QL-800",
    0x39: "QL-810W",
    0x41: "QL-820NWB",
    0x50: "QL-1050",
    0x34: "QL-1060N",
    0x43: "QL-1100",
    0x44: "QL-1110NWB",
    0x45: "QL-1115NWB",
}

#: Byte 22.
NOTIFICATIONS: dict[int, str] = {
    0x00: "",
    0x01: "cover open",
    0x02: "cover closed",
    0x03: "cooling started",
    0x04: "cooling finished",
}


@dataclasses.dataclass(frozen=True)
class ErrorBit:
    """One error bit: where it is, its name, the state and the packer's words."""

    byte: int
    bit: int
    name: str
    state: PrinterState
    error: type[PrinterError]
    message: str


# Ordered by what the packer should fix first: a closed cover before a new roll.
ERROR_BITS: tuple[ErrorBit, ...] = (
    ErrorBit(9, 4, "cover open", PrinterState.COVER_OPEN, CoverOpen,
             "Printer cover is open — close the cover"),
    ErrorBit(8, 0, "no media", PrinterState.NO_MEDIA, NoMedia,
             "Printer out of labels — load a new {label} roll"),
    ErrorBit(8, 1, "end of media", PrinterState.NO_MEDIA, NoMedia,
             "Printer out of labels — load a new {label} roll"),
    ErrorBit(9, 6, "media cannot be fed", PrinterState.NO_MEDIA, NoMedia,
             "Printer cannot feed labels — reload the {label} roll"),
    ErrorBit(9, 0, "replace media", PrinterState.WRONG_MEDIA, WrongMedia,
             "Wrong labels loaded — load the {label} roll"),
    ErrorBit(8, 2, "cutter jam", PrinterState.ERROR, PrinterError,
             "Printer cutter is jammed — open the cover and clear it"),
    ErrorBit(8, 5, "printer turned off", PrinterState.OFFLINE, PrinterOffline,
             "Printer is switched off — switch it on"),
    ErrorBit(8, 4, "printer in use", PrinterState.BUSY, PrinterBusy,
             "Printer is in use by another computer — wait and retry"),
    ErrorBit(9, 1, "expansion buffer full", PrinterState.BUSY, PrinterBusy,
             "Printer memory is full — wait and retry"),
    ErrorBit(9, 3, "communication buffer full", PrinterState.BUSY, PrinterBusy,
             "Printer memory is full — wait and retry"),
    ErrorBit(9, 5, "overheating", PrinterState.BUSY, PrinterBusy,
             "Printer is too hot — wait for it to cool down"),
    ErrorBit(9, 2, "transmission error", PrinterState.ERROR, PrinterError,
             "Printer reported a transmission error — print again"),
    ErrorBit(8, 3, "weak batteries", PrinterState.ERROR, PrinterError,
             "Printer battery is weak — plug in the power adapter"),
    ErrorBit(8, 6, "high-voltage adapter", PrinterState.ERROR, PrinterError,
             "Printer has the wrong power adapter — use the original adapter"),
    ErrorBit(8, 7, "fan error", PrinterState.ERROR, PrinterError,
             "Printer fan has failed — call maintenance"),
    ErrorBit(9, 7, "system error", PrinterState.ERROR, PrinterError,
             "Printer system error — switch it off and on"),
)  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class QLStatus:
    """A parsed status block."""

    raw: bytes
    model_code: int
    model: str | None
    errors: tuple[ErrorBit, ...]
    media_width_mm: int
    media_length_mm: int
    media_kind: MediaKind
    status_type: int
    phase_printing: bool
    phase_number: int
    notification: int

    @property
    def status_words(self) -> str:
        """Byte 18 in words."""
        return STATUS_TYPES.get(self.status_type, f"status type 0x{self.status_type:02x}")

    @property
    def media_words(self) -> str:
        """The loaded media in words: ``62 mm endless``, ``62x100 mm die-cut``."""
        if self.media_kind is MediaKind.NONE or not self.media_width_mm:
            return "no media"
        if self.media_kind is MediaKind.DIE_CUT:
            return f"{self.media_width_mm}x{self.media_length_mm} mm die-cut"
        return f"{self.media_width_mm} mm {self.media_kind.value}"


def parse_status(data: bytes) -> QLStatus:
    """Parse one 32-byte status block; raise :class:`StatusBlockError` otherwise."""
    data = bytes(data)
    if len(data) != STATUS_BLOCK_LEN:
        raise StatusBlockError(f"status block must be 32 bytes, got {len(data)}")
    if not data.startswith(HEADER):
        raise StatusBlockError(f"status block must start with 80 20 42, got {data[:3].hex(' ')}")
    errors = tuple(e for e in ERROR_BITS if data[e.byte] & (1 << e.bit))
    return QLStatus(
        raw=data,
        model_code=data[4],
        model=MODEL_CODES.get(data[4]),
        errors=errors,
        media_width_mm=data[10],
        media_length_mm=data[17],
        media_kind=MEDIA_TYPES.get(data[11], MediaKind.UNKNOWN),
        status_type=data[18],
        phase_printing=data[19] == 0x01,
        phase_number=int.from_bytes(data[20:22], "big"),
        notification=data[22],
    )


def build_status_block(
    *,
    model_code: int = 0x41,
    errors: tuple[str, ...] = (),
    media_width_mm: int = 62,
    media_length_mm: int = 0,
    media_kind: MediaKind = MediaKind.ENDLESS,
    status_type: int = StatusType.REPLY,
    printing: bool = False,
    notification: int = 0,
) -> bytes:
    """Build a status block from the documented layout (used by the fakes and tests)."""
    block = bytearray(STATUS_BLOCK_LEN)
    block[0:4] = b"\x80\x20\x42\x34"
    block[4] = model_code
    block[5] = 0x30
    by_name = {e.name: e for e in ERROR_BITS}
    for name in errors:
        bit = by_name[name]
        block[bit.byte] |= 1 << bit.bit
    kind_code = {
        MediaKind.NONE: 0x00,
        MediaKind.ENDLESS: 0x4A,
        MediaKind.DIE_CUT: 0x4B,
        MediaKind.UNKNOWN: 0xFF,
    }
    if media_kind is MediaKind.NONE:
        media_width_mm = media_length_mm = 0
    block[10] = media_width_mm
    block[11] = kind_code[media_kind]
    block[17] = media_length_mm
    block[18] = status_type
    block[19] = 0x01 if printing else 0x00
    block[22] = notification
    return bytes(block)


def split_status_blocks(buffer: bytearray) -> list[QLStatus]:
    """Take every complete status block off the front of ``buffer``.

    Bytes before a header are line noise (or a half block after a reconnect) and are
    dropped, so one garbled block cannot wedge the reader.
    """
    blocks: list[QLStatus] = []
    while True:
        start = buffer.find(HEADER)
        if start < 0:
            # Keep a possible header prefix at the very end.
            del buffer[: max(0, len(buffer) - 2)]
            return blocks
        del buffer[:start]
        if len(buffer) < STATUS_BLOCK_LEN:
            return blocks
        chunk = bytes(buffer[:STATUS_BLOCK_LEN])
        del buffer[:STATUS_BLOCK_LEN]
        blocks.append(parse_status(chunk))


#: The state of a reading with no error bit that is still not ready (no roll, the wrong
#: roll, a job still printing), by the error :func:`check_ready` raised for it.
READINESS_STATES: tuple[tuple[type[PrinterError], PrinterState], ...] = (
    (NoMedia, PrinterState.NO_MEDIA),
    (WrongMedia, PrinterState.WRONG_MEDIA),
    (PrinterBusy, PrinterState.BUSY),
)


def _label_words(width_mm: int, length_mm: int) -> str:
    return f"{width_mm}x{length_mm} mm" if length_mm else f"{width_mm} mm"


def _expected_words(expected: tuple[int, int] | None) -> str:
    return "right-size" if expected is None else _label_words(*expected)


def check_ready(status: QLStatus, *, expected: tuple[int, int] | None) -> None:
    """Raise the packline error a packer can act on, or return when ready.

    ``expected`` is the configured label's (width, length) in mm, length 0 for endless.
    """
    label = _expected_words(expected)
    if status.errors:
        first = status.errors[0]
        raise first.error(first.message.format(label=label))
    if status.media_kind is MediaKind.NONE or status.media_width_mm == 0:
        raise NoMedia(f"Printer has no labels loaded — load a {label} roll")
    if expected is not None:
        width, length = expected
        if (status.media_width_mm, status.media_length_mm) != (width, length):
            raise WrongMedia(f"Wrong labels loaded ({status.media_words}) — load the {label} roll")
    if status.phase_printing:
        raise PrinterBusy("Printer is still printing — wait a moment")


def to_printer_status(
    status: QLStatus, *, expected: tuple[int, int] | None, page_count: int | None = None
) -> PrinterStatus:
    """The generic :class:`PrinterStatus` for a parsed block."""
    try:
        check_ready(status, expected=expected)
        state, words = PrinterState.READY, "ready"
    except PrinterError as exc:
        words = str(exc)
        if status.errors:
            state = status.errors[0].state
        else:
            state = next(
                (s for error, s in READINESS_STATES if isinstance(exc, error)), PrinterState.ERROR
            )
    error_names = ", ".join(e.name for e in status.errors)
    detail = words + (f" ({error_names})" if error_names else "") + f"; {status.media_words}"
    return PrinterStatus(
        state=state,
        detail=detail,
        model=status.model,
        media_width_mm=status.media_width_mm or None,
        media_length_mm=status.media_length_mm or None,
        page_count=page_count,
    )
