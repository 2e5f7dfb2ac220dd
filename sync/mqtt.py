"""MQTT client set-up shared by the station and central.

MQTT v5, clean start off with a session expiry, so the broker holds acks and order
upserts for a station that is briefly away; correctness never depends on it (the
outbox is resent until central's end-to-end ack).
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, Field, field_validator, model_validator

__all__ = [
    "BrokerSettings",
    "BrokerURL",
    "broker_url_setting",
    "check_broker_url",
    "hide_password",
    "make_client",
    "parse_mqtt_url",
    "read_url_file",
]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclasses.dataclass(frozen=True, kw_only=True)
class BrokerURL:
    """Where a broker is: ``mqtt://[user[:password]@]host[:port]`` or
    ``mqtts://[user[:password]@]host[:port][?ca=/path/ca.pem]``.

    ``ca_file`` is the certificate authority a ``mqtts://`` broker's certificate must
    be signed by; without it the system's trusted authorities are used. ``str()``
    never shows the password.
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def hide_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: for messages and logs.

    Works on anything, even text that is not a valid URL (an error message quotes what
    the person gave): everything between the user name and the last ``@`` is hidden.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, after = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{after}"


def parse_mqtt_url(url: str) -> BrokerURL:
    """Parse a broker URL; ``ValueError`` with a clear message when it is not one.

    The only option is ``?ca=PATH`` (``mqtts://`` only). Messages never quote the
    password.
    """
    shown = hide_password(url)
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {shown!r}")
    if not parts.hostname:
        raise ValueError(f"broker URL has no host: {shown!r}")
    text = parts.netloc.rpartition(":")[2]
    try:
        port = parts.port
    except ValueError:
        port = -1 if text.isdigit() else None
        if port is None:
            raise ValueError(f"broker URL has a bad port: {shown!r}") from None
    if port is not None and not 0 < port <= 65535:
        raise ValueError(f"broker URL port {text} is out of range (1 to 65535): {shown!r}")
    port = port or DEFAULT_PORTS[parts.scheme]
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - {"ca"})
    if unknown:
        raise ValueError(f"broker URL has an unknown option {unknown[0]!r} (known: ca): {shown!r}")
    ca = options.get("ca", [None])[-1]
    if ca is not None and parts.scheme != "mqtts":
        raise ValueError(f"broker URL option ca= needs mqtts://: {shown!r}")
    if ca == "":
        raise ValueError(f"broker URL option ca= names no file: {shown!r}")
    return BrokerURL(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ca_file=ca,
    )


def check_broker_url(url: str) -> BrokerURL:
    """:func:`parse_mqtt_url`, and the ``ca`` file, if any, is a readable certificate.

    For settings: a wrong CA path is found when the settings are read, in one line,
    rather than when the session first connects.
    """
    broker = parse_mqtt_url(url)
    if broker.ca_file is not None:
        try:
            ssl.create_default_context(cafile=broker.ca_file)
        except ssl.SSLError:  # before OSError, its base
            raise ValueError(
                f"the broker's CA file {broker.ca_file} holds no PEM certificate"
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ValueError(
                f"cannot read the broker's CA file {broker.ca_file}: {reason}"
            ) from None
    return broker


def read_url_file(path: Path) -> str:
    """The broker URL held in the secrets file ``path`` (one line; ``ValueError``).

    A relative ``?ca=`` in it names a file beside ``path``: it is returned absolute, so
    the URL file and its CA certificate can be copied to a station together. Messages
    name the file, never its content.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"the broker URL file {path} is not text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"cannot read the broker URL file {path}: {reason}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        count = "is empty" if not lines else f"holds {len(lines)} lines"
        raise ValueError(f"the broker URL file {path} {count}: it must hold one URL")
    url = lines[0]
    try:
        broker = parse_mqtt_url(url)
        if broker.ca_file is not None and not Path(broker.ca_file).is_absolute():
            absolute = (path.parent / broker.ca_file).resolve()
            query = urlencode({"ca": str(absolute)}, safe="/")
            url = urlunsplit(urlsplit(url)._replace(query=query))
        check_broker_url(url)
    except ValueError as exc:
        raise ValueError(f"in the broker URL file {path}: {exc}") from None
    return url


def broker_url_setting(*, mqtt_url: str, mqtt_url_file: Path | None, url_given: bool) -> str:
    """The broker URL of a process's settings: ``mqtt_url``, or what ``mqtt_url_file``
    holds (so the password stays out of TOML files that get copied around).

    ``url_given`` says whether ``mqtt_url`` was set rather than defaulted: setting both
    is refused (``ValueError``), unless they agree.
    """
    if mqtt_url_file is None:
        return mqtt_url
    url = read_url_file(mqtt_url_file)
    if url_given and mqtt_url != url:
        raise ValueError("set mqtt_url or mqtt_url_file, not both")
    return url


class BrokerSettings(BaseModel):
    """The broker settings of a process (a station, central): ``mqtt_url``, or
    ``mqtt_url_file`` naming a secrets file that holds it. Checked when read, so a
    wrong URL or CA file is one line naming it, never the password."""

    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883", description="mqtt://[user[:pw]@]host[:port]"
    )
    mqtt_url_file: Path | None = Field(
        default=None, description="a file holding the broker URL (docs/broker.md)"
    )

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        check_broker_url(value)  # its ValueError names what is wrong, never the password
        return value

    @field_validator("mqtt_url_file")
    @classmethod
    def _broker_url_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_url_file(value)  # unreadable or not a URL: one line naming the file
        return value

    @model_validator(mode="after")
    def _broker_url_from_file(self) -> Self:
        self.mqtt_url = broker_url_setting(
            mqtt_url=self.mqtt_url,
            mqtt_url_file=self.mqtt_url_file,
            url_given="mqtt_url" in self.model_fields_set,
        )
        return self


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
        # ca_file None: the system's trusted authorities.
        client.tls_set(ca_certs=broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
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
