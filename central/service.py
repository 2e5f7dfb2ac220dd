"""The MQTT side of central: ingest, acks, central's clock and the orders downlink.

Threads, and why: the MQTT session's network thread hands each batch to the ingest
thread (store, commit, then ack — in that order, so an ack always names committed
events; the network thread stays free to send that ack at once), which then wakes the
reactor thread (the watch's reactions to what was stored, :mod:`central.watch.reactor`,
out of the ack's way); statuses go to the status thread; one downlink thread polls
the database for new orders (an import from another process must reach the stations
within about a second) and publishes them, and every ``clock_every`` seconds sends
each online station an ack carrying central's time. A message that cannot be taken
is set aside in the dead letters (:mod:`central.deadletters`) and the handler returns
as if it had been handled: one bad message never blocks a station's stream. The
process around it (start-up checks, the web page, signals) is :mod:`packline.serve`.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, error_reason, stations, utcnow
from central.deadletters import record_dead_letter
from central.health import DEFAULT_BACKLOG_ALERT_AFTER
from central.ingest import BatchRejected, StatusUpdate, ingest_batch, record_statuses
from central.names import expire_conflicts, owner_words
from central.orders import current_order_seq, orders_after
from central.timefix import DEFAULT_SKEW_TOLERANCE
from central.watch.reactor import react_pending
from sync import topics
from sync.messages import Ack, EventBatch, OrdersMessage, StationStatus, WireError, decode, encode
from sync.sdnotify import thread_probe
from sync.session import Message, MqttSession, SessionState

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "SHARE_GROUP", "CentralService", "DeadLetter"]

log = logging.getLogger(__name__)

#: A station message bigger than this (bytes) is set aside unread.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024

#: The shared subscription's group: each batch goes to one of the central processes
#: subscribed as ``$share/packline-central/packline/v1/{site}/stations/+/events``.
SHARE_GROUP = "packline-central"

#: How long the broker keeps a named worker's session (and the batches routed to it)
#: after it went away: long enough for a restart, short enough that a worker taken out
#: of service does not hold batches the others could take (the stations resend them).
WORKER_SESSION_EXPIRY = 60

#: Batches received and not yet stored, at most (more are left to be sent again).
INGEST_QUEUE = 256
#: Seconds between reads of every station's cursor while the orders do not change.
RESCAN_EVERY = 5.0
#: Seconds between the reactor's looks for stored events not reacted to, when no
#: batch of its own woke it.
REACT_EVERY = 2.0
#: Statuses recorded in one transaction, at most (a burst of them shares a commit).
STATUS_BURST = 200


class DeadLetter(Exception):
    """A station's message central cannot take; ``reason`` is one word, ``str()`` why."""

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        station: str | None = None,
        instance_id: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.station = station
        self.instance_id = instance_id
        self.key = key


