"""The ZPL ``~HS`` host status, as data tables, and what it means for a job.

The answer is three lines, each framed STX … ETX CR LF, of comma-separated fields
(Zebra's "ZPL II Programming Guide", ``~HS``). :data:`HS_FIELDS` names the fields
packline reads; :data:`HS_FAULTS` says which flags stop printing, in what order the
packer should fix them, and in which words.
"""

from __future__ import annotations

import dataclasses

from drivers.errors import CoverOpen, NoMedia, PrinterBusy, PrinterError
from drivers.printers.base import PrinterState, PrinterStatus

__all__ = [
    "ETX",
    "HOST_STATUS_REQUEST",
    "HS_FAULTS",
    "HS_FIELDS",
    "STX",
    "HostStatus",
    "HostStatusError",
    "HsFault",
    "parse_host_status",
    "to_printer_status",
]

HOST_STATUS_REQUEST = b"~HS"
STX, ETX = 0x02, 0x03

#: (line, field index, name) of the ``~HS`` fields packline reads.
HS_FIELDS: tuple[tuple[int, int, str], ...] = (
    (0, 1, "paper_out"),
    (0, 2, "paused"),
    (0, 3, "label_length_dots"),
    (0, 4, "formats_in_buffer"),
    (0, 5, "buffer_full"),
    (0, 7, "partial_format"),
    (0, 9, "corrupt_ram"),
    (0, 10, "under_temperature"),
    (0, 11, "over_temperature"),
    (1, 2, "head_up"),
    (1, 3, "ribbon_out"),
    (1, 4, "thermal_transfer"),
    (1, 7, "label_waiting"),
    (1, 8, "labels_remaining"),
)


@dataclasses.dataclass(frozen=True)
class HsFault:
    """A ``~HS`` flag that stops printing: state, error and the packer's words."""

    field: str
    name: str
    state: PrinterState
    error: type[PrinterError]
    message: str


# Ordered by what the packer should fix first.
HS_FAULTS: tuple[HsFault, ...] = (
    HsFault("head_up", "head open", PrinterState.COVER_OPEN, CoverOpen,
            "Printer head is open — close the print head"),
    HsFault("paper_out", "paper out", PrinterState.NO_MEDIA, NoMedia,
            "Printer out of labels — load a new roll"),
    HsFault("ribbon_out", "ribbon out", PrinterState.NO_MEDIA, NoMedia,
            "Printer out of ribbon — load a new ribbon"),
    HsFault("paused", "paused", PrinterState.BUSY, PrinterBusy,
            "Printer is paused — press the pause button on the printer"),
    HsFault("buffer_full", "buffer full", PrinterState.BUSY, PrinterBusy,
            "Printer memory is full — wait and retry"),
    HsFault("over_temperature", "too hot", PrinterState.BUSY, PrinterBusy,
            "Printer head is too hot — wait for it to cool down"),
    HsFault("under_temperature", "too cold", PrinterState.ERROR, PrinterError,
            "Printer is too cold to print — move it somewhere warmer"),
    HsFault("corrupt_ram", "corrupt memory", PrinterState.ERROR, PrinterError,
            "Printer memory error — switch it off and on"),
)  # fmt: skip


class HostStatusError(ValueError):
    """Bytes that are not a ``~HS`` answer."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class HostStatus:
    """A parsed ``~HS`` answer: the named fields as integers."""

    fields: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.fields.get(name, 0)

    @property
    def faults(self) -> tuple[HsFault, ...]:
        """Every fault flag that is set, most urgent first."""
        return tuple(f for f in HS_FAULTS if self[f.field])

    @property
    def busy_with_job(self) -> bool:
        """Formats waiting, a label being printed, or a half-received format."""
        return bool(self["formats_in_buffer"] or self["labels_remaining"] or self["partial_format"])


def parse_host_status(data: bytes) -> HostStatus:
    """Parse the three ``~HS`` lines; raise :class:`HostStatusError` if they are not."""
    lines: list[list[str]] = []
    pos = 0
    while len(lines) < 3:
        start = data.find(bytes([STX]), pos)
        end = data.find(bytes([ETX]), start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            raise HostStatusError(f"~HS answer has {len(lines)} of 3 lines")
        text = data[start + 1 : end].decode("ascii", "replace")
        lines.append([part.strip() for part in text.split(",")])
        pos = end + 1
    if len(lines[0]) < 12 or len(lines[1]) < 9:
        raise HostStatusError("~HS answer has too few fields")
    fields: dict[str, int] = {}
    for line, index, name in HS_FIELDS:
        try:
            fields[name] = int(lines[line][index])
        except ValueError:
            raise HostStatusError(f"~HS field {name} is not a number") from None
    return HostStatus(fields=fields)


def to_printer_status(status: HostStatus) -> PrinterStatus:
    """The generic :class:`PrinterStatus` for a parsed ``~HS`` answer."""
    faults = status.faults
    if faults:
        state, detail = faults[0].state, faults[0].message
        detail += f" ({', '.join(f.name for f in faults)})"
    elif status.busy_with_job:
        state = PrinterState.BUSY
        detail = (
            f"printing ({status['formats_in_buffer']} format(s) waiting, "
            f"{status['labels_remaining']} label(s) to go)"
        )
    else:
        state, detail = PrinterState.READY, "ready"
    return PrinterStatus(state=state, detail=detail)
