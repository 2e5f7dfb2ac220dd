"""ZPL thermal printers by URL: ``zpl+tcp://host[:9100]``, ``zpl+serial:///dev/ttyUSB0?baud=9600``.

Status is the ``~HS`` host status (:mod:`drivers.printers.zpl.status`). Before a job
the printer must be free of faults; after it, the job is *verified* when ``~HS``
first shows the job in the printer (formats in the buffer or labels remaining) and
then back to idle with no fault. If the printer was already idle at the first look
the job may simply have been quick — or never parsed — so that result is
``verified=False``, said so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from drivers.errors import BadDeviceURL, PrinterOffline
from drivers.printers.base import ManagedPrinter, PrinterStatus, PrintJob, SendOutcome
from drivers.printers.transport import SerialStream, SocketStream, Stream, connect_tcp
from drivers.printers.url import PrinterURL
from drivers.printers.zpl.graphics import image_to_zpl
from drivers.printers.zpl.status import (
    ETX,
    HOST_STATUS_REQUEST,
    HostStatus,
    HostStatusError,
    parse_host_status,
    to_printer_status,
)

__all__ = ["ZplPrinter", "open_zpl_printer"]


class ZplPrinter(ManagedPrinter):
    """A ZPL printer on TCP or serial; one stream per status read or job."""

    dpi: int

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
            return to_printer_status(self._ask(stream))
        finally:
            stream.close()

    def _payload(self, job: PrintJob) -> tuple[bytes, int, float | None]:
        if job.raw is not None:
            labels = max(1, job.raw.upper().count(b"^XZ")) * job.copies
            return job.raw * job.copies, labels, None
        data = b"".join(image_to_zpl(im, dpi=self.dpi, copies=job.copies) for im in job.images)
        first: Image.Image = job.images[0]
        return data, len(job.images) * job.copies, first.height / self.dpi * 25.4

    def _send(self, job: PrintJob) -> SendOutcome:
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

    def _confirm(self, stream: Stream, *, labels: int, length: float | None) -> SendOutcome:
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
                return SendOutcome(
                    verified=verified,
                    detail=(
                        "printer took the job and is idle again (~HS)"
                        if verified
                        else "sent; the printer was idle at once, so it cannot confirm"
                    ),
                    labels=labels,
                    label_length_mm=length,
                    status=to_printer_status(status),
                )
            first = False
            if time.monotonic() >= deadline:
                return SendOutcome(
                    verified=False,
                    detail=f"sent, but still printing after {self.confirm_timeout:g} s",
                    labels=labels,
                    label_length_mm=length,
                    status=to_printer_status(status),
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