class CentralService:
    """MQTT side of central for one site.

    Subscribes to every station's ``events`` and ``status``; stores batches and acks the
    committed contiguous seq; keeps the stations table current; sends each station the
    orders above its cursor, and every ``clock_every`` seconds an ack carrying central's
    time to each online station. A message it cannot take goes to the dead letters
    (counted in :attr:`dead_letters`) and the next one is handled as if nothing
    happened. ``start()`` returns at once (the session reconnects by itself);
    ``stop()`` ends both threads.

    Several processes may serve one site on one PostgreSQL database: events come
    through the shared subscription (:data:`SHARE_GROUP`), so each batch is stored by
    one of them, which acks what its own commit made contiguous. Each names itself
    with ``worker`` (its MQTT client id, which must differ between processes). What
    must happen once per site — statuses, the downlink, central's clock — runs only
    while ``leader()`` is true (:class:`central.leader.Leadership`).
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
        skew_tolerance: float = DEFAULT_SKEW_TOLERANCE,
        backlog_alert_after: float = DEFAULT_BACKLOG_ALERT_AFTER,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        clock_every: float = 30.0,
        worker: str = "",
        leader: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.leader: Callable[[], bool] = leader or (lambda: True)
        self.site = site
        self.poll_interval = poll_interval
        self.chunk_size = chunk_size
        self.skew_tolerance = skew_tolerance
        self.backlog_alert_after = backlog_alert_after
        self.max_message_bytes = max_message_bytes
        self.clock_every = clock_every
        #: Messages set aside since start, by reason (the table keeps them all).
        self.dead_letters: collections.Counter[str] = collections.Counter()
        self._clock_at = 0.0
        self._refused_said: set[tuple[str, str | None]] = set()
        # The highest seq this process acked per (station, instance): an ack is never
        # lower than one sent before (the clock's read may be older than a commit).
        self._acks_sent: dict[tuple[str, str | None], int] = {}
        self._acks_lock = threading.Lock()
        self._was_leader = False
        # A station whose status still shows an old cursor this long after a push is
        # sent the missing orders again (the earlier push may have been lost).
        self.repush_after = repush_after
        # A fixed client id per site (and worker): the broker's persistent session then
        # keeps the batches that arrive while central restarts.
        default_id = f"packline-central-{site}" + (f"-{worker}" if worker else "")
        self.session = MqttSession(
            client_id=client_id or default_id,
            url=mqtt_url,
            log_states=False,
            session_expiry=WORKER_SESSION_EXPIRY if worker else 24 * 3600,
        )
        #: Log each change of the broker connection (start-up says its own words first).
        self.say_states = True
        self.session.on_state(self._on_state)
        self.session.route(
            f"$share/{SHARE_GROUP}/{topics.subscription(site, 'events')}", self._on_events
        )
        self.session.route(topics.subscription(site, "status"), self._on_status)
        self.session.on_connect(self._on_connect)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._statuses: queue.SimpleQueue[StatusUpdate] = queue.SimpleQueue()
        self._pushed: dict[str, int] = {}
        self._last_push: dict[str, float] = {}
        #: The order seq at the last read of every station's cursor, and when it was.
        self._scanned_for = -1
        self._scanned_at = 0.0
        self._downlink: threading.Thread | None = None
        # Batches wait here for the ingest thread: the network thread stays free to
        # send each ack the moment its commit is done (an ack queued behind a run of
        # incoming batches would reach the station late, and after a later worker's).
        self._batches: queue.Queue[Message] = queue.Queue(maxsize=INGEST_QUEUE)
        #: Batches left untaken because ingest was that far behind (sent again).
        self.busy_drops = 0
        self._ingest: threading.Thread | None = None
        # Statuses wait here (decoded, with the time they came) for the status thread,
        # which records whatever has gathered in one transaction. A status lost in a
        # crash is no loss: it is retained at the broker and sent again every period.
        self._status_in: queue.SimpleQueue[tuple[StationStatus, dt.datetime]] = queue.SimpleQueue()
        self._status_thread: threading.Thread | None = None
        # Set after each batch is acknowledged: the reactor thread reacts to what was
        # stored (central.watch.reactor), out of the ack's way.
        self._stored = threading.Event()
        self._reactor: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect (asynchronously) and start the ingest and downlink threads."""
        self._ingest = threading.Thread(
            target=self._ingest_loop, name="central-ingest", daemon=True
        )
        self._ingest.start()
        self._status_thread = threading.Thread(
            target=self._status_loop, name="central-status", daemon=True
        )
        self._status_thread.start()
        self._reactor = threading.Thread(
            target=self._reactor_loop, name="central-reactor", daemon=True
        )
        self._reactor.start()
        self.session.start()
        self._downlink = threading.Thread(
            target=self._downlink_loop, name="central-downlink", daemon=True
        )
        self._downlink.start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the broker to accept us and answer our
        subscriptions: from then on every station's batch reaches us."""
        return self.session.wait_subscribed(timeout)

    def health_probes(self) -> dict[str, Callable[[], str | None]]:
        """What systemd's watchdog checks of this service (:mod:`sync.sdnotify`):
        the MQTT session's network thread and the ingest, status, reactor and downlink
        threads."""

        def network() -> str | None:
            return None if self.session.network_alive() else "the MQTT network thread stopped"

        return {
            "mqtt": network,
            "ingest": thread_probe("ingest", lambda: self._ingest),
            "status": thread_probe("status", lambda: self._status_thread),
            "reactor": thread_probe("reactor", lambda: self._reactor),
            "downlink": thread_probe("downlink", lambda: self._downlink),
        }

    @property
    def last_connect_error(self) -> str | None:
        """Why the session is not connected, in words; None while it is."""
        state = self.session.state
        return None if state.connected else state.reason

    def stop(self) -> None:
        """Stop ingest and the downlink, disconnect cleanly and stop the session.

        Batches still waiting for the ingest thread are not acked: their stations
        send them again."""
        self._stop.set()
        self._wake.set()
        self._stored.set()
        for thread in (self._ingest, self._status_thread, self._reactor, self._downlink):
            if thread is not None:
                thread.join(timeout=10)
        self.session.stop()

    # ------------------------------------------------------------------ session handlers

    def _on_state(self, state: SessionState) -> None:
        if not self.say_states or state.reason == "stopped":
            return
        if state.connected:
            log.info("connected to the broker at %s", self.session.broker)
        else:
            where = "" if str(self.session.broker) in state.reason else f" ({self.session.broker})"
            log.warning("%s%s; retrying, and serving the page meanwhile", state.reason, where)

    def _on_connect(self, _state: SessionState) -> None:
        # A session kept from a release that subscribed to every batch itself would
        # get each one twice (once shared, once its own).
        self.session.unsubscribe(topics.subscription(self.site, "events"))
        log.info("connected to the broker; serving site %s", self.site)
        self._wake.set()

    def _station(self, message: Message) -> str:
        """The station a message is from, by its topic; its size checked."""
        try:
            site, station, _leaf = topics.station_of(message.topic)
        except ValueError:
            raise DeadLetter("misaddressed", f"not a station topic: {message.topic}") from None
        if site != self.site:
            raise DeadLetter(
                "misaddressed", f"for site {site}, and this central serves {self.site}"
            )
        if len(message.payload) > self.max_message_bytes:
            raise DeadLetter(
                "oversized",
                f"{len(message.payload):,} bytes, more than max_message_bytes "
                f"({self.max_message_bytes:,})",
                station=station,
            )
        return station

    def _set_aside(self, message: Message, letter: DeadLetter) -> None:
        """Keep a message in the dead letters and count it; never raises."""
        self.dead_letters[letter.reason] += 1
        try:
            with self.engine.begin() as conn:
                _row, times = record_dead_letter(
                    conn,
                    topic=message.topic,
                    reason=letter.reason,
                    detail=str(letter),
                    payload=message.payload,
                    now=utcnow(),
                    station=letter.station,
                    instance_id=letter.instance_id,
                    key=letter.key,
                )
        except sa.exc.SQLAlchemyError as exc:
            reason = error_reason(exc)
            log.error("could not keep a dead letter from %s: %s", message.topic, reason)
            times = 1
        level = logging.WARNING if times == 1 else logging.DEBUG
        log.log(
            level,
            "set aside a message on %s (%s, %d bytes): %s",
            message.topic,
            letter.reason,
            len(message.payload),
            letter,
        )

    def _ack(
        self,
        station: str,
        *,
        seq: int,
        instance_id: str | None,
        name_conflict: str | None,
        at: float | None = None,
    ) -> None:
        """Acknowledge ``seq`` to ``station``; ``at``: central's time of the commit it
        names (:attr:`central.ingest.BatchResult.at`), else now."""
        if not self.session.connected:
            # Queued now, it would go out after the reconnect, behind acks other workers
            # sent meanwhile; the station sends its batch again and gets a fresh one.
            return
        with self._acks_lock:
            key = (station, instance_id)
            seq = max(seq, self._acks_sent.get(key, 0))
            self._acks_sent[key] = seq
        ack = Ack(
            station=station,
            seq=seq,
            instance_id=instance_id,
            at=at if at is not None else time.time(),
            name_conflict=name_conflict,
        )
        self.session.publish(topics.ack(self.site, station), encode(ack))

    def _on_events(self, message: Message) -> None:
        try:
            self._batches.put_nowait(message)
        except queue.Full:
            # Never block the network thread (acks wait on it); the station sends the
            # batch again when no ack comes.
            self.busy_drops += 1
            log.debug("ingest is %d batches behind; left one on %s", INGEST_QUEUE, message.topic)

    def _ingest_loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                message = self._batches.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._take_events(message)
                failing = False
            except DeadLetter as letter:
                self._set_aside(message, letter)
            except Exception as exc:
                # Not acked: the station sends it again. The traceback once per run.
                log.error(
                    "could not take a batch on %s: %s: %s",
                    message.topic,
                    type(exc).__name__,
                    exc,
                    exc_info=not failing,
                )
                failing = True

    def _take_events(self, message: Message) -> None:
        station = self._station(message)
        batch = _decode_for(EventBatch, "batch", station=station, payload=message.payload)
        try:
            result = ingest_batch(
                self.engine,
                batch,
                site=self.site,
                topic=message.topic,
                payload=message.payload,
                received_at=utcnow(),
                skew_tolerance=self.skew_tolerance,
            )
        except BatchRejected as exc:
            raise DeadLetter("misaddressed", str(exc), station=station) from None
        except sa.exc.SQLAlchemyError as exc:
            # Not acked: the station resends it once the database is back.
            log.error("could not store a batch of %s: %s", station, exc)
            return
        if not result.accepted:
            self.dead_letters["name_conflict"] += 1
            said = (station, batch.instance_id)
            if said not in self._refused_said:
                self._refused_said.add(said)
                log.warning(
                    "refused %d events of station %s from instance %s: another bench owns "
                    "the name (kept in the dead letters; they stay in that bench's outbox)",
                    len(batch.events),
                    station,
                    batch.instance_id,
                )
        # Only now, after the commit, may the station drop these events. A refused
        # batch is answered too: seq 0 for its instance, and the words for its screen.
        self._ack(
            station,
            seq=result.acked,
            instance_id=batch.instance_id,
            name_conflict=result.name_conflict,
            at=result.at,
        )
        self._stored.set()
        if result.integrity_refused:
            self.dead_letters["integrity"] += result.integrity_refused
        log.debug(
            "station %s: stored %d events, acked %d", station, len(batch.events), result.acked
        )

    def _on_status(self, message: Message) -> None:
        if not message.payload:  # a cleared retained status
            return
        if not self.leader():
            # Every process gets every status; the leader keeps the stations' rows (and
            # sends the orders they ask for), the others would only repeat it.
            return
        try:
            self._take_status(message)
        except DeadLetter as letter:
            self._set_aside(message, letter)

    def _take_status(self, message: Message) -> None:
        station = self._station(message)
        status = _decode_for(StationStatus, "status", station=station, payload=message.payload)
        self._status_in.put((status, utcnow()))

    def _reactor_loop(self) -> None:
        """React to stored events soon after each batch is acknowledged, and every
        :data:`REACT_EVERY` seconds to what another process stored or left."""
        failing = False
        while not self._stop.is_set():
            self._stored.wait(timeout=REACT_EVERY)
            self._stored.clear()
            if self._stop.is_set():
                return
            try:
                react_pending(self.engine)
                failing = False
            except Exception as exc:  # the events stay stored: the next pass takes them
                log.error(
                    "could not react to stored events: %s: %s",
                    type(exc).__name__,
                    exc,
                    exc_info=not failing,
                )
                failing = True

    def _status_loop(self) -> None:
        while not self._stop.is_set():
            try:
                burst = [self._status_in.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(burst) < STATUS_BURST:
                try:
                    burst.append(self._status_in.get_nowait())
                except queue.Empty:
                    break
            try:
                self._record_statuses(burst)
            except Exception as exc:  # never let the thread die: the next burst may pass
                log.error("could not record statuses: %s: %s", type(exc).__name__, exc)

    def _record_statuses(self, burst: list[tuple[StationStatus, dt.datetime]]) -> None:
        """Record a burst in one transaction; when that fails, each on its own, so one
        station's bad status cannot keep the others' out."""
        try:
            updates = record_statuses(
                self.engine,
                burst,
                site=self.site,
                skew_tolerance=self.skew_tolerance,
                backlog_alert_after=self.backlog_alert_after,
            )
        except sa.exc.OperationalError as exc:
            # The database is away: one line for the burst (the stations report again).
            what = f"the status of {burst[0][0].station}" if len(burst) == 1 else "statuses"
            log.error("could not record %s: %s", what, _first_line(exc))
            return
        except sa.exc.SQLAlchemyError as exc:
            if len(burst) > 1:  # one station's status is refused: find it, keep the rest
                for one in burst:
                    self._record_statuses([one])
                return
            log.error(
                "could not record the status of %s: %s", burst[0][0].station, _first_line(exc)
            )
            return
        for (status, _at), update in zip(burst, updates, strict=True):
            self._after_status(status, update)

    def _after_status(self, status: StationStatus, update: StatusUpdate) -> None:
        station = status.station
        if not update.accepted:
            if status.online and update.name_conflict:
                self._ack(
                    station,
                    seq=0,
                    instance_id=status.instance_id,
                    name_conflict=update.name_conflict,
                )
            return
        if update.came_online:
            log.info("station %s is online", station)
            # Its clock is judged by the time in acks: give it one now.
            self._ack_time(station)
        elif not status.online:
            log.info("station %s is offline", station)
            # An offline status (the last will) carries no real cursor: pushing on it
            # would queue every open order for a station that is not there.
            return
        self._statuses.put(update)
        self._wake.set()

    # ------------------------------------------------------------------ central's clock

    def _ack_time(self, station: str) -> None:
        self._ack_current(station, words_of_conflict=True)

    def _ack_current(
        self, station: str, *, words_of_conflict: bool = False, words: str | None = None
    ) -> None:
        """Ack the station's committed mark (with central's time).

        The row is read FOR SHARE and the ack published before that lock goes: a worker
        committing more for this station meanwhile waits, so its (higher) ack is sent
        after this one, never before it.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(stations.c.acked_seq, stations.c.instance_id)
                .where(stations.c.station == station)
                .with_for_update(read=True)
            ).first()
            if row is None:
                return
            if words_of_conflict:
                words = owner_words(conn, station=station, now=utcnow())
            self._ack(station, seq=row.acked_seq, instance_id=row.instance_id, name_conflict=words)

    def send_clock(self) -> int:
        """Send each online station of the site an ack with central's time (and the
        words of a name conflict, or none once it ended); returns how many were sent.

        Runs every ``clock_every`` seconds in the downlink thread; callable in tests.
        """
        if not self.session.connected:
            return 0
        now = utcnow()
        with self.engine.begin() as conn:
            expire_conflicts(conn, site=self.site, now=now)
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            online = conn.execute(
                sa.select(stations.c.station, stations.c.name_conflict).where(
                    stations.c.site == self.site, stations.c.online
                )
            ).all()
            words = {
                r.station: owner_words(conn, station=r.station, now=now)
                for r in online
                if r.name_conflict is not None
            }
        for row in online:
            self._ack_current(row.station, words=words.get(row.station))
        return len(online)

    # ------------------------------------------------------------------ orders downlink

    def _downlink_loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            if not self._lead():
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                continue
            try:
                self.push_orders()
                if time.monotonic() - self._clock_at >= self.clock_every:
                    self._clock_at = time.monotonic()
                    self.send_clock()
                failing = False
            except Exception as exc:
                # Log the first failure in full, then quietly retry each poll.
                if not failing:
                    log.exception("orders downlink failed: %s", exc)
                failing = True
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _lead(self) -> bool:
        """Whether to do the leader's part now; a new leader starts from the database."""
        leading = self.leader()
        if leading and not self._was_leader:
            self._pushed.clear()
            self._last_push.clear()
            self._clock_at = 0.0
            self._scanned_for = -1
        elif not leading:
            while True:
                try:
                    self._statuses.get_nowait()
                except queue.Empty:
                    break
        self._was_leader = leading
        return leading

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
        # Every station's row is read when the orders changed (and now and then, for a
        # station met only in the database): not on every status that wakes this
        # thread, which with 500 stations was most of central's work.
        if current == self._scanned_for and time.monotonic() - self._scanned_at < RESCAN_EVERY:
            return
        self._scanned_for, self._scanned_at = current, time.monotonic()
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
    cls: type[_FromStation], what: str, *, station: str, payload: bytes
) -> _FromStation:
    """Decode a station's message; raises :class:`DeadLetter` for one that does not
    decode, or names another station than its topic."""
    try:
        message = decode(cls, payload)
    except WireError as exc:
        raise DeadLetter(exc.reason, f"{what}: {exc}", station=station) from None
    if message.station != station:
        raise DeadLetter(
            "misaddressed",
            f"a {what} of station {message.station} on the topic of station {station}",
            station=station,
        )
    return message


def _first_line(exc: BaseException) -> str:
    """An error's first line (a database error goes on with its SQL and parameters)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
