"""Brother QL printers by URL, with status read before and confirmed after every job.

* ``ql+tcp://host[:9100]?model=QL-820NWB&label=62&snmp_port=161&community=public`` —
  raster to the raw port; the printer never answers there, so status comes from SNMP
  (Brother's status-block OID and the Printer-MIB page counter). A job is
  *verified* when the phase is back to "waiting" with no error and the page counter
  advanced by the job's pages.
* ``ql+usb://0x04f9:0x209d[/serial]`` (pyusb) and ``ql+file:///dev/usb/lp0`` — the
  status request ESC i S, then the printer's automatic replies; a job is *verified*
  when one "printing completed" arrived per page.

When confirmation does not come within ``confirm_timeout`` the job is reported with
``verified=False`` (it was sent and may well have printed, so it is kept in the
ledger and a retry does not print it twice); an error reported meanwhile raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from drivers.errors import BadDeviceURL, PrinterBusy, PrinterError, PrinterOffline
from drivers.printers.base import (
    ManagedPrinter,
    PrinterState,
    PrinterStatus,
    PrintJob,
    SendOutcome,
)
from drivers.printers.ql.raster import QL_DPI, encode_raster, label_spec, model_names
from drivers.printers.ql.status import (
    INVALIDATE,
    STATUS_REQUEST,
    QLStatus,
    StatusBlockError,
    StatusType,
    check_ready,
    parse_status,
    split_status_blocks,
    to_printer_status,
)
from drivers.printers.snmp import SnmpError, SnmpTimeout, snmp_get
from drivers.printers.transport import SocketStream, Stream, connect_tcp
from drivers.printers.url import PrinterURL

__all__ = [
    "BROTHER_STATUS_OID",
    "PAGE_COUNT_OID",
    "QLNetworkPrinter",
    "QLPrinterBase",
    "QLStreamPrinter",
    "count_pages",
    "open_ql_printer",
    "stream_printer",
]

#: Brother's private MIB: the same 32-byte status block as over USB.
BROTHER_STATUS_OID = "1.3.6.1.4.1.2435.3.3.9.1.6.1.0"
#: Printer-MIB prtMarkerLifeCount (pages printed in the printer's life).
PAGE_COUNT_OID = "1.3.6.1.2.1.43.10.2.1.4.1.1"

COMMON_OPTIONS = frozenset(
    {
        "model",
        "label",
        "red",
        "cut",
        "compress",
        "timeout",
        "confirm_timeout",
        "poll_interval",
        "ledger",
        "roll_labels",
        "roll_length_mm",
    }
)
NETWORK_OPTIONS = COMMON_OPTIONS | {"snmp_port", "community", "snmp_version"}


def count_pages(raster: bytes) -> int:
    """Pages in a raster stream: its print commands (0x0C / 0x1A), found by opcode."""
    from brother_ql.reader import OPCODES, chunker

    names = {op: spec[0] for op, spec in OPCODES.items()}
    pages = 0
    for instruction in chunker(raster):
        for opcode, name in names.items():
            if name == "print" and instruction == opcode:
                pages += 1
    return pages


class QLPrinterBase(ManagedPrinter):
    """What both QL transports share: encoding, media check, timeouts."""

    def __init__(
        self,
        *,
        url: str,
        model: str = "QL-820NWB",
        label: str = "62",
        red: bool = False,
        cut: bool = True,
        compress: bool = False,
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
        if model not in model_names():
            raise BadDeviceURL(f"{url}: unknown Brother QL model {model!r}")
        self.model = model
        self.label = label_spec(label)
        self.dpi = QL_DPI
        self.label_key = self.label.identifier
        self.red = red
        self.cut = cut
        self.compress = compress
        self.timeout = timeout
        self.confirm_timeout = confirm_timeout
        self.poll_interval = poll_interval

    def _encode(self, job: PrintJob) -> tuple[bytes, int, float | None]:
        """(bytes to send, pages, label length in mm when known)."""
        if job.raw is not None:
            data = job.raw * job.copies
            return data, max(1, count_pages(data)), self._die_cut_length()
        images = list(job.images) * job.copies
        data = encode_raster(
            images,
            model=self.model,
            label=self.label.identifier,
            red=self.red,
            cut=self.cut,
            compress=self.compress,
        )
        length = self._die_cut_length() or images[0].height / QL_DPI * 25.4
        return data, len(images), length

    def _die_cut_length(self) -> float | None:
        return float(self.label.length_mm) if self.label.length_mm else None


class QLNetworkPrinter(QLPrinterBase):
    """A networked Brother QL: raster over TCP, status and page count over SNMP."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 9100,
        snmp_port: int = 161,
        community: str = "public",
        snmp_version: int = 1,
        url: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(url=url or f"ql+tcp://{host}:{port}", **kwargs)  # type: ignore[arg-type]
        self.host = host
        self.port = port
        self.snmp_port = snmp_port
        self.community = community
        self.snmp_version = snmp_version

    def _query(self) -> tuple[QLStatus, int | None]:
        """Status block and page counter, or ``PrinterOffline``."""
        try:
            values = snmp_get(
                self.host,
                [BROTHER_STATUS_OID, PAGE_COUNT_OID],
                port=self.snmp_port,
                community=self.community,
                version=self.snmp_version,
                timeout=min(self.timeout, 2.0),
                retries=1,
            )
        except (SnmpTimeout, ConnectionRefusedError):
            raise PrinterOffline(
                f"Printer at {self.host} does not answer — check it is switched on and "
                "connected to the network"
            ) from None
        except (SnmpError, OSError) as exc:
            raise PrinterOffline(
                f"Printer at {self.host} cannot report its state ({exc})"
            ) from None
        block = values.get(BROTHER_STATUS_OID)
        if not isinstance(block, bytes):
            raise PrinterOffline(
                f"Printer at {self.host} does not report its state — enable SNMP on the printer"
            )
        try:
            status = parse_status(block)
        except StatusBlockError as exc:
            raise PrinterOffline(
                f"Printer at {self.host} sent an unreadable state ({exc})"
            ) from None
        count = values.get(PAGE_COUNT_OID)
        return status, count if isinstance(count, int) else None

    def _page_counter(self) -> int | None:
        try:
            return self._query()[1]
        except PrinterOffline:
            return None

    def _read_status(self) -> PrinterStatus:
        status, count = self._query()
        self._check_print_port()
        return to_printer_status(status, expected=self.label.size, page_count=count)

    def _check_print_port(self) -> None:
        """SNMP answers from the printer's network card even when its print port does
        not take jobs (another host holds it, a firewall, a wrong port in the URL):
        ready means both answer. The connection is closed without sending a byte."""
        try:
            connect_tcp(self.host, self.port, timeout=min(self.timeout, 2.0)).close()
        except PrinterOffline:
            raise PrinterOffline(
                f"Printer at {self.host} answers but does not take print jobs on port "
                f"{self.port} — check the port in the printer URL and that no other "
                "computer is printing to it"
            ) from None

    def _wait_idle(self) -> tuple[QLStatus, int | None]:
        """Status once the printer is not printing (a previous job may still run)."""
        deadline = time.monotonic() + self.confirm_timeout
        while True:
            status, count = self._query()
            if not status.phase_printing or status.errors:
                return status, count
            if time.monotonic() >= deadline:
                raise PrinterBusy("Printer is still printing another job — wait a moment")
            time.sleep(self.poll_interval)

    def _send(self, job: PrintJob) -> SendOutcome:
        data, pages, length = self._encode(job)
        status, before = self._wait_idle()
        check_ready(status, expected=self.label.size)
        stream = connect_tcp(self.host, self.port, timeout=self.timeout)
        try:
            stream.write(data)
            # The half-close tells the printer the job is complete.
            stream.finish_sending()
        finally:
            stream.close()
        return self._confirm(pages=pages, before=before, length=length)

    def _confirm(self, *, pages: int, before: int | None, length: float | None) -> SendOutcome:
        deadline = time.monotonic() + self.confirm_timeout
        while True:
            time.sleep(self.poll_interval)
            status, count = self._query()
            if status.errors:
                # The printer stopped on this job: raise what the packer must fix.
                check_ready(status, expected=None)
            advanced = before is not None and count is not None and count >= before + pages
            if advanced and not status.phase_printing:
                final = to_printer_status(status, expected=self.label.size, page_count=count)
                return SendOutcome(
                    verified=True,
                    detail=f"printer confirmed {pages} page(s) (page counter {count})",
                    labels=pages,
                    label_length_mm=length,
                    status=final,
                )
            if time.monotonic() >= deadline:
                final = to_printer_status(status, expected=self.label.size, page_count=count)
                why = (
                    "the printer has no page counter"
                    if before is None or count is None
                    else f"page counter {count}, expected {before + pages}"
                )
                return SendOutcome(
                    verified=False,
                    detail=f"sent, but not confirmed within {self.confirm_timeout:g} s ({why})",
                    labels=pages,
                    label_length_mm=length,
                    status=final,
                )


