"""``packline alerts`` command group: watch alerts live, acknowledge one over MQTT.

For a supervisor's terminal or a desk display: ``watch`` prints each alert as it comes
(``packline/v1/{site}/alerts/{dept}/{severity}``), ``ack`` publishes an
acknowledgement on ``packline/v1/{site}/alerts/ack`` as a phone app would.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import uuid
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from packline.commands import command_group
from sync.errors import UserError

if TYPE_CHECKING:
    from sync.session import MqttSession

__all__ = ["app"]

app = command_group()

CONFIG = typer.Option(
    None, "--config", metavar="FILE", help="central.toml (for mqtt_url and site)."
)
MQTT_URL = typer.Option(None, "--mqtt-url", metavar="URL", help="Broker, mqtt://host:port.")
SITE = typer.Option(None, "--site", help="The site whose alerts to follow.")


def _connect(
    config: Path | None, mqtt_url: str | None, site: str | None, who: str
) -> tuple[str, MqttSession]:
    """The site and a session for it, not started; an unreachable broker is one line."""
    from central.settings import CentralSettings
    from packline.settings import load_settings
    from sync.mqtt import parse_mqtt_url
    from sync.session import MqttSession

    settings = load_settings(CentralSettings, config, mqtt_url=mqtt_url, site=site)
    try:
        broker = parse_mqtt_url(settings.mqtt_url)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        with socket.create_connection((broker.host, broker.port), timeout=5):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot reach the MQTT broker at {broker}: {exc.strerror or exc}"
        ) from None
    session = MqttSession(
        client_id=f"packline-{who}-{uuid.uuid4().hex[:8]}", url=broker, session_expiry=0
    )
    return settings.site, session


def _start(session: MqttSession) -> None:
    """Start ``session`` and wait for the broker; its refusal is one line."""
    quiet = logging.getLogger("sync.session")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # until connected, this command says what went wrong
    session.start()
    try:
        if not session.wait_connected(10):
            raise UserError(
                f"the MQTT broker at {session.broker} did not let us in: {session.state.reason}"
            )
    finally:
        quiet.setLevel(level)


def _level(value: str | None, what: str) -> str:
    if value is None:
        return "+"
    if not value or any(c in value for c in "/+#") or value != value.strip():
        raise UserError(f"{what} must be one word (a level of the topic), got {value!r}")
    return value


@app.command()
def watch(
    dept: str | None = typer.Option(
        None, "--dept", metavar="D", help="Only this audience (warehouse, warehouse-head, ...)."
    ),
    severity: str | None = typer.Option(
        None, "--severity", metavar="S", help="Only general or only major."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print each alert's JSON as it came."),
    mqtt_url: str | None = MQTT_URL,
    site: str | None = SITE,
    config: Path | None = CONFIG,
) -> None:
    """Print alerts as they arrive, one line each, until Ctrl-C."""
    from central.watch.alerts import Alert
    from sync import topics
    from sync.session import Message

    site_name, session = _connect(config, mqtt_url, site, "alerts")
    topic = topics.alerts(site_name, _level(dept, "--dept"), _level(severity, "--severity"))
    seen: dict[str, None] = {}
    stop = threading.Event()

    def show(message: Message) -> None:
        try:
            data = json.loads(message.payload)
            alert_id = str(data["alert_id"])
        except (ValueError, KeyError, TypeError):
            typer.echo(f"(not an alert on {message.topic}: {message.payload[:80]!r})", err=True)
            return
        if alert_id in seen:
            return  # the same alert sent again after a crash: shown once
        seen[alert_id] = None
        if len(seen) > 10_000:
            seen.pop(next(iter(seen)))
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        try:
            typer.echo(_alert_line(Alert, data))
        except (KeyError, ValueError, TypeError):
            typer.echo(json.dumps(data, ensure_ascii=False))

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    session.route(topic, show)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _start(session)
        typer.echo(f"watching {topic} on {session.broker} (Ctrl-C ends)", err=True)
        while not stop.wait(0.5):
            pass
    finally:
        session.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _alert_line(alert: type, data: dict[str, object]) -> str:
    import datetime as dt

    def moment(key: str) -> dt.datetime | None:
        value = data.get(key)
        return dt.datetime.fromisoformat(str(value)) if value else None

    at = moment("at")
    if at is None:
        raise ValueError("no time")
    exception_id = data.get("exception_id")
    line: str = alert(
        alert_id=str(data["alert_id"]),
        dedup_key=str(data["dedup_key"]),
        kind=str(data["kind"]),
        level=int(str(data["level"])),
        level_name=str(data.get("level_name") or ""),
        dept=str(data["dept"]),
        to=str(data.get("to") or data["dept"]),
        severity=str(data["severity"]),
        order_no=str(data["order_no"]) if data.get("order_no") else None,
        exception_id=int(str(exception_id)) if exception_id is not None else None,
        due_at=moment("due_at"),
        at=at,
        message=str(data["message"]),
    ).line()
    return line


@app.command()
def ack(
    dedup_key: str | None = typer.Option(
        None, "--dedup-key", metavar="KEY", help="The alert's dedup_key."
    ),
    exception_id: int | None = typer.Option(
        None, "--exception", metavar="ID", help="The exception's number."
    ),
    by: str = typer.Option(..., "--by", metavar="NAME", help="Who acknowledges."),
    mqtt_url: str | None = MQTT_URL,
    site: str | None = SITE,
    config: Path | None = CONFIG,
) -> None:
    """Acknowledge an alert over MQTT, as a phone app does (central checks who may)."""
    from sync import topics

    if (dedup_key is None) == (exception_id is None):
        raise UserError("give either --dedup-key or --exception")
    site_name, session = _connect(config, mqtt_url, site, "ack")
    body = {"by": by, **({"dedup_key": dedup_key} if dedup_key else {"exception_id": exception_id})}
    try:
        _start(session)
        sent = session.publish(topics.alert_ack(site_name), json.dumps(body).encode(), qos=1)
        if not sent.wait(10):
            raise UserError(f"the broker did not take the acknowledgement: {sent.reason}")
    finally:
        session.stop()
    typer.echo(f"acknowledgement sent to {topics.alert_ack(site_name)}: {json.dumps(body)}")
