"""MqttSession over a real Mosquitto: routes, guarded callbacks, PUBACK reason codes, state."""

from __future__ import annotations

import logging
import queue
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from packline.devbroker import MosquittoBroker
from sync.session import Message, MqttSession, SessionState
from tests.support.brokers import AclBroker
from tests.support.waiting import wait_for

pytestmark = pytest.mark.mqtt


def _id() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def session(broker: MosquittoBroker) -> Iterator[MqttSession]:
    s = MqttSession(client_id=_id(), url=broker.url, session_expiry=0)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def sender(broker: MosquittoBroker) -> Iterator[MqttSession]:
    s = MqttSession(client_id=_id(), url=broker.url, session_expiry=0)
    s.start()
    assert s.wait_connected(20)
    try:
        yield s
    finally:
        s.stop()


def deliver(sender: MqttSession, topic: str, inbox: queue.SimpleQueue[Message]) -> Message:
    """Publish a probe until it arrives: the receiver's SUBSCRIBE may still be on its way."""
    for _ in range(40):
        sender.publish(topic, b"probe")
        try:
            return inbox.get(timeout=0.5)
        except queue.Empty:
            continue
    raise AssertionError(f"nothing arrived on {topic}")


def drain(inbox: queue.SimpleQueue[Message]) -> None:
    while not inbox.empty():
        inbox.get()


def test_messages_go_to_the_handler_of_the_filter_they_match(
    session: MqttSession, sender: MqttSession, caplog: pytest.LogCaptureFixture
) -> None:
    root = f"t/{uuid.uuid4().hex[:8]}"
    acks: queue.SimpleQueue[Message] = queue.SimpleQueue()
    orders: queue.SimpleQueue[Message] = queue.SimpleQueue()
    session.route(f"{root}/+/ack", acks.put)
    session.route(f"{root}/b1/orders", orders.put)
    with pytest.raises(ValueError, match="routed already"):
        session.route(f"{root}/b1/orders", orders.put)
    session.start()
    assert session.wait_connected(20)
    # Subscribed on connect: routes given before start() need no other call.
    assert deliver(sender, f"{root}/b1/orders", orders).payload == b"probe"
    deliver(sender, f"{root}/b7/ack", acks)
    drain(orders)
    drain(acks)
    assert sender.publish(f"{root}/b7/ack", b"a").wait(10)
    assert sender.publish(f"{root}/b1/orders", b"o").wait(10)
    got_ack, got_order = acks.get(timeout=20), orders.get(timeout=20)
    assert (got_ack.topic, got_ack.payload) == (f"{root}/b7/ack", b"a")
    assert (got_order.topic, got_order.payload, got_order.qos) == (f"{root}/b1/orders", b"o", 1)
    # A route added while connected is subscribed at once.
    late: queue.SimpleQueue[Message] = queue.SimpleQueue()
    session.route(f"{root}/late", late.put)
    assert deliver(sender, f"{root}/late", late).payload == b"probe"
    # Nothing was routed that matched no filter.
    assert acks.empty() and orders.empty()


