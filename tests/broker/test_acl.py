"""The ACL of ``packline broker config`` on a real Mosquitto started with exactly its
output: who may log in, publish and read what."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.uplink import station_session
from packline.devbroker import free_port
from sync import topics
from tests.support.siteconfig import (
    Client,
    ConfiguredBroker,
    broker_config,
    password,
    secret,
    with_password,
)

pytestmark = pytest.mark.mqtt

SITE = "wh1"
NOT_AUTHORISED = 0x87


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A site with stations a and b and supervisor ops, and its broker running."""
    out = tmp_path_factory.mktemp("acl") / "broker"
    port = free_port()
    broker_config(
        *("--site", SITE, "--stations", "a,b", "--supervisors", "ops", "--out", str(out)),
        *("--host", "127.0.0.1", "--port", str(port), "--bind", "127.0.0.1"),
    )
    broker = ConfiguredBroker(out=out, port=port).start()
    try:
        yield out
    finally:
        broker.stop()


@pytest.fixture
def clients(out: Path) -> Iterator[dict[str, Client]]:
    """central, a, b and ops, each logged in with its own secrets file."""
    made = {name: Client(secret(out, name), name=name) for name in ("central", "a", "b", "ops")}
    try:
        for client in made.values():
            client.connected()
        yield made
    finally:
        for client in made.values():
            client.close()


def nothing_more(client: Client) -> None:
    with pytest.raises(queue.Empty):
        client.receive(timeout=0.3)


def test_anonymous_and_wrong_passwords_are_refused(out: Path) -> None:
    port = int(secret(out, "a").rsplit(":", 1)[1])
    anonymous = Client(f"mqtt://127.0.0.1:{port}", name="anonymous")
    wrong = Client(with_password(secret(out, "a"), "not-the-password"), name="wrong")
    # b's password is no good for a: one credential per client.
    swapped = Client(with_password(secret(out, "a"), password(out, "b")), name="swapped")
    try:
        # Mosquitto 2 answers every refused login with 0x87, not authorised.
        for client in (anonymous, wrong, swapped):
            assert client.connack().value == NOT_AUTHORISED
        Client(secret(out, "a"), name="right").connected().close()
    finally:
        for client in (anonymous, wrong, swapped):
            client.close()


def test_a_station_publishes_only_its_own_events_and_status(clients: dict[str, Client]) -> None:
    central, a = clients["central"], clients["a"]
    assert not central.subscribe(topics.subscription(SITE, "events")).is_failure
    assert not central.subscribe(topics.subscription(SITE, "status")).is_failure

    assert not a.publish(topics.events(SITE, "a"), b"a-1").is_failure
    assert central.receive() == (topics.events(SITE, "a"), b"a-1")

    # As b: refused with reason 0x87, and central never sees it.
    refused = a.publish(topics.events(SITE, "b"), b"a-as-b")
    assert refused.value == NOT_AUTHORISED, refused
    assert a.publish(topics.status(SITE, "b"), b"a-as-b", retain=True).value == NOT_AUTHORISED
    for leaf in (topics.ack, topics.orders):
        assert a.publish(leaf(SITE, "a"), b"own but central's to write").value == NOT_AUTHORISED
    assert a.publish(topics.alerts(SITE, "warehouse", "major"), b"x").value == NOT_AUTHORISED
    assert a.publish(topics.alert_ack(SITE), b"x").value == NOT_AUTHORISED

    assert not a.publish(topics.status(SITE, "a"), b"a-status", retain=True).is_failure
    assert not a.publish(topics.events(SITE, "a"), b"a-2").is_failure
    # The broker handles a's messages in order: whatever reached central came first.
    assert central.receive() == (topics.status(SITE, "a"), b"a-status")
    assert central.receive() == (topics.events(SITE, "a"), b"a-2")
    nothing_more(central)


def test_the_stations_session_is_told_not_authorised(out: Path, clients: dict[str, Client]) -> None:
    """The product's own session (with its last will on its status) sees the 0x87."""
    central = clients["central"]
    central.subscribe(topics.subscription(SITE, "events"))
    session = station_session(site=SITE, station="a", mqtt_url=secret(out, "a"))
    session.start()
    try:
        assert session.wait_connected(10), session.state.reason
        refused = session.publish(topics.events(SITE, "b"), b"posing as b")
        assert refused.wait(10) is False
        assert "0x87" in refused.reason and session.refused == 1
        assert session.publish(topics.events(SITE, "a"), b"own").wait(10) is True
        assert central.receive() == (topics.events(SITE, "a"), b"own")
        nothing_more(central)
    finally:
        session.stop()


