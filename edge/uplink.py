"""The station's side of sync: outbox pump, end-to-end ack, order inbox, status.

The uplink sends unacknowledged events in ``seq`` order, one batch in flight at a
time, and deletes them from the outbox only when central's ack says they are stored. A
batch with no ack within ``resend_after`` seconds is sent again (central tolerates
duplicates), so nothing depends on the broker's or paho's memory. Acks and orders
arrive as handlers on the station's :class:`~sync.session.MqttSession`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sync import topics
from sync.messages import (
    Ack,
    Event,
    EventBatch,
    OrdersMessage,
    StationStatus,
    WireError,
    decode,
    encode,
)
from sync.session import Message, MqttSession, SessionState, Will

__all__ = ["Outbox", "Uplink", "station_session"]

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """What the uplink needs from the station store."""

    def pending(self, *, after: int = 0, limit: int = 200) -> list[Event]:
        """Unacknowledged events with seq > after, oldest first."""

    def acknowledge(self, seq: int) -> int:
        """Drop outbox rows up to seq."""

    def backlog(self) -> int:
        """How many events are unacknowledged."""

    def apply_orders(self, message: OrdersMessage) -> int:
        """Upsert downlinked orders."""

    def orders_cursor(self) -> int:
        """The highest central order seq held."""


def station_session(*, site: str, station: str, mqtt_url: str, version: str = "") -> MqttSession:
    """The station's MQTT session: a fixed client id, and a last will that marks the
    station offline on its retained status topic."""
    offline = StationStatus(station=station, online=False, version=version)
    return MqttSession(
        client_id=f"packline-station-{site}-{station}",
        url=mqtt_url,
        will=Will(topic=topics.status(site, station), payload=encode(offline)),
    )


class Uplink:
    """Drives the station's session: the pump thread, the ack and orders handlers.

    ``health()`` supplies the device part of the station status; ``on_orders`` is
    called after downlinked orders were stored. :meth:`start` starts the session and
    :meth:`stop` ends it.
    """

    def __init__(
        self,
        *,
        session: MqttSession,
        outbox: Outbox,
        site: str,
        station: str,
        version: str = "",
        health: Callable[[], Mapping[str, Any]] | None = None,
        on_orders: Callable[[int], None] | None = None,
        resend_after: float = 5.0,
        status_every: float = 10.0,
        batch_size: int = 200,
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.site = site
        self.station = station
        self.version = version
        self.health: Callable[[], Mapping[str, Any]] = health or (lambda: {})
        self.on_orders = on_orders
        self.resend_after = resend_after
        self.status_every = status_every
        self.batch_size = batch_size
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sent_top = 0
        self._sent_at = 0.0
        self._status_at = 0.0
        self._status_lock = threading.Lock()
        self._last_status: bytes | None = None
        session.route(topics.ack(site, station), self._on_ack)
        session.route(topics.orders(site, station), self._on_orders)
        session.on_connect(self._on_connect)
        self._thread = threading.Thread(target=self._run, name=f"uplink-{station}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background) and start pumping."""
        self.session.start()
        self._thread.start()

    def stop(self) -> None:
        """Publish an orderly offline status, disconnect and stop the threads."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self.session.connected:
            offline = StationStatus(station=self.station, online=False, version=self.version)
            goodbye = self.session.publish(
                topics.status(self.site, self.station), encode(offline), retain=True
            )
            goodbye.wait(timeout=2)
        self.session.stop()

    def notify(self) -> None:
        """Something was recorded or changed: send it now rather than at the next tick."""
        self._wake.set()

    # -- session handlers (network thread) -----------------------------------------------

    def _on_connect(self, state: SessionState) -> None:
        log.info("connected to the broker; backlog %d", self.outbox.backlog())
        # Whatever was in flight may be lost with the old connection: resend it.
        self._sent_top = 0
        self._status_at = 0.0
        self._last_status = None
        self._wake.set()

    def _on_ack(self, message: Message) -> None:
        try:
            ack = decode(Ack, message.payload)
        except WireError as exc:
            log.warning("dropped a garbled ack on %s: %s", message.topic, exc)
            return
        if ack.station != self.station:
            log.warning("ignored an ack addressed to station %r", ack.station)
            return
        removed = self.outbox.acknowledge(ack.seq)
        if removed:
            log.debug("central holds up to seq %d; %d outbox rows removed", ack.seq, removed)
        if ack.seq >= self._sent_top:
            self._sent_top = 0
        self._wake.set()

    def _on_orders(self, message: Message) -> None:
        try:
            orders = decode(OrdersMessage, message.payload)
        except WireError as exc:
            log.warning("dropped garbled orders on %s: %s", message.topic, exc)
            return
        # If this raises (a locked or full disk), the session logs it and nothing
        # below runs: the cursor did not move, so the status keeps asking central
        # for these orders and they come again.
        changed = self.outbox.apply_orders(orders)
        log.info("received %d orders (%d new or changed)", len(orders.orders), changed)
        if self.on_orders is not None:
            self.on_orders(changed)
        self._status_at = 0.0
        self._wake.set()

    # -- pump thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=min(1.0, self.resend_after))
            self._wake.clear()
            if self._stop.is_set() or not self.session.connected:
                continue
            try:
                self._send_batch()
                self._maybe_publish_status()
            except Exception:  # the pump must outlive any one bad moment
                log.exception("outbox pump error; retrying")
                time.sleep(1.0)

    def _send_batch(self) -> None:
        now = time.monotonic()
        if self._sent_top and now - self._sent_at < self.resend_after:
            return  # a batch is in flight; wait for its ack
        events = self.outbox.pending(limit=self.batch_size)
        if not events:
            self._sent_top = 0
            return
        if self._sent_top:
            log.info("no ack within %.0fs; resending from seq %d", self.resend_after, events[0].seq)
        batch = EventBatch(station=self.station, events=events)
        # A batch the broker refuses (its PUBACK says so, and the session logs it) is
        # like one lost: no ack comes, and it is sent again after resend_after.
        self.session.publish(topics.events(self.site, self.station), encode(batch))
        self._sent_top = events[-1].seq
        self._sent_at = now

    def status(self) -> StationStatus:
        """The station's status as it would be published now."""
        return StationStatus(
            station=self.station,
            online=True,
            at_wall=time.time(),
            version=self.version,
            backlog=self.outbox.backlog(),
            orders_cursor=self.outbox.orders_cursor(),
            **self.health(),
        )

    def _maybe_publish_status(self) -> None:
        now = time.monotonic()
        status = self.status()
        body = encode(status.model_copy(update={"at_wall": 0.0}))
        with self._status_lock:
            if body == self._last_status and now - self._status_at < self.status_every:
                return
            self._last_status = body
            self._status_at = now
        self.session.publish(topics.status(self.site, self.station), encode(status), retain=True)