class QLStreamPrinter(QLPrinterBase):
    """A Brother QL on a two-way byte stream: USB (pyusb), ``/dev/usb/lp0``, a fake."""

    def __init__(self, *, open_stream: Callable[[], Stream], url: str, **kwargs: object) -> None:
        super().__init__(url=url, **kwargs)  # type: ignore[arg-type]
        self._open_stream = open_stream
        self._stream: Stream | None = None
        self._buffer = bytearray()

    def _io(self) -> Stream:
        if self._stream is None:
            self._stream = self._open_stream()
            self._buffer.clear()
        return self._stream

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = None

    def _next_block(self, *, deadline: float) -> QLStatus | None:
        """The next status block from the printer, or None at ``deadline``."""
        while True:
            blocks = split_status_blocks(self._buffer)
            if blocks:
                # Put back all but the first: split took them off the buffer.
                for extra in reversed(blocks[1:]):
                    self._buffer[:0] = extra.raw
                return blocks[0]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self._buffer += self._io().read(64, timeout=min(left, 0.5))
            except PrinterOffline:
                self._drop()
                raise

    def _request(self) -> QLStatus:
        try:
            stream = self._io()
            stream.drain()
            self._buffer.clear()
            stream.write(INVALIDATE + STATUS_REQUEST)
        except PrinterOffline:
            self._drop()
            raise
        deadline = time.monotonic() + self.timeout
        while True:
            block = self._next_block(deadline=deadline)
            if block is None:
                self._drop()
                raise PrinterOffline(
                    f"Printer on {self.url} does not answer — check the USB cable and power"
                )
            if block.status_type == StatusType.REPLY:
                return block

    def _read_status(self) -> PrinterStatus:
        return to_printer_status(self._request(), expected=self.label.size)

    def _send(self, job: PrintJob) -> SendOutcome:
        data, pages, length = self._encode(job)
        check_ready(self._request(), expected=self.label.size)
        try:
            self._io().write(data)
        except PrinterOffline:
            self._drop()
            raise
        completed = 0
        last: QLStatus | None = None
        deadline = time.monotonic() + self.confirm_timeout
        while completed < pages:
            block = self._next_block(deadline=deadline)
            if block is None:
                status = (
                    to_printer_status(last, expected=self.label.size)
                    if last is not None
                    else PrinterStatus(state=PrinterState.BUSY, detail="no answer after the job")
                )
                return SendOutcome(
                    verified=False,
                    detail=(
                        f"sent, but only {completed} of {pages} page(s) confirmed within "
                        f"{self.confirm_timeout:g} s"
                    ),
                    labels=pages,
                    label_length_mm=length,
                    status=status,
                )
            last = block
            if block.status_type == StatusType.ERROR_OCCURRED or block.errors:
                check_ready(block, expected=None)
                raise PrinterError("Printer reported an error — check the printer")
            if block.status_type == StatusType.PRINTING_COMPLETED:
                completed += 1
        assert last is not None
        # The last page's completion arrives while the phase still says "printing";
        # the printer follows with a phase change back to waiting — report that one.
        settle = time.monotonic() + min(1.0, self.timeout)
        while last.phase_printing and not last.errors:
            block = self._next_block(deadline=settle)
            if block is None:
                break
            last = block
        return SendOutcome(
            verified=True,
            detail=f"printer confirmed {pages} page(s) (printing completed)",
            labels=pages,
            label_length_mm=length,
            status=to_printer_status(last, expected=None),
        )

    def close(self) -> None:
        """Close the stream."""
        self._drop()