def test_a_station_reads_only_its_own_acks_and_orders(clients: dict[str, Client]) -> None:
    central, a, b = clients["central"], clients["a"], clients["b"]
    for topic_filter in (
        topics.ack(SITE, "a"),
        topics.orders(SITE, "a"),
        topics.orders(SITE, "b"),  # Mosquitto grants it, and delivers nothing of it
        topics.subscription(SITE, "events"),
        topics.alert_tree(SITE),
    ):
        assert not a.subscribe(topic_filter).is_failure
    b.subscribe(topics.orders(SITE, "b"))

    assert not central.publish(topics.orders(SITE, "b"), b"orders-for-b").is_failure
    assert not b.publish(topics.events(SITE, "b"), b"b-1").is_failure
    assert not central.publish(topics.alerts(SITE, "warehouse", "major"), b"alert").is_failure
    assert not central.publish(topics.orders(SITE, "a"), b"orders-for-a").is_failure
    assert not central.publish(topics.ack(SITE, "a"), b"ack-for-a").is_failure

    assert b.receive() == (topics.orders(SITE, "b"), b"orders-for-b")
    assert a.receive() == (topics.orders(SITE, "a"), b"orders-for-a")
    assert a.receive() == (topics.ack(SITE, "a"), b"ack-for-a")
    nothing_more(a)


def test_a_supervisor_reads_alerts_and_writes_only_acknowledgements(
    clients: dict[str, Client],
) -> None:
    central, ops, a = clients["central"], clients["ops"], clients["a"]
    assert not ops.subscribe(topics.alert_tree(SITE)).is_failure
    assert not ops.subscribe(topics.subscription(SITE, "events")).is_failure
    assert not central.subscribe(topics.alert_ack(SITE)).is_failure

    for topic in (
        topics.events(SITE, "a"),
        topics.events(SITE, "ops"),  # not even as a "station" of its own name
        topics.status(SITE, "ops"),
        topics.orders(SITE, "a"),
        topics.alerts(SITE, "warehouse", "major"),
    ):
        assert ops.publish(topic, b"x").value == NOT_AUTHORISED, topic

    assert not a.publish(topics.events(SITE, "a"), b"a-event").is_failure
    alert = topics.alerts(SITE, "warehouse", "major")
    assert not central.publish(alert, b'{"alert_id": 1}').is_failure
    assert ops.receive() == (alert, b'{"alert_id": 1}')  # and not a's event before it

    ack = b'{"dedup_key": "k", "by": "ops"}'
    assert not ops.publish(topics.alert_ack(SITE), ack).is_failure
    assert central.receive() == (topics.alert_ack(SITE), ack)
    assert ops.receive() == (topics.alert_ack(SITE), ack)  # other displays see it too
    nothing_more(ops)


def test_central_cannot_pose_as_a_station(clients: dict[str, Client]) -> None:
    central = clients["central"]
    for topic in (
        topics.events(SITE, "a"),
        topics.status(SITE, "a"),
        topics.events(SITE, "central"),
        topics.status(SITE, "central"),
    ):
        assert central.publish(topic, b"x").value == NOT_AUTHORISED, topic


def test_central_workers_share_the_events_subscription(
    out: Path, clients: dict[str, Client]
) -> None:
    """Each batch goes to one of the workers: the ACL allows $share/packline-central/."""
    shared = f"$share/packline-central/{topics.subscription(SITE, 'events')}"
    workers = [Client(secret(out, "central"), name=f"worker{i}").connected() for i in (1, 2)]
    try:
        for worker in workers:
            assert not worker.subscribe(shared).is_failure
        sent = []
        for i in range(20):
            station = "a" if i % 2 else "b"
            sent.append(f"batch-{i}".encode())
            assert not clients[station].publish(topics.events(SITE, station), sent[-1]).is_failure
        got: list[bytes] = []
        for worker in workers:
            while True:
                try:
                    got.append(worker.receive(timeout=1)[1])
                except queue.Empty:
                    break
        assert sorted(got) == sorted(sent)  # every batch once, to one worker
        assert all(not w.messages.qsize() for w in workers)
    finally:
        for worker in workers:
            worker.close()


def test_central_reads_retained_status(out: Path, clients: dict[str, Client]) -> None:
    a = clients["a"]
    assert not a.publish(topics.status(SITE, "a"), b'{"online": true}', retain=True).is_failure
    late = Client(secret(out, "central"), name="late-central").connected()
    try:
        late.subscribe(topics.subscription(SITE, "status"))
        assert late.receive() == (topics.status(SITE, "a"), b'{"online": true}')
    finally:
        late.close()
