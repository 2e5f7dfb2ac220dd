"""ZPL thermal printers by URL: ``zpl+tcp://host[:9100]``, ``zpl+serial:///dev/ttyUSB0?baud=9600``.

Status is the ``~HS`` host status: three lines, each framed STX … ETX CR LF, of
comma-separated fields (:data:`HS_FIELDS`). Before a job the printer must be free
of faults; after it, the job is *verified* when ``~HS`` first shows the job in the
printer (formats in the buffer or labels remaining) and then back to idle with no
fault. If the printer was already idle at the first look the job may simply have
been quick — or never parsed — so that result is ``verified=False``, said so.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from drivers.errors import (
    BadDeviceURL,
    CoverOpen,
    NoMedia,
    PrinterBusy,
    PrinterError,
    PrinterOffline,
)
from drivers.printers.base import PrinterState, PrinterStatus, PrintJob
from drivers.printers.ledger import ManagedPrinter, Outcome
from drivers.printers.transport import SerialStream, SocketStream, Stream, connect_tcp
from drivers.printers.url import PrinterURL
from drivers.printers.zpl import image_to_zpl

__all__ = [
    "HOST_STATUS_REQUEST",
    "HS_FIELDS",
    "HostStatus",
    "HostStatusError",
    "ZplPrinter",
    "open_zpl_printer",
    "parse_host_status",
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


def _words(status: HostStatus) -> PrinterStatus:
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


class ZplPrinter(ManagedPrinter):
    """A ZPL printer on TCP or serial; one stream per status read or job."""

    def __init__(
        self,
        *,
        url: str,
        open_stream: Callable[[], Stream],
        dpi: int = 203,
        timeout: float = 5.0,
        confirm_timeout: float = 30.0,
        poll_interval: float = 0.25,
        ledger_path: Path | None = None,
        roll_labels: int | None = None,
        roll_length_mm: float | None = None,
    ) -> None:
        super().__init__(
            url=url,
            ledger_path=ledger_path,
            roll_labels=roll_labels,
            roll_length_mm=roll_length_mm,
        )
        self._open_stream = open_stream
        self.dpi = dpi
        self.timeout = timeout
        self.confirm_timeout = confirm_timeout
        self.poll_interval = poll_interval

    def _ask(self, stream: Stream) -> HostStatus:
        stream.drain()
        stream.write(HOST_STATUS_REQUEST)
        deadline = time.monotonic() + self.timeout
        answer = bytearray()
        while answer.count(ETX) < 3:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PrinterOffline(
                    f"Printer on {self.url} does not answer status requests — check it is on"
                )
            answer += stream.read(4096, timeout=left)
        try:
            return parse_host_status(bytes(answer))
        except HostStatusError as exc:
            raise PrinterOffline(
                f"Printer on {self.url} sent an unreadable status ({exc})"
            ) from None

    def _read_status(self) -> PrinterStatus:
        stream = self._open_stream()
        try:
            return _words(self._ask(stream))
        finally:
            stream.close()

    def _payload(self, job: PrintJob) -> tuple[bytes, int, float | None]:
        if job.raw is not None:
            labels = max(1, job.raw.upper().count(b"^XZ")) * job.copies
            return job.raw * job.copies, labels, None
        data = b"".join(image_to_zpl(im, dpi=self.dpi, copies=job.copies) for im in job.images)
        first: Image.Image = job.images[0]
        return data, len(job.images) * job.copies, first.height / self.dpi * 25.4

    def _send(self, job: PrintJob) -> Outcome:
        data, labels, length = self._payload(job)
        stream = self._open_stream()
        try:
            before = self._ask(stream)
            if before.faults:
                fault = before.faults[0]
                raise fault.error(fault.message)
            stream.write(data)
            return self._confirm(stream, labels=labels, length=length)
        finally:
            stream.close()

    def _confirm(self, stream: Stream, *, labels: int, length: float | None) -> Outcome:
        deadline = time.monotonic() + self.confirm_timeout
        seen_busy = False
        first = True
        while True:
            status = self._ask(stream)
            if status.faults:
                fault = status.faults[0]
                raise fault.error(fault.message)
            if status.busy_with_job:
                seen_busy = True
            elif seen_busy or first:
                verified = seen_busy
                return Outcome(
                    verified=verified,
                    detail=(
                        "printer took the job and is idle again (~HS)"
                        if verified
                        else "sent; the printer was idle at once, so it cannot confirm"
                    ),
                    labels=labels,
                    label_length_mm=length,
                    status=_words(status),
                )
            first = False
            if time.monotonic() >= deadline:
                return Outcome(
                    verified=False,
                    detail=f"sent, but still printing after {self.confirm_timeout:g} s",
                    labels=labels,
                    label_length_mm=length,
                    status=_words(status),
                )
            time.sleep(self.poll_interval)


OPTIONS = frozenset(
    {
        "dpi",
        "timeout",
        "confirm_timeout",
        "poll_interval",
        "ledger",
        "roll_labels",
        "roll_length_mm",
    }
)


def open_zpl_printer(url: PrinterURL) -> ZplPrinter:
    """Build a :class:`ZplPrinter` from a ``zpl+tcp`` or ``zpl+serial`` URL."""
    open_stream: Callable[[], Stream]
    timeout = url.number("timeout", 5.0)
    if url.scheme == "zpl+tcp":
        url.check_options(OPTIONS)
        host, port = url.tcp_address(9100)

        def open_tcp() -> SocketStream:
            return connect_tcp(host, port, timeout=timeout)

        open_stream = open_tcp
    else:
        url.check_options(OPTIONS | {"baud"})
        if not url.path:
            raise BadDeviceURL(f"{url.url}: needs a device path, zpl+serial:///dev/ttyUSB0")
        baud = url.integer("baud", 9600, minimum=300) or 9600
        path = url.path

        def open_serial() -> SerialStream:
            return SerialStream(path, baud=baud)

        open_stream = open_serial
    dpi = url.integer("dpi", 203, minimum=100) or 203
    return ZplPrinter(
        url=url.url,
        open_stream=open_stream,
        dpi=dpi,
        timeout=timeout,
        confirm_timeout=url.number("confirm_timeout", 30.0),
        poll_interval=url.number("poll_interval", 0.25),
        ledger_path=url.path_option("ledger"),
        roll_labels=url.integer("roll_labels", None, minimum=1),
        roll_length_mm=url.number("roll_length_mm", 0) or None,
    )
