"""A TLS broker from ``packline broker config --tls-*``: a client that trusts the
authority connects over ``mqtts://``; one that does not cannot."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from packline.devbroker import free_port
from sync import topics
from sync.mqtt import parse_mqtt_url, read_url_file
from sync.session import MqttSession
from tests.support.siteconfig import (
    Client,
    ConfiguredBroker,
    broker_config,
    make_pki,
    secret,
    tls_handshake,
)

pytestmark = pytest.mark.mqtt

SITE = "wh1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_out(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("tls") / "broker"
    port = free_port()
    broker_config(
        *("--site", SITE, "--stations", "a", "--out", str(out)),
        *("--host", "127.0.0.1", "--port", str(port), "--bind", "127.0.0.1"),
        *("--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]), "--tls-ca", str(pki["ca"])),
    )
    broker = ConfiguredBroker(out=out, port=port).start()
    try:
        yield out
    finally:
        broker.stop()


def test_the_config_and_urls_say_tls(tls_out: Path, pki: dict[str, Path]) -> None:
    conf = (tls_out / "mosquitto.conf").read_text().splitlines()
    assert f"certfile {pki['cert']}" in conf and f"keyfile {pki['key']}" in conf
    written = (tls_out / "secrets" / "a.url").read_text().strip()
    assert written.startswith("mqtts://a:") and written.endswith("?ca=ca.pem")
    assert (tls_out / "secrets" / "ca.pem").read_bytes() == pki["ca"].read_bytes()
    broker = parse_mqtt_url(secret(tls_out, "a"))
    assert broker.tls and broker.ca_file == str(tls_out / "secrets" / "ca.pem")


def test_a_client_that_trusts_the_authority_connects_over_mqtts(tls_out: Path) -> None:
    central = Client(secret(tls_out, "central"), name="central").connected()
    a = Client(secret(tls_out, "a"), name="a").connected()
    try:
        central.subscribe(topics.subscription(SITE, "events"))
        assert not a.publish(topics.events(SITE, "a"), b"over tls").is_failure
        assert central.receive() == (topics.events(SITE, "a"), b"over tls")
        # The ACL holds over TLS too.
        assert a.publish(topics.events(SITE, "central"), b"x").value == 0x87
    finally:
        a.close()
        central.close()


def test_a_client_that_does_not_trust_the_authority_cannot_connect(
    tls_out: Path, pki: dict[str, Path]
) -> None:
    url = secret(tls_out, "a")
    tls_handshake(url)  # the right authority: the handshake succeeds
    other = url.split("?")[0] + f"?ca={pki['other_ca']}"
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_handshake(other)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_handshake(url.split("?")[0])  # the system's authorities do not know it
    # The product's session: never connected, and says why in words.
    session = MqttSession(client_id="untrusting", url=other)
    session.start()
    try:
        assert not session.wait_connected(3)
        assert session.state.reason.startswith("cannot reach the broker at mqtts://a@127.0.0.1")
    finally:
        session.stop()


def test_plain_mqtt_to_the_tls_port_is_refused(tls_out: Path) -> None:
    plain = secret(tls_out, "a").split("?")[0].replace("mqtts://", "mqtt://")
    client = Client(plain, name="plain")
    try:
        assert client.disconnected.wait(10) or client.connack(timeout=1).is_failure
    finally:
        client.close()


def test_the_url_file_and_its_ca_travel_together(tls_out: Path, tmp_path: Path) -> None:
    """Copied to a station's folder, the relative ca= names the copy beside it."""
    bench = tmp_path / "etc-packline"
    bench.mkdir()
    shutil.copy(tls_out / "secrets" / "a.url", bench / "bench.url")
    shutil.copy(tls_out / "secrets" / "ca.pem", bench / "ca.pem")
    url = read_url_file(bench / "bench.url")
    assert parse_mqtt_url(url).ca_file == str(bench / "ca.pem")
    Client(url, name="copied").connected().close()
