"""Fake Brother QL printers that behave like the real ones, shipped for tests and demos.

* :class:`FakeQLPrinter` — a networked QL: raster on a TCP port (silent, like the
  real raw port 9100), the 32-byte status block and the page counter over SNMP on a
  UDP port answering real BER GET requests, an optional JSON control port.
* :class:`FakeQLUsb` — a USB-style QL on a byte stream (a socketpair, or a
  pseudo-terminal for ``ql+file://``): answers ESC i S and sends the automatic
  "phase change" / "printing completed" / "error occurred" replies.

Both keep every job they received (raw bytes, and pages decoded back to images, saved
as PNG when ``out_dir`` is given) and can be switched into faults at run time:
``no_media``, ``cover_open``, ``offline``, ``slow`` (seconds per page), ``media``
(which roll is loaded, e.g. ``"29"`` for a wrong one), ``errors`` (any error names
from :data:`drivers.printers.ql.status.ERROR_BITS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import socket
import struct
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from drivers.errors import BadDeviceURL, DriverError
from drivers.fakes.control import ControlServer
from drivers.fakes.listen import output_folder, tcp_server, udp_socket
from drivers.printers.ql.raster import QLLabel, label_spec, model_names
from drivers.printers.ql.status import MODEL_CODES, MediaKind, StatusType, build_status_block
from drivers.printers.snmp import (
    NO_SUCH_OBJECT,
    Counter32,
    SnmpError,
    Value,
    decode_get_request,
    encode_response,
)
from drivers.printers.transport import SocketStream

__all__ = ["FakeQLPrinter", "FakeQLUsb", "FakeRasterJob", "QLEngine", "decode_pages"]

BROTHER_STATUS_OID = "1.3.6.1.4.1.2435.3.3.9.1.6.1.0"
PAGE_COUNT_OID = "1.3.6.1.2.1.43.10.2.1.4.1.1"

# Instruction lengths after the opcode (brother_ql.reader's table, incremental here).
_FIXED: dict[bytes, tuple[str, int]] = {
    b"\x1b\x69\x55\x77\x01": ("amedia", 127),
    b"\x1b\x69\x55\x4a": ("jobid", 14),
    b"\x1b\x69\x58\x47": ("request_config", 0),
    b"\x1b\x69\x61": ("mode setting", 1),
    b"\x1b\x69\x21": ("automatic status", 1),
    b"\x1b\x69\x7a": ("media/quality", 10),
    b"\x1b\x69\x4d": ("various", 1),
    b"\x1b\x69\x41": ("cut-every", 1),
    b"\x1b\x69\x4b": ("expanded", 1),
    b"\x1b\x69\x64": ("margins", 2),
    b"\x1b\x69\x53": ("status request", 0),
    b"\x1b\x40": ("init", 0),
    b"\x4d": ("compression", 1),
    b"\x0c": ("print", 0),
    b"\x1a": ("print", 0),
    b"\x00": ("preamble", 0),
}
_OPCODES = sorted(_FIXED, key=len, reverse=True)


def _unpack_bits(data: bytes) -> bytes:
    """TIFF PackBits, as the QL raster uses it."""
    out = bytearray()
    i = 0
    while i < len(data):
        n = data[i]
        if n > 127:
            out += bytes([data[i + 1]]) * (257 - n) if i + 1 < len(data) else b""
            i += 2
        else:
            out += data[i + 1 : i + 2 + n]
            i += 2 + n
    return bytes(out)


def _rows_to_image(rows: list[bytes], red_rows: list[bytes]) -> Image.Image:
    width = max(len(r) for r in rows) * 8
    data = b"".join(r.ljust(width // 8, b"\x00") for r in rows)
    black = Image.frombytes("1", (width, len(rows)), bytes(b ^ 0xFF for b in data))
    black = black.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if not red_rows:
        return black
    red_data = b"".join(r.ljust(width // 8, b"\x00") for r in red_rows)
    red = Image.frombytes("1", (width, len(red_rows)), red_data)
    red = red.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = black.convert("RGB")
    out.paste((255, 0, 0), mask=red.crop((0, 0, width, len(rows))))
    return out


@dataclasses.dataclass
class FakeRasterJob:
    """One job as the fake received it."""

    number: int
    data: bytearray = dataclasses.field(default_factory=bytearray)
    pages: list[Image.Image] = dataclasses.field(default_factory=list)
    printed: int = 0
    failed: bool = False


class _RasterParser:
    """Incremental raster instruction parser: bytes in, events out."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.compression = False
        self.rows: list[bytes] = []
        self.red_rows: list[bytes] = []

    def feed(self, data: bytes) -> Iterator[tuple[str, Any]]:
        self.buffer += data
        while self.buffer:
            buf = self.buffer
            if buf[0] in (0x67, 0x77):  # 'g' / 'w' raster row: op, flag, n, n bytes
                if len(buf) < 3 or len(buf) < 3 + buf[2]:
                    return
                payload = bytes(buf[3 : 3 + buf[2]])
                row = _unpack_bits(payload) if self.compression else payload
                if buf[0] == 0x77 and buf[1] == 0x02:
                    self.red_rows.append(row)
                else:
                    self.rows.append(row)
                del buf[: 3 + buf[2]]
                continue
            for opcode in _OPCODES:
                if buf.startswith(opcode):
                    name, extra = _FIXED[opcode]
                    if len(buf) < len(opcode) + extra:
                        return
                    payload = bytes(buf[len(opcode) : len(opcode) + extra])
                    del buf[: len(opcode) + extra]
                    if name == "compression":
                        self.compression = payload[0] == 0x02
                    elif name == "print":
                        rows, red = self.rows, self.red_rows
                        self.rows, self.red_rows = [], []
                        yield "page", (_rows_to_image(rows, red) if rows else None)
                    elif name in ("init", "status request", "preamble"):
                        yield name, None
                    break
            else:
                if any(op.startswith(bytes(buf)) for op in _OPCODES):
                    return  # an opcode cut in half; wait for the rest
                del buf[:1]  # unknown byte: skip, as the printer does


