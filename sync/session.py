"""One owner of an MQTT session: paho in the background, handlers by topic filter.

:class:`MqttSession` is the only code that touches paho's callbacks. It connects with
the persistent-session settings of :func:`sync.mqtt.make_client` (MQTT v5, clean start
off, a session expiry), subscribes every route again on every connect (the broker's
session may have expired), routes each message to the handler of the filter it
matches, and guards every callback: nothing raised by a handler or a listener reaches
paho's network thread, which would stop the session for good. A handler's exception is
logged once, with the topic and the handler, and the message counts as not handled.

"Not handled" is about the application, not MQTT: paho still acknowledges the message
to the broker (holding the PUBACK back would stall the broker's in-flight window for
this client until it reconnects). Recovery is the protocol's: a station resends events
until central's ack names them, and central sends orders again while a station's
status shows an old cursor.

Publishing returns a :class:`Delivery`. Under MQTT v5 the broker's PUBACK carries a
reason code; one of 0x80 and above (0x87 not authorised, 0x97 quota exceeded, ...)
means the broker did not take the message: the delivery is refused, counted as such,
and logged — paho alone would report it as published.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from sync.mqtt import BrokerURL, make_client, parse_mqtt_url

__all__ = [
    "Delivery",
    "Handler",
    "Message",
    "MqttSession",
    "SessionListener",
    "SessionState",
    "Will",
    "disconnect_words",
    "why_unreachable",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Message:
    """One message received on a routed topic."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Will:
    """The last will, QoS 1 and retained: the broker publishes it when the session
    ends without a goodbye (a crash, a power cut, a lost network)."""

    topic: str
    payload: bytes


@dataclasses.dataclass(frozen=True, kw_only=True)
class SessionState:
    """Whether the session is connected, why (in words), and since when (monotonic s)."""

    connected: bool
    reason: str
    since: float


Handler = Callable[[Message], None]
SessionListener = Callable[[SessionState], None]


class Delivery:
    """What became of one publish.

    QoS 1: delivered when the broker's PUBACK carries a success reason code (below
    0x80; 0x10 "no matching subscribers" is a success), refused when it carries a
    failure. QoS 0: delivered once written to the socket. ``delivered`` is None until
    then; a message paho could not even queue is refused at once.
    """

    def __init__(self, *, topic: str, qos: int) -> None:
        self.topic = topic
        self.qos = qos
        self.mid: int | None = None
        self._settled = threading.Event()
        self._delivered: bool | None = None
        self._reason = "waiting for the broker"

    def _settle(self, *, delivered: bool, reason: str) -> None:
        self._delivered = delivered
        self._reason = reason
        self._settled.set()

    @property
    def delivered(self) -> bool | None:
        """True: the broker took it; False: it did not; None: no answer yet."""
        return self._delivered

    @property
    def reason(self) -> str:
        """The broker's answer in words (its reason code's name)."""
        return self._reason

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for the answer; True only when delivered."""
        self._settled.wait(timeout)
        return self._delivered is True

    def __repr__(self) -> str:
        return f"<Delivery {self.topic} mid={self.mid} {self._reason}>"


@dataclasses.dataclass(kw_only=True)
class _Route:
    topic_filter: str
    handler: Handler
    qos: int
    failing: bool = False


class _CallbackErrorsOnly(logging.Filter):
    """Of paho's errors, keep the callback exceptions it caught: the others (a socket
    gone while stopping, a failed read) reach us as disconnects, in words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or record.getMessage().startswith("Caught exception")


_PAHO_LOG = logging.getLogger(f"{__name__}.paho")
_PAHO_LOG.addFilter(_CallbackErrorsOnly())


def _matches(topic_filter: str, topic: str) -> bool:
    # A shared subscription ($share/group/filter) delivers topics of its inner filter.
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    return bool(mqtt.topic_matches_sub(topic_filter, topic))


