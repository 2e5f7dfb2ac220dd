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

Several processes may serve one site on one PostgreSQL database (docs/scale.md): each
stores the batches the shared subscription hands it, and the one holding the leader
lock (:class:`central.leader.Leadership`) does the once-per-site duties. With
``web = false`` (``--no-web``) a process is an ingest worker: no page, no port; it
runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from types import FrameType

from central.clock import Clock
from central.db import open_db
from central.leader import Leadership, default_worker_name
from central.service import CentralService
from central.settings import CentralSettings, shown_db_url
from central.watch.loop import WatchLoop
from sync import sdnotify
from sync.errors import UserError
from sync.listen import tcp_listener
from sync.mqtt import BrokerURL, parse_mqtt_url

__all__ = ["StartupError", "listen_http", "serve_central"]

log = logging.getLogger("packline.central")


class StartupError(UserError):
    """Central cannot start (broker unreachable, port taken); ``str()`` says why."""


def listen_http(host: str, port: int) -> socket.socket:
    """The web page's listening socket on ``host:port`` (:func:`sync.listen.tcp_listener`);
    :class:`StartupError` saying why when it cannot be had (the port taken, not an
    address of this machine)."""
    try:
        return tcp_listener(host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StartupError(f"cannot listen on http://{host}:{port}: {reason}") from None


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
    stopping = threading.Event()
    server: uvicorn.Server | None = None

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        # Before uvicorn runs, and again after it restores these handlers and replays
        # the signal it caught: note it and let the code below end cleanly.
        stop_requested.append(sig)
        stopping.set()
        if server is not None:
            server.should_exit = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker = _broker(settings.mqtt_url)
        engine = open_db(settings.db_url)
        # On PostgreSQL other processes may serve the site too: each needs its own
        # client id, and one of them leads. With SQLite this one process is all.
        worker = settings.worker or (
            default_worker_name() if engine.dialect.name == "postgresql" else ""
        )
        leadership = Leadership(engine, site=settings.site, worker=worker)
        service = CentralService(
            engine=engine,
            mqtt_url=settings.mqtt_url,
            site=settings.site,
            skew_tolerance=settings.skew_tolerance,
            backlog_alert_after=settings.backlog_alert_after,
            max_message_bytes=settings.max_message_bytes,
            clock_every=settings.clock_every,
            worker=worker,
            leader=lambda: leadership.is_leader,
        )
        # Ticks every tick_every at clock's time (the machine's by default), publishes
        # the alert outbox, takes acknowledgements over MQTT.
        watch = WatchLoop(
            engine=engine,
            session=service.session,
            site=settings.site,
            rules=settings.rules(),
            clock=clock,
            leader=lambda: leadership.is_leader,
        )
        sock: socket.socket | None = None
        try:
            if settings.web:
                sock = listen_http(settings.http_host, settings.http_port)
            leadership.start()
            service.say_states = False  # until the start-up line below has been said
            service.start()
            connected = _wait_for_broker(service, broker)
            service.say_states = True
            watch.start()  # it publishes once the broker is there
            # One line that says what this central is using (start-up errors stay one
            # line on their own, so it comes once every check has passed).
            if sock is not None:
                host, port = sock.getsockname()[:2]
                page = f"status page http://{host}:{port}/"
            else:
                page = "no status page (ingest only)"
            log.info(
                "packline %s central%s for site %s: database %s, broker %s, %s",
                version,
                f" worker {worker}" if worker else "",
                settings.site,
                shown_db_url(settings.db_url),
                broker,
                page,
            )
            if not connected:
                log.warning(
                    "waiting for the MQTT broker at %s (%s); %s, "
                    "and connecting as soon as it answers",
                    broker,
                    "serving the page meanwhile" if sock is not None else "ready to ingest",
                    service.last_connect_error or "no answer yet",
                )
            # systemd (Type=notify): up now; the watchdog is fed while ingest, downlink
            # and the watch loop are healthy.
            watchdog = sdnotify.Watchdog(
                {**service.health_probes(), "watch": watch.heartbeat.probe}
            )
            watchdog.start()
            if sock is None:
                sdnotify.ready(f"central worker for site {settings.site} ingesting")
                stopping.wait()
            else:
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
                sdnotify.ready(f"central for site {settings.site} serving on port {port}")
                if not stop_requested:
                    server.run(sockets=[sock])
            sdnotify.stopping()
            watchdog.stop()
        finally:
            watch.stop()
            service.stop()
            leadership.stop()
            engine.dispose()
            if sock is not None:
                sock.close()
        log.info("central stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
