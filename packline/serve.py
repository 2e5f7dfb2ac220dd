"""The ``packline central serve`` process: start-up checks, the service, the web page.

Start-up problems that can never fix themselves (a bad broker URL, credentials the
broker refuses, the HTTP port taken, a database not usable) end the command with one
line before anything runs. A broker that is not up yet is not one of them: at boot the
order of services is not guaranteed, so central serves its page, says in ``/healthz``
and its log that it is waiting for the broker, and connects when it can; a broker that
goes away later is reconnected to the same way. uvicorn runs on the main thread, which
also owns the signal handlers; ingest and the downlink run in
:class:`central.service.CentralService`'s threads, the watch (ticks, the alert outbox,
acknowledgements over MQTT) in :class:`central.watch.loop.WatchLoop`'s.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from types import FrameType

from central.clock import Clock
from central.db import open_db
from central.service import CentralService
from central.settings import CentralSettings, shown_db_url
from central.watch.loop import WatchLoop
from sync import sdnotify
from sync.errors import UserError
from sync.mqtt import BrokerURL, parse_mqtt_url

__all__ = ["StartupError", "serve_central"]

log = logging.getLogger("packline.central")


class StartupError(UserError):
    """Central cannot start (broker unreachable, port taken); ``str()`` says why."""


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StartupError(f"cannot listen on http://{host}:{port}: {reason}") from None
    return sock


def _broker(url: str) -> BrokerURL:
    try:
        return parse_mqtt_url(url)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


# Refusals the broker may change its mind about; every other refusal (bad user name
# or password, not authorised, a client id it will not take) needs a person.
_PASSING_REFUSALS = ("Server unavailable", "Server busy", "Quota exceeded", "Connection rate")

#: How long start-up waits for the broker before serving the page without it.
BROKER_GRACE = 10.0


def _wait_for_broker(service: CentralService, broker: BrokerURL) -> bool:
    """Up to :data:`BROKER_GRACE` s for the broker; True when connected. A refusal
    that can never pass (credentials) raises :class:`StartupError`."""
    deadline = time.monotonic() + BROKER_GRACE
    while time.monotonic() < deadline:
        if service.wait_connected(0.2):
            return True
        reason = service.last_connect_error or ""
        if reason.startswith("the broker refused") and not any(
            words in reason for words in _PASSING_REFUSALS
        ):
            raise StartupError(f"the MQTT broker at {broker} refused: {reason}")
    return False


def serve_central(settings: CentralSettings, *, version: str, clock: Clock | None = None) -> None:
    """Run central until SIGINT or SIGTERM: ingest, downlink, the watch and the web page.

    Raises :class:`StartupError` or :class:`central.db.DatabaseUnavailable` when the
    broker, the database or the HTTP port is not usable at start. ``version`` is what
    the page and ``/healthz`` report.
    """
    import uvicorn

    from web.app import create_app
    from web.metrics import TickStats

    stop_requested: list[int] = []
    server: uvicorn.Server | None = None

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        # Before uvicorn runs, and again after it restores these handlers and replays
        # the signal it caught: note it and let the code below end cleanly.
        stop_requested.append(sig)
        if server is not None:
            server.should_exit = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker = _broker(settings.mqtt_url)
        engine = open_db(settings.db_url)
        service = CentralService(
            engine=engine,
            mqtt_url=settings.mqtt_url,
            site=settings.site,
            skew_tolerance=settings.skew_tolerance,
            backlog_alert_after=settings.backlog_alert_after,
            max_message_bytes=settings.max_message_bytes,
            clock_every=settings.clock_every,
        )
        # Ticks every tick_every at clock's time (the machine's by default), publishes
        # the alert outbox, takes acknowledgements over MQTT.
        watch = WatchLoop(
            engine=engine,
            session=service.session,
            site=settings.site,
            rules=settings.rules(),
            clock=clock,
        )
        sock: socket.socket | None = None
        try:
            sock = _listen(settings.http_host, settings.http_port)
            service.say_states = False  # until the start-up line below has been said
            service.start()
            connected = _wait_for_broker(service, broker)
            service.say_states = True
            watch.start()  # it publishes once the broker is there
            host, port = sock.getsockname()[:2]
            # One line that says what this central is using (start-up errors stay one
            # line on their own, so it comes once every check has passed).
            log.info(
                "packline %s central for site %s: database %s, broker %s, status page "
                "http://%s:%s/",
                version,
                settings.site,
                shown_db_url(settings.db_url),
                broker,
                host,
                port,
            )
            if not connected:
                log.warning(
                    "waiting for the MQTT broker at %s (%s); serving the page meanwhile, "
                    "and connecting as soon as it answers",
                    broker,
                    service.last_connect_error or "no answer yet",
                )
            app = create_app(
                engine=engine,
                settings=settings,
                version=version,
                broker_state=lambda: service.last_connect_error,
                tick_stats=lambda: TickStats(
                    count=watch.ticks,
                    seconds_total=watch.tick_seconds_total,
                    last_seconds=watch.last_tick_seconds,
                ),
            )
            config = uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=3,
                lifespan="off",
            )
            server = uvicorn.Server(config)
            # systemd (Type=notify): up now; the watchdog is fed while ingest, downlink
            # and the watch loop are healthy.
            watchdog = sdnotify.Watchdog(
                {**service.health_probes(), "watch": watch.heartbeat.probe}
            )
            watchdog.start()
            sdnotify.ready(f"central for site {settings.site} serving on port {port}")
            if not stop_requested:
                server.run(sockets=[sock])
            sdnotify.stopping()
            watchdog.stop()
        finally:
            watch.stop()
            service.stop()
            engine.dispose()
            if sock is not None:
                sock.close()
        log.info("central stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
