"""The station's side of sync: outbox pump, end-to-end ack, order inbox, status.

The pump sends unacknowledged events in ``seq`` order, one batch in flight at a time,
and deletes them from the outbox only when central's ack says they are stored. A batch
with no ack within ``resend_after`` seconds is sent again (central tolerates
duplicates), so nothing depends on the broker's or paho's memory.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt

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
from sync.mqtt import make_client

__all__ = ["Outbox", "OutboxPump"]

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """What the pump needs from the station store."""

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


class OutboxPump:
    """Runs the station's MQTT session in background threads.

    ``health()`` supplies the printer/scanner part of the station status;
    ``on_orders`` is called after downlinked orders were stored.
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        site: str,
        station: str,
        mqtt_url: str,
        version: str = "",
        health: Callable[[], dict[str, Any]] | None = None,
        on_orders: Callable[[int], None] | None = None,
        resend_after: float = 5.0,
        status_every: float = 10.0,
        batch_size: int = 200,
    ) -> None:
        self.outbox = outbox
        self.site = site
        self.station = station
        self.version = version
        self.health = health or (lambda: {})
        self.on_orders = on_orders
        self.resend_after = resend_after
        self.status_every = status_every
        self.batch_size = batch_size
        self.connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sent_top = 0
        self._sent_at = 0.0
        self._status_at = 0.0
        self._status_lock = threading.Lock()
        self._last_status: bytes | None = None
        offline = StationStatus(station=station, online=False, version=version)
        self.client = make_client(
            client_id=f"packline-station-{site}-{station}",
            url=mqtt_url,
            will=(topics.status(site, station), encode(offline)),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._thread = threading.Thread(target=self._run, name=f"pump-{station}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background) and start pumping."""
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        """Publish an orderly offline status, disconnect and stop the threads."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        if self.connected.is_set():
            offline = StationStatus(station=self.station, online=False, version=self.version)
            info = self.client.publish(
                topics.status(self.site, self.station), encode(offline), qos=1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def notify(self) -> None:
        """Something was recorded or changed: send it now rather than at the next tick."""
        self._wake.set()

    # -- paho callbacks (network thread) ----------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        client.subscribe(topics.ack(self.site, self.station), qos=1)
        client.subscribe(topics.orders(self.site, self.station), qos=1)
        log.info("connected to broker; backlog %d", self.outbox.backlog())
        # Whatever was in flight may be lost with the old connection: resend it.
        self._sent_top = 0
        self._status_at = 0.0
        self._last_status = None
        self.connected.set()
        self._wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.connected.is_set():
            log.warning("disconnected from broker (%s); working offline", reason)
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic == topics.ack(self.site, self.station):
                self._handle_ack(decode(Ack, msg.payload))
            elif msg.topic == topics.orders(self.site, self.station):
                self._handle_orders(decode(OrdersMessage, msg.payload))
        except WireError as exc:
            log.warning("dropped a garbled message on %s: %s", msg.topic, exc)

    def _handle_ack(self, ack: Ack) -> None:
        if ack.station != self.station:
            log.warning("ignored an ack addressed to station %r", ack.station)
            return
        removed = self.outbox.acknowledge(ack.seq)
        if removed:
            log.debug("central holds up to seq %d; %d outbox rows removed", ack.seq, removed)
        if ack.seq >= self._sent_top:
            self._sent_top = 0
        self._wake.set()

    def _handle_orders(self, message: OrdersMessage) -> None:
        changed = self.outbox.apply_orders(message)
        log.info("received %d orders (%d new or changed)", len(message.orders), changed)
        if self.on_orders is not None:
            self.on_orders(changed)
        self._status_at = 0.0
        self._wake.set()

    # -- pump thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=min(1.0, self.resend_after))
            self._wake.clear()
            if self._stop.is_set() or not self.connected.is_set():
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
        self.client.publish(topics.events(self.site, self.station), encode(batch), qos=1)
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
        self.client.publish(
            topics.status(self.site, self.station), encode(status), qos=1, retain=True
        )