def _name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def why_unreachable(broker: BrokerURL, *, timeout: float = 2.0) -> str:
    """Why a connection to ``broker`` failed, in words, found by trying it again.

    paho reports a failed connect without its reason; a name that does not resolve, a
    refused port and a silent host each need a different fix.
    """
    try:
        socket.getaddrinfo(broker.host, broker.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"no such host {broker.host!r} ({getattr(exc, 'strerror', None) or exc})"
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout):
            pass
    except TimeoutError:
        return f"no answer from {broker.host}:{broker.port} within {timeout:.0f} s"
    except OSError as exc:
        return (exc.strerror or str(exc) or type(exc).__name__).lower()
    if broker.tls:
        return "the TLS handshake failed (check the broker's certificate and the CA)"
    return "the connection failed right after it was made"


# What a disconnect's reason code means, for a person; paho says "Unspecified error"
# for a broker that simply went away.
_ENDED_BY_BROKER = {
    "Session taken over": "another client connected with the same client id",
    "Server shutting down": "the broker is shutting down",
    "Not authorized": "not authorised",
    "Keep alive timeout": "no keep-alive from this client in time",
}


def disconnect_words(reason: str, *, from_broker: bool) -> str:
    """Why an established connection ended, in words."""
    if from_broker:
        return f"the broker ended the session: {_ENDED_BY_BROKER.get(reason, reason)}"
    if reason == "Keep alive timeout":
        return "the broker stopped answering (no reply within the keep-alive time)"
    if reason in ("Unspecified error", "Success"):
        return "lost the connection to the broker: it stopped, or the network failed"
    return f"lost the connection to the broker: {reason}"


