"""Byte streams to printers: one small class per transport, errors translated here.

The protocol code above (Brother status, ZPL ``~HS``) only ever calls
:meth:`Stream.write` and :meth:`Stream.read`, so it is tested against the shipped
fakes over sockets and pseudo-terminals, and a transport that needs hardware (pyusb)
stays a thin class. Every ``OSError``/library error becomes
:class:`~drivers.errors.PrinterOffline` with words for the packer.
"""

from __future__ import annotations

import abc
import contextlib
import os
import select
import socket
import time
from typing import Any

from drivers.errors import PrinterOffline

__all__ = ["DeviceFileStream", "SerialStream", "SocketStream", "Stream", "connect_tcp"]


class Stream(abc.ABC):
    """A two-way byte stream to one printer."""

    #: Where the stream goes, in words for messages ("10.0.0.5:9100", "/dev/usb/lp0").
    where: str = "printer"

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Write all of ``data``; raise ``PrinterOffline`` when the printer is gone."""

    @abc.abstractmethod
    def read(self, size: int, *, timeout: float) -> bytes:
        """Up to ``size`` bytes, or ``b""`` when none arrived within ``timeout`` seconds.

        Raises ``PrinterOffline`` when the other end closed or vanished.
        """

    def read_until(self, count: int, *, timeout: float) -> bytes:
        """Read until ``count`` bytes arrived or ``timeout`` passed; may return fewer."""
        deadline = time.monotonic() + timeout
        out = bytearray()
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            out += self.read(count - len(out), timeout=left)
        return bytes(out)

    def drain(self) -> bytes:
        """Whatever is already waiting (stale automatic status replies)."""
        out = bytearray()
        while chunk := self.read(4096, timeout=0):
            out += chunk
        return bytes(out)

    @abc.abstractmethod
    def close(self) -> None:
        """Close the stream; safe to call twice."""


def _offline(where: str, exc: BaseException | None = None) -> PrinterOffline:
    reason = ""
    if isinstance(exc, OSError) and exc.strerror:
        reason = f" ({exc.strerror.lower()})"
    elif exc is not None and str(exc):
        reason = f" ({exc})"
    return PrinterOffline(
        f"Printer at {where} does not answer{reason} — check it is switched on and connected"
    )


class SocketStream(Stream):
    """A connected socket: TCP to a printer, or one end of a socketpair (fakes)."""

    def __init__(self, sock: socket.socket, *, where: str = "socket") -> None:
        self.sock = sock
        self.where = where

    def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise _offline(self.where, exc) from None

    def read(self, size: int, *, timeout: float) -> bytes:
        """Up to ``size`` bytes within ``timeout``."""
        try:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not ready:
                return b""
            data = self.sock.recv(size)
        except (OSError, ValueError) as exc:
            raise _offline(self.where, exc) from None
        if not data:
            raise PrinterOffline(
                f"Printer at {self.where} closed the connection — check it is switched on"
            )
        return data

    def finish_sending(self) -> None:
        """Tell the printer the job is complete (TCP half-close) — it may start printing."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise _offline(self.where, exc) from None

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self.sock.close()


def connect_tcp(host: str, port: int, *, timeout: float) -> SocketStream:
    """Connect to a printer's raw port (9100)."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise _offline(where, exc) from None
    sock.settimeout(timeout)
    return SocketStream(sock, where=where)


class DeviceFileStream(Stream):
    """A character device such as ``/dev/usb/lp0`` (the kernel's usblp driver)."""

    def __init__(self, path: str) -> None:
        self.where = path
        try:
            self.fd: int | None = os.open(path, os.O_RDWR | os.O_NOCTTY)
        except OSError as exc:
            raise _offline(path, exc) from None

    def _fd(self) -> int:
        if self.fd is None:
            raise PrinterOffline(f"Printer at {self.where} is closed")
        return self.fd

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd(), view)
                view = view[written:]
        except OSError as exc:
            raise _offline(self.where, exc) from None

    def read(self, size: int, *, timeout: float) -> bytes:
        """Up to ``size`` bytes within ``timeout``."""
        try:
            ready, _, _ = select.select([self._fd()], [], [], max(0.0, timeout))
            if not ready:
                return b""
            data = os.read(self._fd(), size)
        except OSError as exc:
            raise _offline(self.where, exc) from None
        if not data:
            # usblp returns 0 bytes when the printer has nothing to say; not an error.
            time.sleep(min(timeout, 0.02))
        return data

    def close(self) -> None:
        """Close the device."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class SerialStream(Stream):
    """A serial port through pyserial (``zpl+serial://``); imported only when used."""

    def __init__(self, path: str, *, baud: int) -> None:
        import serial

        self.where = path
        self._serial_error: type[Exception] = serial.SerialException
        try:
            self.port: Any = serial.Serial(path, baudrate=baud, timeout=0, write_timeout=10)
        except (serial.SerialException, OSError) as exc:
            raise _offline(path, exc) from None

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        try:
            self.port.write(data)
            self.port.flush()
        except (self._serial_error, OSError) as exc:
            raise _offline(self.where, exc) from None

    def read(self, size: int, *, timeout: float) -> bytes:
        """Up to ``size`` bytes within ``timeout``."""
        try:
            # Wait for the first byte only, then take what is waiting: a full-size
            # read would always sit out the whole timeout.
            self.port.timeout = max(0.0, timeout)
            data: bytes = self.port.read(1)
            if data and size > 1:
                self.port.timeout = 0
                data += self.port.read(min(size - 1, max(0, int(self.port.in_waiting))))
        except (self._serial_error, OSError) as exc:
            raise _offline(self.where, exc) from None
        return data

    def close(self) -> None:
        """Close the port."""
        with contextlib.suppress(self._serial_error, OSError):
            self.port.close()
