"""A listening TCP socket for the web servers (central's page, a bench's kiosk)."""

from __future__ import annotations

import socket

__all__ = ["tcp_listener"]


def tcp_listener(host: str, port: int, *, backlog: int = socket.SOMAXCONN) -> socket.socket:
    """A socket bound to ``host:port`` and listening; ``OSError`` (``socket.gaierror``
    for a host that does not resolve) when it cannot be had.

    The socket is named TCP, not the protocol 0 ``socket.create_server`` leaves: asyncio
    turns Nagle off only on connections of a socket named TCP, and with Nagle on, a
    response's body waits for the client's delayed ACK of its headers — 40 ms on Linux,
    on every request.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock
