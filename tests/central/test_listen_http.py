"""The web page's listening socket: every connection it accepts has Nagle off."""

from __future__ import annotations

import asyncio
import socket

import pytest

from packline.serve import StartupError, listen_http


def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection accepted by an asyncio server on ``listener``, as
    uvicorn serves it."""

    async def run() -> int:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[int] = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Probe, sock=listener)
        try:
            host, port = listener.getsockname()[:2]
            _reader, writer = await asyncio.open_connection(host, port)
            try:
                return await asyncio.wait_for(accepted, 30)
            finally:
                writer.close()
        finally:
            server.close()

    return asyncio.run(run())


def test_accepted_connections_have_nagle_off() -> None:
    # With Nagle on, every response's body waits for the client's delayed ACK of its
    # headers (40 ms on Linux): /healthz took 45 ms instead of 1.
    assert _nodelay_of_accepted(listen_http("127.0.0.1", 0)) != 0


def test_a_port_taken_says_so() -> None:
    with listen_http("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"cannot listen on http://127.0.0.1:{port}"):
            listen_http("127.0.0.1", port)
