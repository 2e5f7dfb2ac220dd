"""Opening a fake device's ports and output folder, with errors a person can act on.

A fake printer is started by hand (``packline printer fake``) as often as by tests;
a port already taken, an address that is not this machine's, a port out of range or a
folder that cannot be written must each end in one line naming the problem and what
to do, not in a socket traceback.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from drivers.errors import DriverError

__all__ = ["FakeDeviceError", "output_folder", "tcp_server", "udp_socket"]


class FakeDeviceError(DriverError):
    """A fake device cannot start: a port or its output folder cannot be used."""


def _check_port(port: int, what: str) -> None:
    if not 0 <= port <= 65535:
        raise FakeDeviceError(
            f"port {port} for {what} is out of range: use 1 to 65535, or 0 for any free port"
        )


def _cannot(host: str, port: int, what: str, exc: OSError) -> FakeDeviceError:
    # socket.create_server appends "(while attempting to bind on address ...)".
    reason = (exc.strerror or str(exc)).split(" (while attempting")[0]
    if exc.errno == errno.EADDRINUSE:
        hint = "choose another port, or 0 for any free one"
    elif exc.errno == errno.EADDRNOTAVAIL or (exc.errno or 0) < 0:  # < 0: a resolver error
        hint = "listen on an address of this machine, e.g. 127.0.0.1 or 0.0.0.0"
    else:
        hint = "choose another address or port"
    return FakeDeviceError(f"cannot listen on {host}:{port} for {what}: {reason}; {hint}")


def tcp_server(host: str, port: int, *, what: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = a free port) for ``what``."""
    _check_port(port, what)
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        raise _cannot(host, port, what, exc) from None


def udp_socket(host: str, port: int, *, what: str) -> socket.socket:
    """A UDP socket bound to ``host:port`` (0 = a free port) for ``what``."""
    _check_port(port, what)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _cannot(host, port, what, exc) from None
    return sock


def output_folder(path: Path) -> Path:
    """``path`` created if needed and checked writable: where a fake keeps what it got."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".packline-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FakeDeviceError(
            f"cannot keep received jobs in {path}: {exc.strerror or exc}; "
            "give a folder this user can write to"
        ) from None
    return path
