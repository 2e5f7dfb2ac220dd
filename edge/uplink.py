"""The station's side of sync: outbox pump, end-to-end ack, order inbox, status.

The uplink sends unacknowledged events in ``seq`` order, up to ``window`` batches in
flight at a time, and deletes them from the outbox only when central's ack says they
are stored. Central acks the highest seq it holds contiguously, so a batch in the window
that is lost holds the ack back; when the oldest batch in flight has no ack within
``resend_after`` seconds, everything still in the outbox is sent again from its oldest
row (central tolerates duplicates), so nothing depends on the broker's or paho's memory.
Acks and orders arrive as handlers on the station's :class:`~sync.session.MqttSession`.

It also keeps what the packer and the admin need to know about the link, each said
once per change in the log and kept in the store for ``packline edge status``:

- ``broker_state``: connected, or why not (unreachable, refused, central silent), with
  the records held; ``link`` is the same as one word (:data:`LinkKind`) for screens;
- ``clock_skew_s``: this station's wall clock minus central's, from the time central
  puts in every ack (central corrects the times it stores; this is for people);
- ``name_conflict``: set while central reports another bench using this station's name.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from edge.clock import Clock, SystemClock
from sync import topics
from sync.messages import (
    Ack,
    Event,
    EventBatch,
    OrdersMessage,
    StationStatus,
    WireError,
    decode,
    decode_orders,
    encode,
)
from sync.session import Message, MqttSession, SessionState, Will

__all__ = ["LinkKind", "Outbox", "Uplink", "duration_words", "station_session"]

log = logging.getLogger(__name__)

#: A clock further off than this from central's is worth a line in the log.
SKEW_WORTH_SAYING = 60.0
LinkKind = Literal["starting", "connected", "central_silent", "unreachable", "stopping"]
"""The link to central in one word: not yet tried or trying; connected (and central
answers); connected to the broker but central silent; the broker cannot be reached or
refused the bench (the words say why); the agent is stopping."""

#: Orders messages that arrive within this many seconds of each other are one download.
ORDERS_QUIET = 2.0
#: How often a long download says how far it got.
ORDERS_PROGRESS_EVERY = 10.0


class Outbox(Protocol):
    """What the uplink needs from the station store."""

    instance_id: str

    def pending(self, *, after: int = 0, limit: int = 200) -> list[Event]:
        """Unacknowledged events with seq > after, oldest first."""

    def acknowledge(self, seq: int) -> int:
        """Drop outbox rows up to seq."""

    def backlog(self) -> int:
        """How many events are unacknowledged."""

    def backlog_oldest_at(self) -> float | None:
        """Wall time of the oldest unacknowledged event."""

    def apply_orders(self, message: OrdersMessage) -> int:
        """Upsert downlinked orders."""

    def orders_cursor(self) -> int:
        """The highest central order seq held."""

    def order_count(self) -> int:
        """How many orders are held."""

    def note_uplink(self, state: Mapping[str, Any]) -> None:
        """Keep the uplink's state for other processes."""


def station_session(
    *, site: str, station: str, mqtt_url: str, version: str = "", instance_id: str = ""
) -> MqttSession:
    """The station's MQTT session: a client id per station store, and a last will that
    marks the station offline on its retained status topic.

    The client id carries the store's instance id, so two benches given one name do
    not throw each other off the broker; central tells them apart and says so.
    """
    offline = StationStatus(
        station=station, online=False, version=version, instance_id=instance_id or None
    )
    suffix = f"-{instance_id[:8]}" if instance_id else ""
    return MqttSession(
        client_id=f"packline-station-{site}-{station}{suffix}",
        url=mqtt_url,
        will=Will(topic=topics.status(site, station), payload=encode(offline)),
        log_states=False,
    )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def duration_words(seconds: float) -> str:
    """``40 s``, ``47 min``, ``3 h 0 min``: a length of time for people (sign dropped)."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"


@dataclasses.dataclass(kw_only=True)
class _Download:
    """One run of orders messages from central, summarised in the log when it ends."""

    started: float
    last: float
    progress_at: float
    messages: int = 0
    orders: int = 0
    changed: int = 0
    refused: int = 0
    cursor: int = 0


def _max_length(field: str) -> int | None:
    info = StationStatus.model_fields.get(field)
    if info is None:
        return None
    for meta in info.metadata:
        limit = getattr(meta, "max_length", None)
        if limit is not None:
            return int(limit)
    return None


def _fitted(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Texts cut to what the status allows: a printer's long error text must not keep
    the whole status from being sent."""
    fitted = dict(fields)
    for name, value in fields.items():
        limit = _max_length(name)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            fitted[name] = value[: limit - 1] + "…"
    return fitted


