"""The watch inside ``packline central serve``: a thread that ticks and publishes.

Every ``tick_every`` (0 turns ticking off in this process) it runs :func:`tick` at the
clock's time; about every second it publishes what waits in the alert outbox (alerts
written by the CLI, the API or another process included). It also takes
acknowledgements on ``packline/v1/{site}/alerts/ack``, checked against the policy's
list of who may acknowledge.

With several central processes on one database only the leader
(:class:`central.leader.Leadership`) ticks, publishes and takes acknowledgements:
``leader`` says whether this process is it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.clock import Clock, SystemClock
from central.watch.acks import BadAck, acknowledge, parse_ack
from central.watch.alerts import publish_pending
from central.watch.rules import WatchRules
from central.watch.tick import TickResult, tick
from sync import topics
from sync.errors import UserError
from sync.sdnotify import Heartbeat
from sync.session import Message, MqttSession

__all__ = ["WatchLoop"]

log = logging.getLogger(__name__)


class WatchLoop:
    """Ticks every ``rules.tick_every`` at ``clock``'s time and publishes the outbox on
    ``session``; ``start()`` / ``stop()``. ``last`` is the last tick's result."""

    def __init__(
        self,
        *,
        engine: Engine,
        session: MqttSession,
        site: str,
        rules: WatchRules,
        clock: Clock | None = None,
        publish_every: float = 1.0,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.session = session
        self.site = site
        self.rules = rules
        self.clock: Clock = clock or SystemClock()
        self.publish_every = publish_every
        self.leader: Callable[[], bool] = leader or (lambda: True)
        self.last: TickResult | None = None
        # For /metrics: how many ticks ran and how long they took, in all and the last.
        self.ticks = 0
        self.tick_seconds_total = 0.0
        self.last_tick_seconds: float | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: Beats each round; a tick or publish that hangs stops it (systemd's watchdog).
        self.heartbeat = Heartbeat(
            "the watch loop", max_age=max(120.0, 4 * self.rules.tick_every.total_seconds())
        )
        session.route(topics.alert_ack(site), self._on_ack)

    def start(self) -> None:
        """Start the thread (the first tick runs at once)."""
        self._thread = threading.Thread(target=self._run, name="central-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current step."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        """Publish (and tick, when due) now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        every = self.rules.tick_every.total_seconds()
        next_tick = time.monotonic()
        failing = False
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                if not self.leader():
                    next_tick = time.monotonic()  # a new leader ticks at once
                elif every > 0 and time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + every
                    self.run_tick()
                if self.session.connected and self.leader():
                    publish_pending(self.engine, site=self.site, session=self.session)
                failing = False
            except Exception as exc:
                # Log the first failure of a run in full; the next round tries again.
                if not failing:
                    log.exception("the watch failed: %s", exc)
                else:
                    log.warning("the watch failed again: %s", exc)
                failing = True
            wait = self.publish_every
            if every > 0:
                wait = max(0.0, min(wait, next_tick - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()

    def run_tick(self) -> TickResult:
        """One tick at the clock's time (what the thread does every ``tick_every``)."""
        started = time.perf_counter()
        result = tick(self.engine, now=self.clock.now(), site=self.site, rules=self.rules)
        took = time.perf_counter() - started
        self.ticks += 1
        self.tick_seconds_total += took
        self.last_tick_seconds = took
        self.last = result
        if result.alerts:
            log.info("tick at %s: %d alerts", result.now.isoformat(), len(result.alerts))
        return result

    def _on_ack(self, message: Message) -> None:
        if not self.leader():
            return  # every process gets it; the leader takes it
        try:
            ack = parse_ack(message.payload)
        except BadAck as exc:
            log.warning("dropped an acknowledgement on %s: %s", message.topic, exc)
            return
        try:
            done = acknowledge(self.engine, ack, now=self.clock.now(), rules=self.rules)
        except UserError as exc:
            log.warning("acknowledgement of %s by %s refused: %s", ack.key, ack.by, exc)
            return
        except sa.exc.SQLAlchemyError as exc:
            log.error("could not store the acknowledgement of %s: %s", ack.key, exc)
            return
        log.info("%s (over MQTT)", done)
