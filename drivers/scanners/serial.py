"""Serial (and USB CDC-ACM) barcode scanners through pyserial.

URL: ``serial:///dev/ttyACM0?baud=9600&terminator=cr``; options are listed in
:data:`OPTIONS` and in docs/scanners.md. Each line the scanner sends is one scan.

Unreadable lines — bytes that do not decode in the configured encoding, or control
characters other than GS (``\\x1d``, GS1's FNC1) — are **dropped**, never returned by
:meth:`SerialScanner.read` with replacement characters: a half-right barcode that
looks valid is worse at a packing bench than no barcode. Each dropped line is logged
at WARNING and handed to the ``on_unreadable`` listener as an
:class:`~drivers.scanners.base.UnreadableScan`, so the bench can show "unreadable scan".
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
from collections.abc import Callable
from typing import Any

import serial

from drivers.errors import BadDeviceURL, ScannerError
from drivers.scanners.base import Scan, StateListener, UnreadableListener, UnreadableScan
from drivers.scanners.hotplug import Backoff, Clock, HotplugScanner
from drivers.scanners.options import choice, parse_options, parse_seconds, split_url
from drivers.scanners.text import strip_affixes, unreadable_reason

__all__ = ["OPTIONS", "TERMINATORS", "LineAssembler", "SerialScanner", "open_url"]

TERMINATORS: dict[str, bytes] = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}
"""The line endings a scanner can be configured to send after each barcode."""

_PARITIES = {
    "none": serial.PARITY_NONE,
    "even": serial.PARITY_EVEN,
    "odd": serial.PARITY_ODD,
}


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive integer")
    return number


def _encoding(value: str) -> str:
    import codecs

    try:
        return codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}") from None


OPTIONS: dict[str, Callable[[str], Any]] = {
    "baud": _positive_int,
    "terminator": choice(TERMINATORS),
    "parity": choice(_PARITIES),
    "encoding": _encoding,
    "prefix": str,
    "suffix": str,
    "max_length": _positive_int,
    "reconnect_min": parse_seconds,
    "reconnect_max": parse_seconds,
}
"""Query options of a ``serial://`` URL and how each is parsed."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Partial:
    data: bytes
    at_wall: float
    at_mono: float


class LineAssembler:
    """Pure: turns byte chunks (with their arrival times) into scans.

    A scan's time is the arrival time of the chunk holding its first byte. Stray CR/LF
    around a line are ignored, so a scanner sending CRLF to a bench configured for CR
    still reads cleanly; empty lines are skipped silently.
    """

    def __init__(
        self,
        *,
        terminator: bytes = b"\r",
        encoding: str = "utf-8",
        prefix: str = "",
        suffix: str = "",
        max_length: int = 4096,
        source: str = "",
    ) -> None:
        if not terminator:
            raise ValueError("terminator must not be empty")
        self.terminator = terminator
        self.encoding = encoding
        self.prefix = prefix
        self.suffix = suffix
        self.max_length = max_length
        self.source = source
        self._partial: _Partial | None = None

    def feed(self, data: bytes, *, at_wall: float, at_mono: float) -> list[Scan | UnreadableScan]:
        """Add bytes that arrived at the given time; return the lines they completed."""
        out: list[Scan | UnreadableScan] = []
        while data:
            if self._partial is None:
                self._partial = _Partial(data=b"", at_wall=at_wall, at_mono=at_mono)
            buffered = self._partial.data + data
            end = buffered.find(self.terminator)
            if end < 0:
                self._partial = dataclasses.replace(self._partial, data=buffered)
                if len(buffered) > self.max_length:
                    out.append(self._unreadable(buffered, "no line end within max_length bytes"))
                    self._partial = None
                break
            line, data = buffered[:end], buffered[end + len(self.terminator) :]
            item = self._decode(line)
            if item is not None:
                out.append(item)
            self._partial = None
        return out

    def reset(self) -> None:
        """Forget a partial line (the device went away mid-scan)."""
        self._partial = None

    def _decode(self, line: bytes) -> Scan | UnreadableScan | None:
        line = line.strip(b"\r\n")
        if not line:
            return None
        if len(line) > self.max_length:
            return self._unreadable(line, "line longer than max_length bytes")
        try:
            text = line.decode(self.encoding)
        except UnicodeDecodeError as exc:
            return self._unreadable(line, f"not {self.encoding}: {exc.reason}")
        reason = unreadable_reason(text)
        if reason is not None:
            return self._unreadable(line, reason)
        text = strip_affixes(text, prefix=self.prefix, suffix=self.suffix)
        assert self._partial is not None
        return Scan(
            text=text,
            at_wall=self._partial.at_wall,
            at_mono=self._partial.at_mono,
            source=self.source,
        )

    def _unreadable(self, raw: bytes, reason: str) -> UnreadableScan:
        assert self._partial is not None
        return UnreadableScan(
            reason=reason,
            raw=repr(raw[:200]),
            at_wall=self._partial.at_wall,
            at_mono=self._partial.at_mono,
            source=self.source,
        )