def decode_pages(raster: bytes) -> list[Image.Image]:
    """Every page in a raster stream, back as images (black, or black and red)."""
    parser = _RasterParser()
    return [page for name, page in parser.feed(raster) if name == "page" and page is not None]


Reply = Callable[[bytes], None]


class QLEngine:
    """The printer's brain, shared by the network and USB fakes."""

    settable = ("no_media", "cover_open", "offline", "slow", "media", "errors")

    def __init__(
        self,
        *,
        model: str = "QL-820NWB",
        label: str = "62",
        out_dir: Path | None = None,
        slow: float = 0.05,
        page_count: int = 1000,
    ) -> None:
        if model not in model_names():
            # The fake must not be a printer that every open_printer would refuse.
            raise BadDeviceURL(
                f"unknown Brother QL model {model!r} (known: {', '.join(model_names())})"
            )
        codes = {name: code for code, name in MODEL_CODES.items()}
        self.model_code = codes.get(model, 0x41)
        self.media: QLLabel | None = label_spec(label)
        self.no_media = False
        self.cover_open = False
        self.offline = False
        self.slow = slow
        self.errors: tuple[str, ...] = ()
        self.page_count = page_count
        self.printing = False
        self.jobs: list[FakeRasterJob] = []
        self.out_dir = out_dir
        self.reply: Reply | None = None
        self._lock = threading.RLock()
        self._queue: queue.Queue[tuple[FakeRasterJob, int] | None] = queue.Queue()
        self._current: FakeRasterJob | None = None
        self._pending = bytearray()
        self._parser = _RasterParser()
        self._worker = threading.Thread(target=self._print_pages, name="fake-ql", daemon=True)
        self._worker.start()
        if out_dir is not None:
            output_folder(out_dir)

    # --- state ----------------------------------------------------------------
    def set(self, **changes: Any) -> None:
        """Change faults/settings at run time (names in :attr:`settable`)."""
        with self._lock:
            for name, value in changes.items():
                if name not in self.settable:
                    raise ValueError(f"unknown setting {name!r} (known: {self.settable})")
                if name == "media":
                    self.media = label_spec(str(value)) if value else None
                elif name == "slow":
                    self.slow = float(value)
                elif name == "errors":
                    self.errors = tuple(value)
                else:
                    setattr(self, name, bool(value))

    def _error_names(self) -> tuple[str, ...]:
        names = list(self.errors)
        if self.cover_open:
            names.append("cover open")
        if self.no_media or self.media is None:
            names.append("no media")
        return tuple(names)

    def status_block(self, status_type: int = StatusType.REPLY) -> bytes:
        """The 32-byte block as the printer would send it now."""
        with self._lock:
            loaded = self.media is not None and not self.no_media
            media = self.media
            return build_status_block(
                model_code=self.model_code,
                errors=self._error_names(),
                media_width_mm=media.width_mm if loaded and media else 0,
                media_length_mm=media.length_mm if loaded and media else 0,
                media_kind=(
                    MediaKind.NONE
                    if not loaded or media is None
                    else MediaKind.ENDLESS
                    if media.endless
                    else MediaKind.DIE_CUT
                ),
                status_type=status_type,
                printing=self.printing,
                notification=0x01 if self.cover_open else 0,
            )

    def state(self) -> dict[str, Any]:
        """Faults and counters, for the control channel."""
        with self._lock:
            return {
                "no_media": self.no_media,
                "cover_open": self.cover_open,
                "offline": self.offline,
                "slow": self.slow,
                "media": self.media.identifier if self.media else None,
                "errors": list(self.errors),
                "printing": self.printing,
                "page_count": self.page_count,
                "jobs": len(self.jobs),
                "pages": sum(j.printed for j in self.jobs),
            }

    def _send(self, status_type: int) -> None:
        reply = self.reply
        if reply is not None:
            with contextlib.suppress(OSError):
                reply(self.status_block(status_type))

    # --- data in ----------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes from the host: parse instructions, answer status, queue pages."""
        with self._lock:
            if self._current is None:
                self._pending += data
            else:
                self._current.data += data
            for name, page in self._parser.feed(data):
                if name == "status request":
                    self._send(StatusType.REPLY)
                elif name == "init" and self._current is not None and self._current.pages:
                    self.end_job()
                elif name == "page":
                    self._page(page)

    def _job(self) -> FakeRasterJob:
        if self._current is None:
            self._current = FakeRasterJob(number=len(self.jobs) + 1, data=self._pending)
            self._pending = bytearray()
            self.jobs.append(self._current)
        return self._current

    def _page(self, image: Image.Image | None) -> None:
        job = self._job()
        if image is not None:
            job.pages.append(image)
            if self.out_dir is not None:
                image.save(self.out_dir / f"job{job.number:04d}-{len(job.pages)}.png")
        if self._error_names():
            job.failed = True
            self._send(StatusType.ERROR_OCCURRED)
            return
        self.printing = True
        self._queue.put((job, len(job.pages)))

    def end_job(self) -> None:
        """The host finished a job (connection closed, or a new job began)."""
        with self._lock:
            job, self._current = self._current, None
            self._pending = bytearray()
            if job is not None and self.out_dir is not None:
                (self.out_dir / f"job{job.number:04d}.bin").write_bytes(bytes(job.data))

    # --- the print engine -------------------------------------------------------
    def _print_pages(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, _ = item
            self._send(StatusType.PHASE_CHANGE)
            deadline = time.monotonic() + self.slow
            failed = False
            while time.monotonic() < deadline:
                with self._lock:
                    failed = bool(self._error_names())
                if failed:
                    break
                time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
            with self._lock:
                failed = failed or bool(self._error_names())
                if failed:
                    job.failed = True
                    self._drain_queue()
                    self.printing = False
                    self._send(StatusType.ERROR_OCCURRED)
                    continue
                self.page_count += 1
                job.printed += 1
                self._send(StatusType.PRINTING_COMPLETED)
                if self._queue.empty():
                    self.printing = False
                    self._send(StatusType.PHASE_CHANGE)

    def _drain_queue(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued page printed (or failed); True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self.printing and self._queue.empty():
                    return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        """Stop the print engine thread."""
        self._queue.put(None)


class FakeQLPrinter:
    """A networked Brother QL: TCP raster port, SNMP agent, optional control port.

    >>> with FakeQLPrinter(out_dir=Path("/tmp/fake")) as fake:   # doctest: +SKIP
    ...     printer = open_printer(fake.url)
    ...     fake.set(no_media=True)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        snmp_port: int = 0,
        control_port: int | None = None,
        out_dir: Path | None = None,
        model: str = "QL-820NWB",
        label: str = "62",
        community: str = "public",
        slow: float = 0.05,
    ) -> None:
        self.host = host
        self.model = model
        self.label = label
        self.community = community
        self.engine = QLEngine(model=model, label=label, out_dir=out_dir, slow=slow)
        self._tcp = tcp_server(host, port, what="print jobs")
        self.port: int = self._tcp.getsockname()[1]
        self._control: ControlServer | None = None
        try:
            self._udp = udp_socket(host, snmp_port, what="SNMP requests")
            if control_port is not None:
                self._control = ControlServer(
                    handler=self._on_control, host=host, port=control_port
                )
        except DriverError:
            self._tcp.close()
            raise
        self.snmp_port: int = self._udp.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._stopped = False
        threading.Thread(target=self._accept, name="fake-ql-tcp", daemon=True).start()
        threading.Thread(target=self._snmp, name="fake-ql-snmp", daemon=True).start()

    @property
    def url(self) -> str:
        """The ``ql+tcp://`` URL that reaches this fake."""
        return (
            f"ql+tcp://{self.host}:{self.port}?model={self.model}&label={self.label}"
            f"&snmp_port={self.snmp_port}&community={self.community}"
        )

    @property
    def control_port(self) -> int | None:
        """The JSON control port, when started with one."""
        return self._control.port if self._control else None

    @property
    def jobs(self) -> list[FakeRasterJob]:
        """Every job received (including failed ones)."""
        return self.engine.jobs

    @property
    def page_count(self) -> int:
        """The printer's life page counter."""
        return self.engine.page_count

    def set(self, **changes: Any) -> None:
        """Switch faults at run time: ``no_media``, ``cover_open``, ``offline``, ``slow``..."""
        self.engine.set(**changes)

    def _on_control(self, request: dict[str, Any]) -> dict[str, Any]:
        if "set" in request:
            self.engine.set(**request["set"])
        return self.engine.state()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            if self.engine.offline:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            self._conns.add(conn)
            threading.Thread(
                target=self._receive, args=(conn,), name="fake-ql-job", daemon=True
            ).start()

    def _receive(self, conn: socket.socket) -> None:
        # The real raw port never answers: bytes in, nothing out.
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                self.engine.feed(data)
        except OSError:
            pass
        finally:
            self.engine.end_job()
            self._conns.discard(conn)
            conn.close()

    def _snmp(self) -> None:
        while True:
            try:
                packet, peer = self._udp.recvfrom(65535)
            except OSError:
                return
            if self.engine.offline:
                continue
            try:
                request = decode_get_request(packet)
            except SnmpError:
                continue
            if request.community != self.community:
                continue  # real agents stay silent on a wrong community
            bindings: list[tuple[str, Value]] = []
            for oid in request.oids:
                if oid == BROTHER_STATUS_OID:
                    bindings.append((oid, self.engine.status_block()))
                elif oid == PAGE_COUNT_OID:
                    bindings.append((oid, Counter32(self.engine.page_count)))
                else:
                    bindings.append((oid, NO_SUCH_OBJECT))
            answer = encode_response(
                version=request.version,
                community=request.community,
                request_id=request.request_id,
                bindings=bindings,
            )
            with contextlib.suppress(OSError):
                self._udp.sendto(answer, peer)

    def stop(self) -> None:
        """Switch the printer off: close every socket (a client mid-job sees it go)."""
        if self._stopped:
            return
        self._stopped = True
        for sock in (self._tcp, self._udp, *list(self._conns)):
            with contextlib.suppress(OSError):
                sock.close()
        if self._control is not None:
            self._control.close()
        self.engine.stop()

    def __enter__(self) -> FakeQLPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeQLUsb:
    """A USB-style QL on a byte stream: a socketpair (``stream``) or a pty (``path``).

    ``FakeQLUsb()`` gives :attr:`stream`, a :class:`SocketStream` for
    :func:`drivers.printers.ql.printer.stream_printer`. ``FakeQLUsb(pty=True)`` gives
    :attr:`path`, a raw pseudo-terminal for ``ql+file://PATH`` (the ``/dev/usb/lp0``
    code path). :meth:`unplug` makes the device vanish.
    """

    def __init__(
        self,
        *,
        pty: bool = False,
        out_dir: Path | None = None,
        model: str = "QL-820NWB",
        label: str = "62",
        slow: float = 0.05,
    ) -> None:
        self.engine = QLEngine(model=model, label=label, out_dir=out_dir, slow=slow)
        self.path: str | None = None
        self.stream: SocketStream | None = None
        self._slave: int | None = None
        if pty:
            master, slave = os.openpty()
            tty.setraw(slave)
            self._fd = master
            self._slave = slave
            self.path = os.ttyname(slave)
        else:
            mine, theirs = socket.socketpair()
            self._sock = mine
            self._fd = mine.fileno()
            self.stream = SocketStream(theirs, where="fake USB QL")
        self._write_lock = threading.Lock()
        self.engine.reply = self._write
        self._unplugged = False
        threading.Thread(target=self._read, name="fake-ql-usb", daemon=True).start()

    @property
    def jobs(self) -> list[FakeRasterJob]:
        """Every job received."""
        return self.engine.jobs

    def set(self, **changes: Any) -> None:
        """Switch faults at run time (see :class:`QLEngine`)."""
        self.engine.set(**changes)

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            if not self._unplugged:
                os.write(self._fd, data)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.engine.feed(data)
        self.engine.end_job()

    def unplug(self) -> None:
        """The cable is pulled: the stream closes under the client."""
        self._unplugged = True
        with contextlib.suppress(OSError):
            if self.stream is not None:
                self._sock.shutdown(socket.SHUT_RDWR)
                self._sock.close()
            else:
                os.close(self._fd)
                if self._slave is not None:
                    os.close(self._slave)
        self.engine.stop()

    def close(self) -> None:
        """Release everything."""
        if not self._unplugged:
            self.unplug()
        if self.stream is not None:
            self.stream.close()

    def __enter__(self) -> FakeQLUsb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
