"""The kiosk's address, taken at start: ``kiosk_listen`` bound, or one line saying why not.

Kept apart from the server so that ``edge check`` can try the address without loading
the web stack.
"""

from __future__ import annotations

import errno
import socket

from sync.errors import UserError
from sync.listen import tcp_listener

__all__ = ["KioskUnavailable", "bind_kiosk", "split_listen"]


class KioskUnavailable(UserError):
    """The packer's screen cannot be served where ``kiosk_listen`` says; ``str()`` says
    why and what to do (``where`` the address, ``why`` the reason and the fix)."""

    def __init__(self, *, where: str, why: str) -> None:
        super().__init__(f"cannot serve the packer's screen on {where}: {why}")
        self.where = where
        self.why = why


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8090"`` → ``("127.0.0.1", 8090)``; ``"[::1]:8090"`` → ``("::1", 8090)``."""
    host, _, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit():
        raise KioskUnavailable(
            where=repr(listen), why="give kiosk_listen as host:port, e.g. 127.0.0.1:8090"
        )
    return host, int(port)


_WHY = {
    errno.EADDRINUSE: "the port is in use (another packline edge run on this bench?): stop "
    "that program, or set kiosk_listen to a free host:port",
    errno.EADDRNOTAVAIL: "that is not an address of this machine: set kiosk_listen to one "
    "of its addresses, e.g. 127.0.0.1:8090",
    errno.EACCES: "this user may not use that port: set kiosk_listen to a port above 1023",
}


def bind_kiosk(listen: str) -> socket.socket:
    """Take the kiosk's address now; :class:`KioskUnavailable` when it cannot be had."""
    host, port = split_listen(listen)
    where = f"http://{listen}/"
    try:
        return tcp_listener(host, port, backlog=64)
    except socket.gaierror as exc:
        raise KioskUnavailable(
            where=where,
            why=f"unknown host {host!r} ({exc.strerror}); set kiosk_listen to an address of "
            "this machine",
        ) from None
    except OSError as exc:
        why = _WHY.get(exc.errno or 0) or (exc.strerror or str(exc))
        raise KioskUnavailable(where=where, why=why) from None
