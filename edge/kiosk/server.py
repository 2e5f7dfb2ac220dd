"""Serving the kiosk: the port taken at start, uvicorn on a thread of its own.

``edge run`` takes the ``kiosk_listen`` address first, before it opens the scanner,
the printer or the store: when the port is in use (most often by a second agent for
the same bench, which must not read the same scanner), it stops with one line and
exit code 2, having touched nothing. Once running, the page cannot stop the bench:
the server runs on its own thread and event loop, and if it ever fails the bench goes
on scanning and recording (the log says so).
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from edge.kiosk.app import create_kiosk_app
from edge.kiosk.feed import ScreenSource

__all__ = ["KioskServer"]

log = logging.getLogger(__name__)


class KioskServer:
    """The kiosk app served by uvicorn on ``sock`` (:func:`edge.kiosk.listen.bind_kiosk`),
    on a thread of its own.

    :meth:`start` returns once the page is served (or after ``start_timeout``, with a
    log line: the bench does not wait for its screen); :meth:`stop` ends open streams
    and the server.
    """

    def __init__(
        self,
        *,
        sock: socket.socket,
        source: ScreenSource,
        station: str,
        version: str,
        refresh: float = 2.0,
    ) -> None:
        import uvicorn

        # uvicorn says "Started server process" and the like at INFO on a logger named
        # "error"; the bench's log keeps its own line for that, and uvicorn's warnings.
        served = logging.getLogger("uvicorn.error")
        if served.level == logging.NOTSET:
            served.setLevel(logging.WARNING)
        self.sock = sock
        self.app, self.feed = create_kiosk_app(
            source=source, station=station, version=version, refresh=refresh
        )
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="on",
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="kiosk", daemon=True)

    @property
    def url(self) -> str:
        """Where the page is, e.g. ``http://127.0.0.1:8090/``."""
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self.sock])
        except BaseException:  # the page is gone; the bench must go on without it
            log.exception("the packer's screen stopped; the bench goes on without it")
        else:
            if not self._server.should_exit:
                log.error("the packer's screen stopped; the bench goes on without it")

    def start(self, *, start_timeout: float = 10.0) -> None:
        """Serve the page on a thread of its own."""
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                log.warning("the packer's screen is slow to start; the bench does not wait")
                return
            time.sleep(0.01)
        if self._server.started:
            log.info("packer's screen on %s", self.url)

    def stop(self, *, timeout: float = 5.0) -> None:
        """End the streams and the server; wait up to ``timeout`` for its thread."""
        self.feed.stop_soon()  # open pages' streams end now, not at uvicorn's timeout
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self.sock.close()