def test_a_failing_handler_is_logged_once_and_the_session_goes_on(
    session: MqttSession, sender: MqttSession, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"t/{uuid.uuid4().hex[:8]}/orders"
    handled: queue.SimpleQueue[Message] = queue.SimpleQueue()

    def store_orders(message: Message) -> None:
        if message.payload.startswith(b"bad"):
            raise OSError(28, "No space left on device")
        handled.put(message)

    session.route(topic, store_orders)
    session.start()
    assert session.wait_connected(20)
    deliver(sender, topic, handled)
    drain(handled)
    with caplog.at_level(logging.INFO):
        for payload in (b"first", b"bad-1", b"bad-2", b"second"):
            assert sender.publish(topic, payload).wait(10)
        assert handled.get(timeout=20).payload == b"first"
        assert handled.get(timeout=20).payload == b"second"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # One record per failed message, naming the handler, the topic and the error; the
    # traceback only with the first of the run. Nothing from paho: nothing escaped.
    assert len(errors) == 2, [r.getMessage() for r in errors]
    assert all(r.name == "sync.session" for r in errors)
    for record in errors:
        text = record.getMessage()
        assert "store_orders" in text and topic in text and "No space left" in text
        assert "not handled" in text
    assert errors[0].exc_info is not None and not errors[1].exc_info
    assert session.connected


def test_a_failing_listener_does_not_stop_the_session(
    broker: MosquittoBroker, sender: MqttSession, caplog: pytest.LogCaptureFixture
) -> None:
    session = MqttSession(client_id=_id(), url=broker.url, session_expiry=0)
    topic = f"t/{uuid.uuid4().hex[:8]}"
    got: queue.SimpleQueue[Message] = queue.SimpleQueue()

    def broken(state: SessionState) -> None:
        raise RuntimeError("listener bug")

    session.on_connect(broken)
    session.route(topic, got.put)
    session.start()
    try:
        assert session.wait_connected(20)
        deliver(sender, topic, got)
        assert "listener bug" in caplog.text
    finally:
        session.stop()


def test_every_connect_subscribes_again(tmp_path: Path) -> None:
    # session_expiry=0: the broker forgets the subscriptions when the connection ends,
    # so only a fresh SUBSCRIBE after the restart brings messages back.
    broker = MosquittoBroker(workdir=tmp_path / "m").start()
    session = MqttSession(client_id=_id(), url=broker.url, session_expiry=0)
    got: queue.SimpleQueue[Message] = queue.SimpleQueue()
    session.route("t/again", got.put)
    connects: list[SessionState] = []
    drops: list[SessionState] = []
    states: list[SessionState] = []
    session.on_connect(connects.append)
    session.on_disconnect(drops.append)
    session.on_state(states.append)
    session.start()
    try:
        assert session.wait_connected(20)
        broker.kill()
        wait_for(lambda: drops, what="the session to notice")
        assert not session.connected and not drops[-1].connected
        # An ordinary broker crash, said in words (paho calls it "Unspecified error").
        assert session.state.reason == (
            "lost the connection to the broker: it stopped, or the network failed"
        )
        wait_for(lambda: session.state.reason.startswith("cannot reach"), what="a failed reconnect")
        assert session.state.reason == (
            f"cannot reach the broker at {broker.url}: connection refused"
        )
        broker.start()
        assert session.wait_subscribed(30)
        assert len(connects) == 2 and session.state.reason == "connected"
        sender = MqttSession(client_id=_id(), url=broker.url, session_expiry=0)
        sender.start()
        try:
            assert sender.wait_connected(20)
            # Subscribed again once wait_subscribed says so: the first message arrives.
            sent = sender.publish("t/again", b"first")
            assert sent.wait(10) and sent.reason == "Success (0x00)"
            assert got.get(timeout=10).payload == b"first"
        finally:
            sender.stop()
    finally:
        session.stop()
        broker.kill()
    assert session.state.reason == "stopped"
    assert [s.reason for s in states] == [
        "connected",
        "lost the connection to the broker: it stopped, or the network failed",
        f"cannot reach the broker at {broker.url}: connection refused",
        "connected",
        "stopped",
    ]


def test_once_subscribed_the_first_message_published_reaches_the_session(
    broker: MosquittoBroker, sender: MqttSession
) -> None:
    for n in range(10):
        topic = f"t/{uuid.uuid4().hex[:8]}/first"
        got: queue.SimpleQueue[Message] = queue.SimpleQueue()
        receiver = MqttSession(client_id=_id(), url=broker.url, session_expiry=0)
        receiver.route(topic, got.put)
        receiver.start()
        try:
            assert receiver.wait_subscribed(20)
            sent = sender.publish(topic, f"{n}".encode())
            # "No matching subscribers" had the broker not taken the SUBSCRIBE yet.
            assert sent.wait(10) and sent.reason == "Success (0x00)", sent
            assert got.get(timeout=10).payload == f"{n}".encode()
        finally:
            receiver.stop()
    assert not receiver.wait_subscribed(0.1)  # stopped: not subscribed any more


def test_a_peer_that_is_not_a_broker_is_said_once_not_at_every_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Something listens on the port but closes every connection before answering
    # (a web server, a TLS port given as mqtt://): paho retries, the log says it once.
    attempts: list[int] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def close_all() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                attempts.append(1)
                conn.close()

        threading.Thread(target=close_all, daemon=True).start()
        session = MqttSession(client_id=_id(), url=f"mqtt://127.0.0.1:{port}", session_expiry=0)
        with caplog.at_level(logging.INFO, logger="sync.session"):
            session.start()
            try:
                wait_for(lambda: len(attempts) >= 3, what="three connection attempts", timeout=60)
            finally:
                session.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "sync.session"]
    assert said == [
        f"the broker at mqtt://127.0.0.1:{port} closed the connection before accepting it "
        "(is it an MQTT broker, and does it expect plain MQTT?); retrying"
    ], said


