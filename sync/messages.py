"""The wire format between stations and central, shared by both ends.

Every message is JSON, one pydantic model per topic kind, versioned in the topic
(``packline/v1/...``) and in the message (``v``). Decoding never raises anything but
:class:`WireError`, whose message says what was wrong and whose ``reason`` is a stable
word (``malformed``, ``wrong_version``, ``invalid_value``), so a bad MQTT message is
set aside at the edge of the system instead of crashing a loop.

Every number on the wire is checked: finite (JSON has no NaN or infinity, and Python's
``json`` would otherwise accept ``NaN``, ``Infinity`` and ``1e999``) and in the range
its field allows, so what central stores fits its columns. Counts are never negative.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync.order import Order

__all__ = [
    "MAX_COUNT",
    "MAX_SEQ",
    "MAX_WALL",
    "Ack",
    "Event",
    "EventBatch",
    "OrdersMessage",
    "StationStatus",
    "WireError",
    "decode",
    "decode_orders",
    "encode",
    "new_event_id",
]

M = TypeVar("M", bound=BaseModel)

#: Largest seq, cursor or byte count: what a signed 64-bit column holds.
MAX_SEQ = 2**63 - 1
#: Largest small count (labels, backlog): what a signed 32-bit column holds.
MAX_COUNT = 2**31 - 1
#: Latest wall-clock time on the wire, seconds since the epoch: 9999-12-31 23:59:59 UTC,
#: the last second a timestamp column (and Python's datetime) can hold.
MAX_WALL = 253_402_300_799.0
#: Largest monotonic reading: about 300 years of uptime.
MAX_MONO = 1e10
#: Longest identifier (event id, station, boot id, instance id, type): the columns' width.
ID_MAX = 64
#: Longest text in a status (printer detail, broker state, ...).
TEXT_MAX = 255


class WireError(ValueError):
    """A message that cannot be decoded; ``str()`` says why, ``reason`` in one word.

    ``reason`` is ``malformed`` (not JSON, or not the message's shape),
    ``wrong_version`` (a ``v`` this end does not speak) or ``invalid_value`` (a number
    that is not finite or out of its range, a negative count, ...).
    """

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class _Model(BaseModel):
    # allow_inf_nan=False: a NaN or infinite float is refused at every field.
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


def new_event_id() -> str:
    """A fresh event id (uuid4, canonical text form)."""
    return str(uuid.uuid4())


class Event(_Model):
    """One fact recorded at a station.

    ``seq`` is per station, starts at 1 and has no gaps; ``type`` and ``version`` name
    the payload's model in the catalogue (:mod:`sync.events`); ``at_wall`` is the
    station's wall clock (seconds since the epoch, possibly skewed), ``at_mono`` its
    monotonic clock and ``boot_id`` the boot the monotonic clock belongs to, so central
    can correct skew.
    """

    event_id: str = Field(min_length=1, max_length=ID_MAX)
    station: str = Field(min_length=1, max_length=ID_MAX)
    seq: int = Field(ge=1, le=MAX_SEQ)
    type: str = Field(min_length=1, max_length=ID_MAX)
    # Absent in messages from stations older than the catalogue: their payloads are v1.
    version: int = Field(default=1, ge=1, le=MAX_COUNT)
    at_wall: float = Field(ge=0.0, le=MAX_WALL)
    at_mono: float = Field(ge=0.0, le=MAX_MONO)
    boot_id: str = Field(min_length=1, max_length=ID_MAX)
    payload: dict[str, Any] = Field(default_factory=dict)


class EventBatch(_Model):
    """Events of one station, in ``seq`` order (edge → central).

    ``instance_id`` names the station store that recorded them (two benches given one
    name have different ones). ``boot_id``, ``sent_mono`` and ``sent_wall`` are the
    station's clocks when it sent the batch: central learns from them how the
    station's clocks relate to true time. All four are absent from older stations.
    """

    v: Literal[1] = 1
    station: str = Field(min_length=1, max_length=ID_MAX)
    events: list[Event]
    instance_id: str | None = Field(default=None, min_length=1, max_length=ID_MAX)
    boot_id: str | None = Field(default=None, min_length=1, max_length=ID_MAX)
    sent_mono: float | None = Field(default=None, ge=0.0, le=MAX_MONO)
    sent_wall: float | None = Field(default=None, ge=0.0, le=MAX_WALL)


class Ack(_Model):
    """Central holds every event of ``station`` up to ``seq`` (central → edge).

    Central also sends one now and then without new events, as its clock. ``at`` is
    central's wall clock when it sent the ack (the station's clock is judged by it).
    ``instance_id`` is the station store the ack is for: a bench that is not it
    (another bench with the same name) does not drop its outbox on it. ``name_conflict``
    is set, in words, while another bench uses this station's name.
    """

    v: Literal[1] = 1
    station: str = Field(min_length=1, max_length=ID_MAX)
    seq: int = Field(ge=0, le=MAX_SEQ)
    instance_id: str | None = Field(default=None, max_length=ID_MAX)
    at: float | None = Field(default=None, ge=0.0, le=MAX_WALL)
    name_conflict: str | None = Field(default=None, max_length=TEXT_MAX)


class OrdersMessage(_Model):
    """Order upserts for a station (central → edge); ``cursor`` is central's order seq.

    Each order is a :class:`sync.order.Order`, with the same rules as central's import.
    A station reads them with :func:`decode_orders`, one order at a time.
    """

    v: Literal[1] = 1
    orders: list[Order]
    cursor: int = Field(ge=0, le=MAX_SEQ)


class _OrdersEnvelope(_Model):
    v: Literal[1] = 1
    orders: list[dict[str, Any]]
    cursor: int = Field(ge=0, le=MAX_SEQ)


def _count(*, default: int | None = 0, big: bool = False) -> Any:
    return Field(default=default, ge=0, le=MAX_SEQ if big else MAX_COUNT)


def _text(default: str | None = "") -> Any:
    return Field(default=default, max_length=TEXT_MAX)


class StationStatus(_Model):
    """A station's health, retained on its status topic; the LWT says ``online=False``.

    Every field but ``station`` and ``online`` has a default, so a status from an older
    station decodes. Times are the station's wall clock (seconds since the epoch,
    possibly skewed; compare them with ``at_wall`` of the same status); ``at_mono`` and
    ``boot_id`` are its monotonic clock at sending, which central relates to true
    time.
    """

    v: Literal[1] = 1
    station: str = Field(min_length=1, max_length=ID_MAX)
    online: bool
    at_wall: float = Field(default=0.0, ge=0.0, le=MAX_WALL)
    at_mono: float | None = Field(default=None, ge=0.0, le=MAX_MONO)
    boot_id: str | None = Field(default=None, min_length=1, max_length=ID_MAX)
    version: str = Field(default="", max_length=ID_MAX)
    instance_id: str | None = Field(default=None, min_length=1, max_length=ID_MAX)
    started_at: float | None = Field(default=None, ge=0.0, le=MAX_WALL)
    operator: str | None = Field(default=None, max_length=ID_MAX)
    order_in_progress: str | None = Field(default=None, max_length=ID_MAX)
    printer: str = Field(default="unknown", max_length=ID_MAX)
    printer_detail: str = _text()
    printer_model: str | None = _text(None)
    printer_serial: str | None = _text(None)
    scanner: str = Field(default="unknown", max_length=ID_MAX)
    scanner_detail: str | None = _text(None)
    scanner_device: str | None = _text(None)
    labels_left: int | None = _count(default=None)
    label_size: str | None = Field(default=None, max_length=ID_MAX)
    backlog: int = _count()
    backlog_oldest_at: float | None = Field(default=None, ge=0.0, le=MAX_WALL)
    clock_skew_s: float | None = Field(default=None, ge=-MAX_WALL, le=MAX_WALL)
    last_scan_at: float | None = Field(default=None, ge=0.0, le=MAX_WALL)
    orders_held: int | None = _count(default=None)
    orders_cursor: int = _count(big=True)
    disk_free_bytes: int | None = _count(default=None, big=True)
    broker_state: str | None = _text(None)
    name_conflict: str | None = _text(None)


def encode(message: BaseModel) -> bytes:
    """Serialise a message to compact UTF-8 JSON."""
    return message.model_dump_json().encode("utf-8")


def _no_constant(name: str) -> float:
    raise WireError(f"not a finite number: {name}", reason="invalid_value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise WireError(f"not a finite number: {text[:32]}", reason="invalid_value")
    return value


def _load(data: bytes | bytearray | str, *, drop_nul: bool = False) -> Any:
    if isinstance(data, bytes | bytearray):
        raw = bytes(data)
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex()
            raise WireError(f"not JSON: not UTF-8 text (byte 0x{bad} at {exc.start})") from None
    try:
        parsed = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None
    except RecursionError:
        raise WireError("not JSON: nested too deeply") from None
    # A NUL character (JSON writes it \u0000) means nothing in a text a bench reports (a
    # device string padded with them, a scanner's control code), and PostgreSQL cannot
    # store one: a batch holding one was refused again each time it was sent, and held
    # up its station's stream. In what stations send it is dropped from every string
    # (an order refuses every control character, at import and on the wire alike).
    return _without_nul(parsed) if drop_nul and "\\u0000" in data else parsed


#: What the stations send: texts from scanners and devices, NUL characters dropped.
_FROM_STATIONS: tuple[type[BaseModel], ...] = (EventBatch, StationStatus)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


# Pydantic error types that mean "a value of the right kind, but not an allowed one".
_VALUE_ERRORS = {
    "finite_number",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "string_too_long",
    "string_too_short",
    "too_long",
    "too_short",
}


def _validate(cls: type[M], raw: Any) -> M:
    if isinstance(raw, dict) and "v" in raw and raw["v"] != 1:
        version = str(raw["v"])[:16]
        raise WireError(
            f"bad {cls.__name__}: wire version {version} is not spoken here (this end "
            "speaks version 1)",
            reason="wrong_version",
        )
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        reason = "invalid_value" if first["type"] in _VALUE_ERRORS else "malformed"
        raise WireError(f"bad {cls.__name__}: {where}: {first['msg']}", reason=reason) from None


def decode(cls: type[M], data: bytes | bytearray | str) -> M:
    """Parse ``data`` as ``cls``; any problem becomes :class:`WireError`."""
    return _validate(cls, _load(data, drop_nul=cls in _FROM_STATIONS))


def decode_orders(
    data: bytes | bytearray | str,
) -> tuple[OrdersMessage, list[tuple[str, str]]]:
    """Parse an :class:`OrdersMessage` one order at a time.

    Returns the message with the orders this end can read, and ``(order_no, why)`` for
    each it cannot (a value a newer central knows and this station does not): one such
    order must not hold back the others. A message whose envelope is bad raises
    :class:`WireError`.
    """
    envelope = _validate(_OrdersEnvelope, _load(data))
    good: list[Order] = []
    refused: list[tuple[str, str]] = []
    for i, raw in enumerate(envelope.orders):
        try:
            good.append(Order.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "order"
            order_no = str(raw.get("order_no") or f"#{i + 1}")[:ID_MAX]
            refused.append((order_no, f"{where}: {first['msg']}"))
    return OrdersMessage(orders=good, cursor=envelope.cursor), refused