class MqttSession:
    """One MQTT session to one broker, run by paho in a background thread.

    Register handlers with :meth:`route` and listeners with :meth:`on_connect` /
    :meth:`on_disconnect` / :meth:`on_state` (before or after :meth:`start`), publish
    with :meth:`publish`, read :attr:`state`. Handlers and listeners run on paho's
    network thread: they must not block for long, and what they raise is logged, never
    propagated.

    The session logs each change of its state in one line (not each retry); with
    ``log_states=False`` it leaves that to its owner, who can say more (a station
    adds the records it holds) through :meth:`on_state`.
    """

    def __init__(
        self,
        *,
        client_id: str,
        url: str | BrokerURL,
        will: Will | None = None,
        session_expiry: int = 24 * 3600,
        keepalive: int = 15,
        log_states: bool = True,
    ) -> None:
        self.broker = parse_mqtt_url(url) if isinstance(url, str) else url
        self.log_states = log_states
        self.client_id = client_id
        self._client = make_client(
            client_id=client_id,
            url=self.broker,
            will=(will.topic, will.payload) if will is not None else None,
            session_expiry=session_expiry,
            keepalive=keepalive,
        )
        # A backstop: our callbacks catch everything, but should one ever raise, paho
        # logs it instead of ending its network thread.
        self._client.suppress_exceptions = True
        self._client.enable_logger(_PAHO_LOG)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        self._connect_listeners: list[SessionListener] = []
        self._disconnect_listeners: list[SessionListener] = []
        self._state_listeners: list[SessionListener] = []
        self._pending: dict[int, Delivery] = {}
        self._early: dict[int, tuple[bool, str]] = {}
        self._refused_topics: set[str] = set()
        self._state = SessionState(connected=False, reason="not started", since=time.monotonic())
        self._connected = threading.Event()
        #: Set once the broker has answered the subscriptions sent on this connect.
        self._subscribed = threading.Event()
        self._subscribing: int | None = None
        self._stopping = False
        self._started = False
        #: Messages the broker took, and messages it did not (a failure reason code,
        #: or paho could not queue them).
        self.delivered = 0
        self.refused = 0

    # -- configuration -----------------------------------------------------------------

    def route(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None:
        """Send messages matching ``topic_filter`` to ``handler``; subscribed on every
        connect (and now, when connected). One handler per filter."""
        with self._lock:
            if any(r.topic_filter == topic_filter for r in self._routes):
                raise ValueError(f"{topic_filter!r} is routed already")
            self._routes.append(_Route(topic_filter=topic_filter, handler=handler, qos=qos))
            connected = self._connected.is_set()
        if connected:
            self._client.subscribe(topic_filter, qos=qos)

    def unsubscribe(self, topic_filter: str) -> None:
        """Drop a subscription the broker may still hold for this session (a persistent
        session keeps what an earlier run subscribed to); nothing while disconnected."""
        if self.connected:
            self._client.unsubscribe(topic_filter)

    def on_connect(self, listener: SessionListener) -> None:
        """Call ``listener(state)`` after each successful connect (subscriptions sent)."""
        with self._lock:
            self._connect_listeners.append(listener)

    def on_disconnect(self, listener: SessionListener) -> None:
        """Call ``listener(state)`` each time an established connection ends."""
        with self._lock:
            self._disconnect_listeners.append(listener)

    def on_state(self, listener: SessionListener) -> None:
        """Call ``listener(state)`` each time the state changes: connected, or not
        connected for a new reason (retries with the same reason are not changes)."""
        with self._lock:
            self._state_listeners.append(listener)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself (1–10 s backoff)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._state = SessionState(connected=False, reason="connecting", since=time.monotonic())
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly (no last will) and stop paho's thread."""
        with self._lock:
            self._stopping = True
            started, self._started = self._started, False
        if not started:
            return
        if self.connected:
            self._client.disconnect()
        self._client.loop_stop()
        self._set_state(connected=False, reason="stopped")

    def network_alive(self) -> bool:
        """True while paho's network thread runs (or the session was never started)."""
        with self._lock:
            if not self._started:
                return True
        thread: threading.Thread | None = getattr(self._client, "_thread", None)
        return thread is not None and thread.is_alive()

    @property
    def connected(self) -> bool:
        """True while the broker has accepted this session."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the broker to accept the session."""
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the broker to accept the session and answer the
        subscriptions sent on this connect (a refused one is logged): from then on a
        message published to a routed topic reaches this session."""
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return False
        return self._subscribed.wait(max(0.0, deadline - time.monotonic()))

    @property
    def state(self) -> SessionState:
        """Connected or not, and the last reason in words."""
        with self._lock:
            return self._state

    def _set_state(self, *, connected: bool, reason: str) -> SessionState:
        with self._lock:
            previous = self._state
            changed = (previous.connected, previous.reason) != (connected, reason)
            if changed:
                self._state = SessionState(
                    connected=connected, reason=reason, since=time.monotonic()
                )
            state = self._state
            listeners = list(self._state_listeners) if changed else []
        if connected:
            self._connected.set()
        else:
            self._subscribed.clear()
            self._connected.clear()
        self._notify(listeners, state)
        return state

    def _log(self, level: int, message: str, *args: object) -> None:
        if self.log_states:
            log.log(level, message, *args)

    # -- publishing --------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> Delivery:
        """Publish ``payload``; the returned :class:`Delivery` says what the broker did.

        While disconnected, a QoS 1 message waits in paho's queue and goes out on the
        next connect; a QoS 0 message is refused at once.
        """
        delivery = Delivery(topic=topic, qos=qos)
        # paho may call on_publish before publish() returns, so an early answer is
        # parked in _early; paho's own lock is never taken while ours is held.
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        delivery.mid = info.mid
        queued = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
        )
        with self._lock:
            early = self._early.pop(info.mid, None)
            if queued and early is None:
                self._pending[info.mid] = delivery
        if not queued:
            self._settle(delivery, ok=False, reason=mqtt.error_string(info.rc))
        elif early is not None:
            self._settle(delivery, ok=early[0], reason=early[1])
        return delivery

    def _settle(self, delivery: Delivery, *, ok: bool, reason: str) -> None:
        with self._lock:
            if ok:
                self.delivered += 1
                again = delivery.topic in self._refused_topics
                self._refused_topics.discard(delivery.topic)
            else:
                self.refused += 1
                first = delivery.topic not in self._refused_topics
                self._refused_topics.add(delivery.topic)
        delivery._settle(delivered=ok, reason=reason)
        if not ok and first:
            # Once per topic until a message on it gets through again.
            log.warning("the broker did not take a message on %s: %s", delivery.topic, reason)
        elif ok and again:
            log.info("the broker takes messages on %s again", delivery.topic)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties,
    ) -> None:
        try:
            ok = not reason_code.is_failure
            reason = f"{reason_code} (0x{reason_code.value:02x})"
            with self._lock:
                delivery = self._pending.pop(mid, None)
                if delivery is None:
                    self._early[mid] = (ok, reason)
            if delivery is not None:
                self._settle(delivery, ok=ok, reason=reason)
        except Exception:
            log.exception("error while noting the broker's answer to message %s", mid)

    # -- paho callbacks (network thread) -----------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        try:
            if reason_code.is_failure:
                previous = self.state.reason
                words = f"the broker refused the connection: {reason_code}"
                self._set_state(connected=False, reason=words)
                if previous != words:
                    self._log(logging.WARNING, "%s (%s)", words, self.broker)
                return
            with self._lock:
                routes = [(r.topic_filter, r.qos) for r in self._routes]
                listeners = list(self._connect_listeners)
            self._subscribed.clear()
            if routes:
                # The SUBACK comes on this (the network) thread, after this callback.
                self._subscribing = client.subscribe(routes)[1]
            else:
                self._subscribed.set()
            state = self._set_state(connected=True, reason="connected")
            self._log(
                logging.INFO, "connected to the broker at %s as %s", self.broker, self.client_id
            )
            self._notify(listeners, state)
        except Exception:
            log.exception("error in the connect callback of %s", self.client_id)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        try:
            if self._stopping:
                return
            words = f"cannot reach the broker at {self.broker}: {why_unreachable(self.broker)}"
            if self.state.reason != words:
                self._log(logging.WARNING, "%s; retrying", words)
            self._set_state(connected=False, reason=words)
        except Exception:
            log.exception("error in the connect-failure callback of %s", self.client_id)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        try:
            was = self.connected
            with self._lock:
                stopping = self._stopping
                listeners = list(self._disconnect_listeners)
            if not was and not stopping:
                # A connection that never got as far as being accepted. A refusal is
                # already in the state; otherwise the other end closed the socket
                # before answering: not an MQTT broker, or a TLS mismatch.
                if not self.state.reason.startswith("the broker refused"):
                    words = (
                        f"the broker at {self.broker} closed the connection before "
                        "accepting it (is it an MQTT broker, and does it expect "
                        f"{'plain MQTT' if not self.broker.tls else 'TLS'}?)"
                    )
                    if self.state.reason != words:
                        self._log(logging.WARNING, "%s; retrying", words)
                    self._set_state(connected=False, reason=words)
                return
            if stopping:
                words = "stopped"
            else:
                words = disconnect_words(
                    str(reason_code), from_broker=flags.is_disconnect_packet_from_server
                )
            state = self._set_state(connected=False, reason=words)
            if was:
                if not stopping:
                    self._log(logging.WARNING, "%s (%s); reconnecting", words, self.broker)
                self._notify(listeners, state)
        except Exception:
            log.exception("error in the disconnect callback of %s", self.client_id)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        try:
            refused = [str(rc) for rc in reason_codes if rc.is_failure]
            if refused:
                log.warning("the broker refused a subscription: %s", ", ".join(refused))
            if mid == self._subscribing:
                self._subscribing = None
                self._subscribed.set()
        except Exception:
            log.exception("error in the subscribe callback of %s", self.client_id)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            message = Message(
                topic=msg.topic, payload=bytes(msg.payload), qos=msg.qos, retain=bool(msg.retain)
            )
        except Exception as exc:  # a topic that is not UTF-8
            log.warning("dropped a message with an unreadable topic: %s", exc)
            return
        with self._lock:
            routes = [r for r in self._routes if _matches(r.topic_filter, message.topic)]
        if not routes:
            log.warning("dropped a message on %s: no handler for it", message.topic)
            return
        for route in routes:
            self._dispatch(route, message)

    def _dispatch(self, route: _Route, message: Message) -> bool:
        try:
            route.handler(message)
        except Exception as exc:
            # One record per failure; the traceback only for the first of a run, so a
            # full disk does not write one per message.
            log.error(
                "%s failed on a message on %s (%d bytes); not handled: %s: %s",
                _name(route.handler),
                message.topic,
                len(message.payload),
                type(exc).__name__,
                exc,
                exc_info=not route.failing,
            )
            route.failing = True
            return False
        route.failing = False
        return True

    def _notify(self, listeners: list[SessionListener], state: SessionState) -> None:
        for listener in listeners:
            try:
                listener(state)
            except Exception:
                log.exception("session listener %s failed", _name(listener))

    def __repr__(self) -> str:
        state = self.state
        return f"<MqttSession {self.client_id} {state.reason}>"