ACL = "topic readwrite allowed/#\n"


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[AclBroker]:
    broker = AclBroker(workdir=tmp_path / "acl-mosquitto", acl=ACL).start()
    try:
        yield broker
    finally:
        broker.kill()


def test_a_puback_with_a_failure_reason_is_not_a_delivery(
    acl_broker: AclBroker, caplog: pytest.LogCaptureFixture
) -> None:
    session = MqttSession(client_id=_id(), url=acl_broker.url, session_expiry=0)
    session.start()
    try:
        assert session.wait_connected(20)
        with caplog.at_level(logging.INFO, logger="sync.session"):
            ok = session.publish("allowed/x", b"1")
            assert ok.wait(10) and ok.delivered is True
            # Mosquitto 2 answers a denied QoS 1 publish under MQTT v5 with PUBACK 0x87.
            denied = [session.publish("denied/x", f"{i}".encode()) for i in range(3)]
            assert not any(d.wait(10) for d in denied)
            assert all(d.delivered is False for d in denied)
            assert all(d.reason == "Not authorized (0x87)" for d in denied), denied
            assert (session.delivered, session.refused) == (1, 3)
            refusals = [r for r in caplog.records if "did not take" in r.getMessage()]
            assert len(refusals) == 1  # once per topic, not once per message
            assert "denied/x" in refusals[0].getMessage() and "0x87" in refusals[0].getMessage()
        assert session.connected  # a refusal is not a disconnect
    finally:
        session.stop()


def test_state_says_why_it_is_not_connected(tmp_path: Path) -> None:
    from packline.devbroker import free_port

    session = MqttSession(client_id=_id(), url=f"mqtt://127.0.0.1:{free_port()}")
    assert (session.connected, session.state.reason) == (False, "not started")
    session.start()
    try:
        wait_for(lambda: "cannot reach" in session.state.reason, what="a failed connect")
        assert not session.connected
        # QoS 0 cannot wait for a connection: refused at once, not counted delivered.
        lost = session.publish("t/x", b"x", qos=0)
        assert lost.delivered is False and session.delivered == 0
    finally:
        session.stop()

    closed = AclBroker(workdir=tmp_path / "closed", acl=ACL, anonymous=False).start()
    refused = MqttSession(client_id=_id(), url=closed.url)
    refused.start()
    try:
        wait_for(lambda: "refused" in refused.state.reason, what="the refusal")
        assert refused.state.reason == "the broker refused the connection: Not authorized"
        assert not refused.connected
    finally:
        refused.stop()
        closed.kill()


def test_a_qos1_publish_while_away_goes_out_on_reconnect(tmp_path: Path) -> None:
    broker = MosquittoBroker(workdir=tmp_path / "m").start()
    session = MqttSession(client_id=_id(), url=broker.url)
    session.start()
    try:
        assert session.wait_connected(20)
        broker.kill()
        wait_for(lambda: not session.connected, what="the session to notice")
        held = session.publish("t/held", b"while away")
        assert held.delivered is None  # queued by paho, not refused
        broker.start()
        assert held.wait(30) and held.delivered
    finally:
        session.stop()
        broker.kill()