class Uplink:
    """Drives the station's session: the pump thread, the ack and orders handlers.

    ``health()`` supplies the device and bench part of the station status;
    ``on_orders`` is called after downlinked orders were stored. :meth:`start` starts
    the session and :meth:`stop` ends it. ``clock`` is the station's (its wall clock
    may be wrong; central corrects for it), ``data_dir`` the folder whose free space
    the status reports.
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
        clock: Clock | None = None,
        data_dir: Path | None = None,
        resend_after: float = 5.0,
        status_every: float = 10.0,
        batch_size: int = 200,
        window: int = 4,
        max_batch_bytes: int = 256 * 1024,
        central_silent_after: float = 90.0,
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.site = site
        self.station = station
        self.version = version
        self.health: Callable[[], Mapping[str, Any]] = health or (lambda: {})
        self.on_orders = on_orders
        self.clock: Clock = clock or SystemClock()
        self.data_dir = data_dir
        self.resend_after = resend_after
        self.status_every = status_every
        self.batch_size = batch_size
        # Batches sent before the first is acked: with one, the link idles while
        # central commits; a few keep both busy (bench/sync_drain.py).
        self.window = max(1, window)
        # Well below central's max_message_bytes (1 MiB by default): a batch central
        # would set aside unread would hold the whole outbox back.
        self.max_batch_bytes = max_batch_bytes
        self.central_silent_after = central_silent_after
        self.instance_id = outbox.instance_id
        self.started_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        # (top seq, monotonic send time) of each batch in flight, oldest first; the
        # pump thread sends, the network thread takes acks.
        self._pump_lock = threading.Lock()
        self._in_flight: list[tuple[int, float]] = []
        self._acked = 0
        self._top_sent = 0
        self._status_at = 0.0
        self._status_lock = threading.Lock()
        self._last_status: bytes | None = None
        self._lock = threading.Lock()
        self._broker_state = "not started"
        self._link: LinkKind = "starting"
        self._broker_since = self.clock.wall()
        self._connected_at: float | None = None
        self._central_at: float | None = None
        self._central_silent = False
        self._clock_skew_s: float | None = None
        self._skew_said: float | None = None
        self._skew_kept: float | None = None
        self._name_conflict: str | None = None
        self._download: _Download | None = None
        session.route(topics.ack(site, station), self._on_ack)
        session.route(topics.orders(site, station), self._on_orders)
        session.on_connect(self._on_connect)
        session.on_state(self._on_state)
        self._thread = threading.Thread(target=self._run, name=f"uplink-{station}", daemon=True)

    # -- what the kiosk and the status show ------------------------------------------

    @property
    def broker_state(self) -> str:
        """The link to central in words: ``connected``, or why not."""
        with self._lock:
            return self._broker_state

    @property
    def link(self) -> LinkKind:
        """:attr:`broker_state` as one word (:data:`LinkKind`)."""
        with self._lock:
            return self._link

    @property
    def clock_skew_s(self) -> float | None:
        """This station's wall clock minus central's, in seconds; None until known."""
        with self._lock:
            return self._clock_skew_s

    @property
    def name_conflict(self) -> str | None:
        """Central's words while another bench uses this station's name, else None."""
        with self._lock:
            return self._name_conflict

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def thread(self) -> threading.Thread:
        """The uplink's thread (its health is the watchdog's business)."""
        return self._thread

    def start(self) -> None:
        """Connect (in the background) and start pumping."""
        self.started_at = self.clock.wall()
        self._set_broker_state("connecting to the broker", link="starting", say=False)
        self.session.start()
        self._thread.start()

    def stop(self) -> None:
        """Publish an orderly offline status, disconnect and stop the threads."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._flush_download(force=True)
        if self.session.connected:
            offline = StationStatus(
                station=self.station,
                online=False,
                version=self.version,
                instance_id=self.instance_id,
            )
            goodbye = self.session.publish(
                topics.status(self.site, self.station), encode(offline), retain=True
            )
            goodbye.wait(timeout=2)
        self.session.stop()

    def notify(self) -> None:
        """Something was recorded or changed: send it now rather than at the next tick."""
        self._wake.set()

    # -- the link's state, said once per change ------------------------------------------

    def _held(self) -> str:
        count = self.outbox.backlog()
        if not count:
            return "no records waiting to be sent"
        oldest = self.outbox.backlog_oldest_at()
        age = "" if oldest is None else f", oldest {duration_words(self.clock.wall() - oldest)}"
        return f"holding {_plural(count, 'record')} for central{age}"

    def _set_broker_state(
        self, words: str, *, link: LinkKind, say: bool = True, level: int = logging.WARNING
    ) -> None:
        with self._lock:
            if words == self._broker_state:
                return
            self._broker_state = words
            self._link = link
            self._broker_since = self.clock.wall()
        if say:
            log.log(level, "%s; %s", words, self._held())
        self._keep_state()

    def _keep_state(self) -> None:
        with self._lock:
            state = {
                "broker_state": self._broker_state,
                "broker_state_since": self._broker_since,
                "clock_skew_s": self._clock_skew_s,
                "name_conflict": self._name_conflict,
                "instance_id": self.instance_id,
            }
        try:
            self.outbox.note_uplink(state)
        except Exception as exc:  # a locked or full disk: the log line was said anyway
            log.debug("could not keep the uplink state: %s", exc)

    def _on_state(self, state: SessionState) -> None:
        if state.connected:
            with self._lock:
                self._connected_at = time.monotonic()
                self._central_silent = False
            self._set_broker_state(
                f"connected to the broker at {self.session.broker}",
                link="connected",
                level=logging.INFO,
            )
        elif state.reason == "stopped":
            self._set_broker_state(
                "disconnected (the agent is stopping)", link="stopping", level=logging.INFO
            )
        elif state.reason != "connecting":
            with self._lock:
                self._connected_at = None
            broker = str(self.session.broker)
            where = "" if broker in state.reason else f" ({broker})"
            self._set_broker_state(f"{state.reason}{where}", link="unreachable")

    def _check_central(self) -> None:
        """Connected, yet no word from central for a long time: say so once."""
        with self._lock:
            if self._connected_at is None:
                return
            since = max(t for t in (self._connected_at, self._central_at) if t is not None)
            silent = time.monotonic() - since > self.central_silent_after
            if not silent or self._central_silent:
                return
            self._central_silent = True
        self._set_broker_state(
            f"connected to the broker at {self.session.broker}, but no word from central for "
            f"{duration_words(self.central_silent_after)}: is central running, and does it serve "
            f"site {self.site!r}?",
            link="central_silent",
        )

    def _heard_from_central(self) -> None:
        with self._lock:
            self._central_at = time.monotonic()
            was_silent, self._central_silent = self._central_silent, False
        if was_silent and self.session.connected:
            self._set_broker_state(
                f"connected to the broker at {self.session.broker}; central answers again",
                link="connected",
                level=logging.INFO,
            )

    def _note_central_time(self, central_wall: float) -> None:
        skew = self.clock.wall() - central_wall
        with self._lock:
            self._clock_skew_s = skew
            said = self._skew_said
            kept = self._skew_kept
        off = abs(skew) > SKEW_WORTH_SAYING
        if (
            said is None
            or (off and abs(skew - said) > SKEW_WORTH_SAYING)
            or (not off and abs(said) > SKEW_WORTH_SAYING)
        ):
            with self._lock:
                self._skew_said = skew
            if off:
                side = "ahead of" if skew > 0 else "behind"
                log.warning(
                    "this bench's clock is %s %s central's; central corrects the times it "
                    "stores (check the bench's time service)",
                    duration_words(skew),
                    side,
                )
            else:
                log.info("this bench's clock is within %.1f s of central's", abs(skew))
        if kept is None or abs(skew - kept) > 1.0:
            with self._lock:
                self._skew_kept = skew
            self._keep_state()

    def _note_conflict(self, words: str | None) -> None:
        with self._lock:
            if words == self._name_conflict:
                return
            self._name_conflict = words
        if words:
            log.warning("%s", words)
        else:
            log.info("central no longer reports another bench using the name %s", self.station)
        self._keep_state()
        self._status_at = 0.0
        self._wake.set()

    # -- session handlers (network thread) -----------------------------------------------

    def _on_connect(self, state: SessionState) -> None:
        # Whatever was in flight may be lost with the old connection: resend it.
        with self._pump_lock:
            self._in_flight.clear()
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
        if ack.at is not None:
            self._note_central_time(ack.at)
        if ack.instance_id is not None and ack.instance_id != self.instance_id:
            # For another bench that uses this name: its seqs are not ours.
            self._heard_from_central()
            return
        self._note_conflict(ack.name_conflict)
        removed = self.outbox.acknowledge(ack.seq)
        if removed:
            log.debug("central holds up to seq %d; %d outbox rows removed", ack.seq, removed)
        self._heard_from_central()
        with self._pump_lock:
            # An ack beyond anything sent is not trusted to close the window either.
            if ack.seq <= self._top_sent:
                self._acked = max(self._acked, ack.seq)
            self._in_flight = [b for b in self._in_flight if b[0] > self._acked]
        self._wake.set()

    def _on_orders(self, message: Message) -> None:
        try:
            orders, refused = decode_orders(message.payload)
        except WireError as exc:
            log.warning("dropped garbled orders on %s: %s", message.topic, exc)
            return
        if refused:
            shown = "; ".join(f"{no}: {why}" for no, why in refused[:3])
            more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
            log.warning(
                "skipped %s this station cannot read (is its packline older than central's?): %s%s",
                _plural(len(refused), "order"),
                shown,
                more,
            )
        # If this raises (a locked or full disk), the session logs it and nothing
        # below runs: the cursor did not move, so the status keeps asking central
        # for these orders and they come again.
        changed = self.outbox.apply_orders(orders)
        self._heard_from_central()
        self._note_download(orders, changed=changed, refused=len(refused))
        if self.on_orders is not None:
            self.on_orders(changed)
        self._status_at = 0.0
        self._wake.set()

    def _note_download(self, orders: OrdersMessage, *, changed: int, refused: int) -> None:
        now = time.monotonic()
        with self._lock:
            run = self._download
            if run is None:
                run = self._download = _Download(started=now, last=now, progress_at=now)
            run.last = now
            run.messages += 1
            run.orders += len(orders.orders) + refused
            run.changed += changed
            run.refused += refused
            run.cursor = max(run.cursor, orders.cursor)
            progress = now - run.progress_at >= ORDERS_PROGRESS_EVERY
            if progress:
                run.progress_at = now
            so_far, cursor = run.orders, run.cursor
        log.debug("received %d orders (%d new or changed)", len(orders.orders), changed)
        if progress:
            log.info("receiving orders from central: %s so far (cursor %d)", f"{so_far:,}", cursor)

    def _flush_download(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            run = self._download
            if run is None or (not force and now - run.last < ORDERS_QUIET):
                return
            self._download = None
        took = f" in {duration_words(run.last - run.started)}" if run.messages > 1 else ""
        skipped = f", {run.refused:,} skipped" if run.refused else ""
        log.info(
            "received %s from central (%s new or changed%s)%s; cursor %d, %s held",
            _plural(run.orders, "order"),
            f"{run.changed:,}",
            skipped,
            took,
            run.cursor,
            f"{self.outbox.order_count():,}",
        )

    # -- pump thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=min(1.0, self.resend_after))
            self._wake.clear()
            try:
                self._flush_download()
            except Exception:
                log.exception("could not summarise the orders received")
            if self._stop.is_set() or not self.session.connected:
                continue
            try:
                self._send_batch()
                self._maybe_publish_status()
                self._check_central()
            except Exception:  # the pump must outlive any one bad moment
                log.exception("outbox pump error; retrying")
                time.sleep(1.0)

    def _send_batch(self) -> None:
        """Fill the window: send the next batches after those in flight, in seq order."""
        now = time.monotonic()
        # While central refuses this bench's records (another bench has its name),
        # asking again every few seconds only fills central's dead letters.
        resend_after = (
            self.resend_after if self.name_conflict is None else max(self.resend_after, 60.0)
        )
        with self._pump_lock:
            flight = [b for b in self._in_flight if b[0] > self._acked]
            if flight and now - flight[0][1] >= resend_after:
                # The oldest batch got no ack: it, or its ack, was lost (or central
                # holds a gap before it). Start again from the oldest row held.
                log.info("no ack within %g s; resending from the oldest record held", resend_after)
                flight = []
            self._in_flight = flight
            if len(flight) >= self.window:
                return  # the window is full; wait for an ack
            after = flight[-1][0] if flight else 0
            room = self.window - len(flight)
        for _ in range(room):
            events = self.outbox.pending(after=after, limit=self.batch_size)
            if not events:
                return
            body = self._batch(events)
            while len(body) > self.max_batch_bytes and len(events) > 1:
                events = events[: len(events) // 2]
                body = self._batch(events)
            top = events[-1].seq
            with self._pump_lock:
                if after and (not self._in_flight or self._in_flight[-1][0] != after):
                    return  # a reconnect or a resend emptied the window meanwhile
                if top > self._acked:
                    self._in_flight.append((top, now))
                self._top_sent = max(self._top_sent, top)
            # A batch the broker refuses (its PUBACK says so, and the session logs it)
            # is like one lost: no ack comes, and it is sent again after resend_after.
            self.session.publish(topics.events(self.site, self.station), body)
            after = top

    def _batch(self, events: list[Event]) -> bytes:
        return encode(
            EventBatch(
                station=self.station,
                events=events,
                instance_id=self.instance_id,
                boot_id=self.clock.boot_id,
                sent_mono=self.clock.mono(),
                sent_wall=self.clock.wall(),
            )
        )

    def _disk_free(self) -> int | None:
        if self.data_dir is None:
            return None
        try:
            return shutil.disk_usage(self.data_dir).free
        except OSError:
            return None

    def status(self) -> StationStatus:
        """The station's status as it would be published now."""
        fields: dict[str, Any] = {
            "station": self.station,
            "online": True,
            "at_wall": self.clock.wall(),
            "at_mono": self.clock.mono(),
            "boot_id": self.clock.boot_id,
            "version": self.version,
            "instance_id": self.instance_id,
            "started_at": self.started_at,
            "backlog": self.outbox.backlog(),
            "backlog_oldest_at": self.outbox.backlog_oldest_at(),
            "clock_skew_s": self.clock_skew_s,
            "orders_held": self.outbox.order_count(),
            "orders_cursor": self.outbox.orders_cursor(),
            "disk_free_bytes": self._disk_free(),
            "broker_state": self.broker_state,
            "name_conflict": self.name_conflict,
        }
        fields.update(self.health())
        return StationStatus(**_fitted(fields))

    def _maybe_publish_status(self) -> None:
        now = time.monotonic()
        status = self.status()
        # Clocks and free space move all the time; only a change of anything else is
        # news before status_every.
        steady = {"at_wall": 0.0, "at_mono": None, "disk_free_bytes": None, "clock_skew_s": None}
        body = encode(status.model_copy(update=steady))
        with self._status_lock:
            if body == self._last_status and now - self._status_at < self.status_every:
                return
            self._last_status = body
            self._status_at = now
        self.session.publish(topics.status(self.site, self.station), encode(status), retain=True)
