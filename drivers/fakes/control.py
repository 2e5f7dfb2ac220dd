"""A tiny control channel for fake printers running in another process.

One JSON object per line over TCP on localhost. Requests:

* ``{"set": {"no_media": true, "slow": 2.0, "media": "29"}}`` — change the fake
  (see each fake's ``settable`` names); the answer is the fake's state;
* ``{"get": "state"}`` — the state: faults, jobs received, pages printed.

:class:`FakeControl` is the client a test uses against a fake started with
``packline printer fake ... --control-port N``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from drivers.fakes.listen import tcp_server

__all__ = ["ControlServer", "FakeControl"]

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    """Serves JSON-line requests to ``handler`` on ``host:port`` (0 = a free port)."""

    def __init__(self, *, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._sock = tcp_server(host, port, what="control requests")
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="fake-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(
                target=self._client, args=(conn,), name="fake-control-client", daemon=True
            ).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as fh:
            for line in fh:
                try:
                    answer = self._handler(json.loads(line))
                except Exception as exc:
                    answer = {"error": str(exc)}
                fh.write(json.dumps(answer).encode() + b"\n")
                fh.flush()

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()


class FakeControl:
    """Client of a fake printer's control port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        address = (self.host, self.port)
        with (
            socket.create_connection(address, timeout=self.timeout) as sock,
            sock.makefile("rwb") as fh,
        ):
            fh.write(json.dumps(request).encode() + b"\n")
            fh.flush()
            answer: dict[str, Any] = json.loads(fh.readline())
        if "error" in answer:
            raise ValueError(answer["error"])
        return answer

    def set(self, **changes: Any) -> dict[str, Any]:
        """Change faults/settings (``no_media=True``, ``slow=2.0``...); the new state."""
        return self._call({"set": changes})

    def state(self) -> dict[str, Any]:
        """The fake's state: faults, ``jobs``, ``pages``, ``page_count``."""
        return self._call({"get": "state"})