def _common_kwargs(url: PrinterURL) -> dict[str, object]:
    return {
        "model": url.text("model", "QL-820NWB"),
        "label": url.text("label", "62"),
        "red": url.flag("red", False),
        "cut": url.flag("cut", True),
        "compress": url.flag("compress", False),
        "timeout": url.number("timeout", 5.0),
        "confirm_timeout": url.number("confirm_timeout", 30.0),
        "poll_interval": url.number("poll_interval", 0.25),
        "ledger_path": url.path_option("ledger"),
        "roll_labels": url.integer("roll_labels", None, minimum=1),
        "roll_length_mm": url.number("roll_length_mm", 0) or None,
    }


_SNMP_VERSIONS = {"1": 0, "2c": 1, "v1": 0, "v2c": 1}


def open_ql_printer(url: PrinterURL) -> QLPrinterBase:
    """Build the QL printer for a ``ql+tcp``/``ql+usb``/``ql+file`` URL."""
    if url.scheme == "ql+tcp":
        url.check_options(NETWORK_OPTIONS)
        host, port = url.tcp_address(9100)
        version = _SNMP_VERSIONS.get(url.text("snmp_version", "2c").lower())
        if version is None:
            raise BadDeviceURL(f"{url.url}: option snmp_version must be 1 or 2c")
        return QLNetworkPrinter(
            host=host,
            port=port,
            snmp_port=url.integer("snmp_port", 161, minimum=1) or 161,
            community=url.text("community", "public"),
            snmp_version=version,
            url=url.url,
            **_common_kwargs(url),
        )
    url.check_options(COMMON_OPTIONS)
    if url.scheme == "ql+file":
        if not url.path:
            raise BadDeviceURL(f"{url.url}: needs a device path, ql+file:///dev/usb/lp0")
        from drivers.printers.transport import DeviceFileStream

        path = url.path

        def open_file() -> Stream:
            return DeviceFileStream(path)

        return QLStreamPrinter(open_stream=open_file, url=url.url, **_common_kwargs(url))
    from drivers.printers.usb import UsbStream, parse_usb_address

    vendor, product, serial = parse_usb_address(url.netloc, url.path)

    def open_usb() -> Stream:
        return UsbStream(vendor=vendor, product=product, serial=serial)

    return QLStreamPrinter(open_stream=open_usb, url=url.url, **_common_kwargs(url))


def stream_printer(stream: Stream | SocketStream, **kwargs: object) -> QLStreamPrinter:
    """A :class:`QLStreamPrinter` on an already open stream (the fake USB QL, tests)."""
    return QLStreamPrinter(open_stream=lambda: stream, url=f"ql+stream://{stream.where}", **kwargs)
