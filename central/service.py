"""The MQTT side of central: ingest, acks and the orders downlink.

Threads, and why: the MQTT session's network thread runs ingest and status, handlers
on the session (store, commit, then ack — in that order, so an ack always names
committed events); one downlink thread polls the database for new orders (an import
from another process must reach the stations within about a second) and publishes
them. The process around it (start-up checks, the web page, signals) is
:mod:`packline.serve`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, stations
from central.ingest import BatchRejected, StatusUpdate, record_status, store_batch
from central.orders import current_order_seq, orders_after
from sync import topics
from sync.messages import Ack, EventBatch, OrdersMessage, StationStatus, WireError, decode, encode
from sync.session import Message, MqttSession, SessionState

__all__ = ["CentralService"]

log = logging.getLogger(__name__)


class CentralService:
    """MQTT side of central for one site.

    Subscribes to every station's ``events`` and ``status``; stores batches and acks the
    committed contiguous seq; keeps the stations table current; sends each station the
    orders above its cursor. ``start()`` returns at once (the session reconnects by
    itself); ``stop()`` ends both threads.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        mqtt_url: str,
        site: str,
        client_id: str | None = None,
        poll_interval: float = 0.5,
        chunk_size: int = 50,
        repush_after: float = 30.0,
    ) -> None:
        self.engine = engine
        self.site = site
        self.poll_interval = poll_interval
        self.chunk_size = chunk_size
        # A station whose status still shows an old cursor this long after a push is
        # sent the missing orders again (the earlier push may have been lost).
        self.repush_after = repush_after
        # A fixed client id per site: the broker's persistent session then keeps the
        # batches that arrive while central restarts.
        self.session = MqttSession(client_id=client_id or f"packline-central-{site}", url=mqtt_url)
        self.session.route(topics.subscription(site, "events"), self._on_events)
        self.session.route(topics.subscription(site, "status"), self._on_status)
        self.session.on_connect(self._on_connect)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._statuses: queue.SimpleQueue[StatusUpdate] = queue.SimpleQueue()
        self._pushed: dict[str, int] = {}
        self._last_push: dict[str, float] = {}
        self._downlink: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect (asynchronously) and start the downlink thread."""
        self.session.start()
        self._downlink = threading.Thread(
            target=self._downlink_loop, name="central-downlink", daemon=True
        )
        self._downlink.start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the broker to accept us."""
        return self.session.wait_connected(timeout)

    @property
    def last_connect_error(self) -> str | None:
        """Why the session is not connected, in words; None while it is."""
        state = self.session.state
        return None if state.connected else state.reason

    def stop(self) -> None:
        """Stop the downlink, disconnect cleanly and stop the session."""
        self._stop.set()
        self._wake.set()
        if self._downlink is not None:
            self._downlink.join(timeout=10)
        self.session.stop()

    # ------------------------------------------------------------------ session handlers

    def _on_connect(self, _state: SessionState) -> None:
        log.info("connected to the broker; serving site %s", self.site)
        self._wake.set()

    def _station(self, message: Message) -> str | None:
        try:
            site, station, _leaf = topics.station_of(message.topic)
        except ValueError:
            log.warning("dropped a message on an unexpected topic %s", message.topic)
            return None
        if site != self.site:
            log.warning(
                "dropped a message for site %s (serving %s): %s", site, self.site, message.topic
            )
            return None
        return station

    def _on_events(self, message: Message) -> None:
        topic, station = message.topic, self._station(message)
        if station is None:
            return
        batch = _decode_for(
            EventBatch, "batch", topic=topic, station=station, payload=message.payload
        )
        if batch is None:
            return
        try:
            acked = store_batch(self.engine, batch, site=self.site)
        except BatchRejected as exc:
            log.warning("dropped a batch on %s: %s", topic, exc)
            return
        except sa.exc.SQLAlchemyError as exc:
            # Not acked: the station resends it once the database is back.
            log.error("could not store a batch of %s: %s", station, exc)
            return
        # Only now, after the commit, may the station drop these events.
        self.session.publish(
            topics.ack(self.site, station), encode(Ack(station=station, seq=acked))
        )
        log.debug("station %s: stored %d events, acked %d", station, len(batch.events), acked)

    def _on_status(self, message: Message) -> None:
        topic, station = message.topic, self._station(message)
        if station is None or not message.payload:  # a cleared retained status
            return
        status = _decode_for(
            StationStatus, "status", topic=topic, station=station, payload=message.payload
        )
        if status is None:
            return
        try:
            update = record_status(self.engine, status, site=self.site)
        except sa.exc.SQLAlchemyError as exc:
            log.error("could not record the status of %s: %s", station, exc)
            return
        if update.came_online:
            log.info("station %s is online", station)
        elif not status.online:
            log.info("station %s is offline", station)
            # An offline status (the last will) carries no real cursor: pushing on it
            # would queue every open order for a station that is not there.
            return
        self._statuses.put(update)
        self._wake.set()

    # ------------------------------------------------------------------ orders downlink

    def _downlink_loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.push_orders()
                failing = False
            except Exception as exc:
                # Log the first failure in full, then quietly retry each poll.
                if not failing:
                    log.exception("orders downlink failed: %s", exc)
                failing = True
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def push_orders(self) -> None:
        """Send each known station of the site the orders above what it holds.

        Runs in the downlink thread; callable directly in tests.
        """
        if not self.session.connected:
            return  # statuses are re-delivered on reconnect, nothing is lost by waiting
        current = current_order_seq(self.engine)
        while True:
            try:
                update = self._statuses.get_nowait()
            except queue.Empty:
                break
            self._on_cursor(update, current)
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            known = conn.execute(
                sa.select(stations.c.station, stations.c.orders_cursor).where(
                    stations.c.site == self.site
                )
            ).all()
        for station, cursor in known:
            pushed = self._pushed.setdefault(station, int(cursor))
            if pushed < current:
                self._push(station, cursor=pushed)

    def _on_cursor(self, update: StatusUpdate, current: int) -> None:
        station, cursor = update.station, update.orders_cursor
        pushed = self._pushed.get(station)
        if cursor < current and (
            update.came_online
            or pushed is None
            or pushed <= cursor
            or time.monotonic() - self._last_push.get(station, 0.0) > self.repush_after
        ):
            self._push(station, cursor=cursor)
        elif pushed is None or cursor > pushed:
            self._pushed[station] = cursor

    def _push(self, station: str, *, cursor: int) -> None:
        # Read a chunk at a time: a new station may be owed every open order.
        topic = topics.orders(self.site, station)
        sent, upto = 0, cursor
        while chunk := orders_after(self.engine, cursor=upto, limit=self.chunk_size):
            upto = chunk[-1][0]
            message = OrdersMessage(orders=[o for _, o in chunk], cursor=upto)
            self.session.publish(topic, encode(message))
            sent += len(chunk)
        if not sent:
            return
        self._pushed[station] = upto
        self._last_push[station] = time.monotonic()
        log.info("sent %d orders to station %s (cursor %d → %d)", sent, station, cursor, upto)


_FromStation = TypeVar("_FromStation", EventBatch, StationStatus)


def _decode_for(
    cls: type[_FromStation], what: str, *, topic: str, station: str, payload: bytes
) -> _FromStation | None:
    """Decode a station's message; a garbled one, or one naming another station than
    its topic, is logged in one line and dropped (None)."""
    try:
        message = decode(cls, payload)
    except WireError as exc:
        log.warning("dropped a garbled %s on %s: %s", what, topic, exc)
        return None
    if message.station != station:
        log.warning(
            "dropped a %s of station %s published on %s (topic/station mismatch)",
            what,
            message.station,
            topic,
        )
        return None
    return message
