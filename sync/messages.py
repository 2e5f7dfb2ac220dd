"""The wire format between stations and central, shared by both ends.

Every message is JSON, one pydantic model per topic kind, versioned in the topic
(``packline/v1/...``). Decoding never raises anything but :class:`WireError`, whose
message says what was wrong, so a garbled MQTT message is logged and dropped at the
edge of the system instead of crashing a loop.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync.order import Order

__all__ = [
    "Ack",
    "Event",
    "EventBatch",
    "OrdersMessage",
    "StationStatus",
    "WireError",
    "decode",
    "encode",
    "new_event_id",
]

M = TypeVar("M", bound=BaseModel)


class WireError(ValueError):
    """A message that cannot be decoded; ``str()`` says why."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


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

    event_id: str
    station: str
    seq: int = Field(ge=1)
    type: str
    # Absent in messages from stations older than the catalogue: their payloads are v1.
    version: int = Field(default=1, ge=1)
    at_wall: float
    at_mono: float
    boot_id: str
    payload: dict[str, Any] = Field(default_factory=dict)


class EventBatch(_Model):
    """Events of one station, in ``seq`` order (edge → central)."""

    v: Literal[1] = 1
    station: str
    events: list[Event]


class Ack(_Model):
    """Central holds every event of ``station`` up to ``seq`` (central → edge)."""

    v: Literal[1] = 1
    station: str
    seq: int = Field(ge=0)


class OrdersMessage(_Model):
    """Order upserts for a station (central → edge); ``cursor`` is central's order seq.

    Each order is a :class:`sync.order.Order`, with the same rules as central's import.
    """

    v: Literal[1] = 1
    orders: list[Order]
    cursor: int = Field(ge=0)


class StationStatus(_Model):
    """A station's health, retained on its status topic; the LWT says ``online=False``."""

    v: Literal[1] = 1
    station: str
    online: bool
    at_wall: float = 0.0
    version: str = ""
    printer: str = "unknown"
    printer_detail: str = ""
    scanner: str = "unknown"
    labels_left: int | None = None
    backlog: int = 0
    orders_cursor: int = 0
    # The bench's part (docs/station.md); all optional, so older stations still decode.
    operator: str | None = None
    order_in_progress: str | None = None
    printer_model: str = ""
    printer_serial: str = ""
    scanner_detail: str = ""
    scanner_device: str = ""
    label_size: str = ""
    last_scan_at: float | None = None


def encode(message: BaseModel) -> bytes:
    """Serialise a message to compact UTF-8 JSON."""
    return message.model_dump_json().encode("utf-8")


def decode(cls: type[M], data: bytes | bytearray | str) -> M:
    """Parse ``data`` as ``cls``; any problem becomes :class:`WireError`."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise WireError(f"bad {cls.__name__}: {where}: {first['msg']}") from None
