"""MQTT client set-up shared by the station and central.

MQTT v5, clean start off with a session expiry, so the broker holds acks and order
upserts for a station that is briefly away; correctness never depends on it (the
outbox is resent until central's end-to-end ack).
"""

from __future__ import annotations

import dataclasses
import ssl
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["BrokerURL", "make_client", "parse_mqtt_url"]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclasses.dataclass(frozen=True, kw_only=True)
class BrokerURL:
    """Where a broker is: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> BrokerURL:
    """Parse a broker URL; ``ValueError`` with a clear message when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"broker URL has no host: {url!r}")
    text = parts.netloc.rpartition(":")[2]
    try:
        port = parts.port
    except ValueError:
        port = -1 if text.isdigit() else None
        if port is None:
            raise ValueError(f"broker URL has a bad port: {url!r}") from None
    if port is not None and not 0 < port <= 65535:
        raise ValueError(f"broker URL port {text} is out of range (1 to 65535): {url!r}")
    port = port or DEFAULT_PORTS[parts.scheme]
    return BrokerURL(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def make_client(
    *,
    client_id: str,
    url: str | BrokerURL,
    will: tuple[str, bytes] | None = None,
    session_expiry: int = 24 * 3600,
    keepalive: int = 15,
) -> mqtt.Client:
    """A paho client (MQTT v5, callback API v2) set to connect asynchronously.

    The caller sets its callbacks and then calls ``loop_start()``; paho reconnects by
    itself with a backoff of 1 to 10 s. ``will`` is a retained QoS 1 last will.
    """
    broker = parse_mqtt_url(url) if isinstance(url, str) else url
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    client.max_queued_messages_set(0)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry
    client.connect_async(
        broker.host, broker.port, keepalive=keepalive, clean_start=False, properties=props
    )
    return client