class SerialScanner(HotplugScanner):
    """A scanner on a serial port (``/dev/ttyACM*``, ``/dev/ttyUSB*``, by-id links)."""

    def __init__(
        self,
        *,
        path: str,
        baud: int = 9600,
        parity: str = serial.PARITY_NONE,
        assembler: LineAssembler | None = None,
        url: str | None = None,
        on_state: StateListener | None = None,
        on_unreadable: UnreadableListener | None = None,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.path = path
        self.baud = baud
        self.parity = parity
        self.assembler = assembler or LineAssembler(source=path)
        self._port: serial.Serial | None = None
        super().__init__(
            url=url or f"serial://{path}?baud={baud}",
            source=path,
            on_state=on_state,
            on_unreadable=on_unreadable,
            backoff=backoff,
            clock=clock,
        )

    def _open_device(self) -> int:
        try:
            # timeout=0: pyserial never blocks; the base class waits with select so
            # that close() can wake it.
            # exclusive: a second reader on the same port would steal half the bytes.
            port = serial.Serial(
                port=self.path,
                baudrate=self.baud,
                parity=self.parity,
                timeout=0,
                exclusive=True,
            )
        except serial.SerialException as exc:
            # pyserial puts the OS errno first in args; keep it for the state detail.
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise ScannerError(f"{self.path} is in use by another program") from exc
            if code is not None:
                raise OSError(code, os.strerror(code)) from exc
            raise ScannerError(str(exc)) from exc
        port.reset_input_buffer()
        self._port = port
        self.assembler.reset()
        return int(port.fileno())

    def _read_device(self) -> list[Scan | UnreadableScan]:
        port = self._port
        if port is None:
            raise OSError("port is not open")
        at_wall, at_mono = self.clock.wall(), self.clock.mono()
        # in_waiting can raise a bare OSError on a vanished device, read() a
        # SerialException (an OSError subclass); the base class takes both as "gone".
        data = port.read(max(1, port.in_waiting))
        if not data:
            raise OSError(errno.EIO, "device reported data but returned none")
        return self.assembler.feed(data, at_wall=at_wall, at_mono=at_mono)

    def _release_device(self) -> None:
        port, self._port = self._port, None
        self.assembler.reset()
        if port is not None:
            # Closing a vanished port may fail; it is gone either way.
            with contextlib.suppress(Exception):
                port.close()


def open_url(
    url: str,
    *,
    on_state: StateListener | None = None,
    on_unreadable: UnreadableListener | None = None,
) -> SerialScanner:
    """Open ``serial:///path?options`` (see :data:`OPTIONS`)."""
    path, raw = split_url(url, scheme="serial")
    if not path:
        raise BadDeviceURL(f"{url!r}: no device path (expected serial:///dev/ttyACM0)")
    opts = parse_options(url, raw, OPTIONS)
    try:
        backoff = Backoff(
            minimum=opts.get("reconnect_min", 0.1), maximum=opts.get("reconnect_max", 2.0)
        )
    except ValueError as exc:
        raise BadDeviceURL(f"{url!r}: {exc}") from None
    assembler = LineAssembler(
        terminator=opts.get("terminator", TERMINATORS["cr"]),
        encoding=opts.get("encoding", "utf-8"),
        prefix=opts.get("prefix", ""),
        suffix=opts.get("suffix", ""),
        max_length=opts.get("max_length", 4096),
        source=path,
    )
    return SerialScanner(
        path=path,
        baud=opts.get("baud", 9600),
        parity=opts.get("parity", serial.PARITY_NONE),
        assembler=assembler,
        url=url,
        on_state=on_state,
        on_unreadable=on_unreadable,
        backoff=backoff,
    )
