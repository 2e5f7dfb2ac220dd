"""Acknowledging an alert: from the CLI, the API or MQTT (``…/alerts/ack``).

An acknowledgement names the alert's ``dedup_key`` (or an ``exception_id``) and who
acknowledges (``by``). For an exception it acknowledges the exception (its alert stops
repeating); for a condition it stops the repeats and the climb. It never un-resolves
anything: an acknowledgement of something resolved only records who saw it. The API
and MQTT check the policy's list of who may acknowledge; the CLI runs on the central
host and acts for whoever ``--by`` names.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.engine import Engine

from central.watch import escalation
from central.watch.context import Watch
from central.watch.exceptions import (
    ExceptionRefused,
    NotAllowed,
    acknowledge_exception,
    dedup_key,
)
from central.watch.rules import WatchRules, allowed_to_ack
from central.watch.tickets import acknowledge_ticket

__all__ = ["AlertAck", "BadAck", "acknowledge", "parse_ack"]

_EXCEPTION_KEY = re.compile(r"^exception:(\d+)$")
_TICKET_KEY = re.compile(r"^ticket:(\d+)$")


class BadAck(ValueError):
    """An acknowledgement message that is not one; ``str()`` says why."""


class AlertAck(BaseModel):
    """``{"dedup_key": …}`` or ``{"exception_id": …}``, and ``"by"``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    dedup_key: str | None = Field(default=None, min_length=1, max_length=200)
    exception_id: int | None = Field(default=None, ge=1)
    by: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> AlertAck:
        if (self.dedup_key is None) == (self.exception_id is None):
            raise ValueError("give either dedup_key or exception_id")
        return self

    @property
    def key(self) -> str:
        """The dedup key acknowledged."""
        return self.dedup_key or dedup_key(int(self.exception_id or 0))


def parse_ack(data: bytes | str) -> AlertAck:
    """An acknowledgement from its JSON; :class:`BadAck` with the reason otherwise."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadAck(f"not JSON: {exc}") from None
    try:
        return AlertAck.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "ack"
        raise BadAck(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None


def acknowledge(
    engine: Engine,
    ack: AlertAck,
    *,
    now: dt.datetime,
    rules: WatchRules | None = None,
    check_allowed: bool = True,
) -> str:
    """Act on ``ack``; what happened, in words.

    Raises :class:`~central.watch.exceptions.NotAllowed` when ``check_allowed`` and
    ``ack.by`` is not on the policy's list, :class:`~central.watch.exceptions.
    ExceptionNotFound` for an unknown exception and :class:`~central.watch.exceptions.
    ExceptionRefused` when it was acknowledged already.
    """
    key = ack.key
    match = _EXCEPTION_KEY.match(key)
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=now, rules=rules or WatchRules())
        if match is not None:
            exception_id = int(match.group(1))
            acknowledge_exception(watch, exception_id, by=ack.by, check_allowed=check_allowed)
            return f"exception #{exception_id} acknowledged by {ack.by}"
        ticket = _TICKET_KEY.match(key)
        if ticket is not None:
            ticket_id = int(ticket.group(1))
            acknowledge_ticket(watch, ticket_id, by=ack.by, check_allowed=check_allowed)
            return f"ticket #{ticket_id} acknowledged by {ack.by}"
        alarm = escalation.active(conn, key, lock=True)
        if alarm is None:
            raise ExceptionRefused(f"nothing to acknowledge for {key} (it is not active)")
        if check_allowed and not allowed_to_ack(alarm.policy, ack.by):
            raise NotAllowed(f"{ack.by} may not acknowledge {key}")
        if not escalation.acknowledge(watch, alarm, by=ack.by):
            raise ExceptionRefused(f"{key} was acknowledged already by {alarm.acked_by}")
        return f"{key} acknowledged by {ack.by}"
