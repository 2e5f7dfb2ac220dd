"""Run ``packline broker config``, start Mosquitto with exactly what it wrote, and
talk to it as a given client."""

from __future__ import annotations

import itertools
import queue
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from packline.devbroker import find_mosquitto, stop_process
from sync.mqtt import make_client, parse_mqtt_url, read_url_file
from tests.support.cli import run_packline

_ids = itertools.count(1)


def broker_config(*args: str) -> subprocess.CompletedProcess[str]:
    """``packline broker config ARGS``; fails the test on a non-zero exit."""
    done = run_packline("broker", "config", *args)
    assert done.returncode == 0, done.stderr
    return done


def secret(out: Path, name: str) -> str:
    """The URL with credentials written for client ``name`` (a relative ``ca=`` made
    absolute, as the settings read it)."""
    return read_url_file(out / "secrets" / f"{name}.url")


def password(out: Path, name: str) -> str:
    """The password of client ``name``."""
    found = parse_mqtt_url(secret(out, name)).password
    assert found
    return found


def with_password(url: str, new: str) -> str:
    """``url`` with another password (a wrong one, for instance)."""
    broker = parse_mqtt_url(url)
    assert broker.password
    return url.replace(f":{broker.password}@", f":{new}@", 1)


class ConfiguredBroker:
    """``mosquitto -c OUT/mosquitto.conf`` as a process of its own, on the port the
    configuration names; stopped by pid."""

    def __init__(self, *, out: Path, port: int) -> None:
        self.out = out
        self.port = port
        self.log = out.parent / f"{out.name}-mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 10.0) -> ConfiguredBroker:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [find_mosquitto(), "-c", str(self.out / "mosquitto.conf")],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.log.read_text()[-1500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port}")

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads passwd and acl again."""
        assert self.proc is not None
        mark = self.log.stat().st_size
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while b"Reloading config" not in self.log.read_bytes()[mark:]:
            assert time.monotonic() < deadline, "mosquitto did not reload"
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


class Client:
    """One MQTT v5 client logged in with a URL from ``secrets/`` (through
    :func:`sync.mqtt.make_client`, as the station and central connect), waiting for
    each answer of the broker: CONNACK, SUBACK, PUBACK."""

    def __init__(self, url: str, *, name: str = "client") -> None:
        self.client = make_client(client_id=f"test-{name}-{next(_ids)}", url=url, session_expiry=0)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._acks: dict[int, queue.Queue[list[ReasonCode] | ReasonCode]] = {}
        self._lock = threading.Lock()
        self.disconnected = threading.Event()
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self._connack.put(rc)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self._answer(mid, rcs)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self._answer(mid, rc)
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.loop_start()

    def _slot(self, mid: int) -> queue.Queue[list[ReasonCode] | ReasonCode]:
        with self._lock:
            return self._acks.setdefault(mid, queue.Queue())

    def _answer(self, mid: int, answer: list[ReasonCode] | ReasonCode) -> None:
        self._slot(mid).put(answer)

    def connack(self, timeout: float = 10.0) -> ReasonCode:
        """The broker's answer to CONNECT."""
        return self._connack.get(timeout=timeout)

    def connected(self) -> Client:
        """Wait for the broker to accept this client; fail the test otherwise."""
        rc = self.connack()
        assert not rc.is_failure, f"refused: {rc}"
        return self

    def subscribe(self, topic_filter: str) -> ReasonCode:
        """Subscribe with QoS 1 and return the SUBACK's reason code."""
        _rc, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None
        answer = self._slot(mid).get(timeout=10)
        assert isinstance(answer, list)
        return answer[0]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """Publish with QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        answer = self._slot(info.mid).get(timeout=10)
        assert isinstance(answer, ReasonCode)
        return answer

    def receive(self, timeout: float = 10.0) -> tuple[str, bytes]:
        """The next message delivered: (topic, payload)."""
        msg = self.messages.get(timeout=timeout)
        return msg.topic, bytes(msg.payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tls_handshake(url: str) -> None:
    """Connect once, synchronously, trusting only what ``url`` says (its ``ca=`` or the
    system's authorities): raises :class:`ssl.SSLError` when the certificate is not
    trusted."""
    broker = parse_mqtt_url(url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(broker.username, broker.password)
    client.tls_set(ca_certs=broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    try:
        client.connect(broker.host, broker.port, keepalive=5)
    finally:
        client.disconnect()


def make_pki(folder: Path, *, host: str = "127.0.0.1") -> dict[str, Path]:
    """A throwaway certificate authority and a server certificate it signed for
    ``host`` (with ``openssl``), plus a second authority that signed nothing here."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        done = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=folder)
        assert done.returncode == 0, done.stderr

    new_key = ("-newkey", "rsa:2048", "-nodes", "-days", "2")
    for name in ("ca", "other-ca"):
        openssl(
            "req",
            "-x509",
            *new_key,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.pem",
            "-subj",
            f"/CN=packline test {name}",
        )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        f"/CN={host}",
    )
    kind = "IP" if host.replace(".", "").isdigit() else "DNS"
    (folder / "san.cnf").write_text(f"subjectAltName={kind}:{host}\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    )
    return {
        "ca": folder / "ca.pem",
        "cert": folder / "server.pem",
        "key": folder / "server.key",
        "other_ca": folder / "other-ca.pem",
    }
