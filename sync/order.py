"""The order: one model and one set of rules for import, wire, bench and labels.

Central's import, the orders downlink, the bench's intake audit (B1) and the label
renderers all read an order through :class:`Order` (``docs/order.md`` is its contract),
so what one part accepts the others accept too. Two questions are kept apart:

- **Is it an order?** Types, enums, times and bounds. :func:`validate_order` refuses
  anything else with :class:`InvalidOrder`, whose message names the field
  (``lines[0].qty: must be at most 999, got 100000``). Central's import refuses such a
  file; nothing downstream ever sees the order.
- **Can it be packed now?** :func:`packing_blockers` gives the reasons in the words
  the packer reads (``missing tracking number``). An order that is valid but blocked —
  no tracking number yet, an incomplete address, on hold — is still a real order whose
  deadline runs: central imports it, warns and keeps the reasons; the bench refuses it
  with the same reasons.

Optional means optional everywhere: an absent ``sender`` is ``None`` (the waybill
omits it), a line without ``qty`` has one item, ``null`` is the same as leaving a
field out. Fields may be added (the wire ignores what it does not know, the import
refuses it as a likely typo until the model learns it); existing names keep their
meaning.
"""

from __future__ import annotations

import enum
import json
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = [
    "CODE_MAX",
    "HOLD_REASONS",
    "MAX_LINES",
    "MAX_PARCELS",
    "MAX_QTY",
    "InvalidOrder",
    "Order",
    "OrderLine",
    "OrderStatus",
    "OrderType",
    "ParcelRef",
    "Party",
    "ReturnInfo",
    "ReturnOutcome",
    "packing_blockers",
    "parcel_count_of",
    "validate_order",
]

# --------------------------------------------------------------------------- bounds

#: Longest order number, tracking number, SKU, item barcode or RMA number. Each is
#: printed as Code128; 24 characters on 2-dot bars fit a 62 mm label at 300 dpi.
CODE_MAX = 24
#: Most lines in one order (each is scanned at the bench, B4).
MAX_LINES = 100
#: Most items of one line.
MAX_QTY = 999
#: Most parcels one order ships in (the bench prints a waybill for each).
MAX_PARCELS = 50
# Longest text of each kind, in characters.
NAME_MAX = 64
PHONE_MAX = 32
PLACE_MAX = 32
ADDRESS_MAX = 200
POSTCODE_MAX = 16
ITEM_NAME_MAX = 100
REMARK_MAX = 200
REVISION_MAX = 2**31 - 1

# A phone number may carry separators and an extension (``#``); platforms that hide
# the number hand out ``138****5678``.
_PHONE_CHARS = frozenset("0123456789 +-()*#.")
# Line breaks and tabs in a cell (Excel, a pasted address) become one space each.
_SPACES = str.maketrans("\n\r\t", "   ")


def _text(value: str) -> str:
    """One line of printable text: breaks become spaces, other control characters fail."""
    value = value.translate(_SPACES).strip()
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise PydanticCustomError(
                "order_text",
                "must not contain control characters, got {char}",
                {"char": f"U+{ord(ch):04X}"},
            )
    return value


def _code(value: str) -> str:
    """An identifier that is printed as a barcode and scanned back: visible ASCII."""
    if not all("!" <= ch <= "~" for ch in value):
        raise PydanticCustomError(
            "order_code",
            "must be ASCII letters, digits and marks without spaces (it is printed as a "
            "barcode), got {value}",
            {"value": _show(value)},
        )
    return value


def _phone(value: str) -> str:
    bad = sorted(set(value) - _PHONE_CHARS)
    if bad:
        raise PydanticCustomError(
            "order_phone",
            "must be digits, spaces and the marks + - ( ) * # . only, got {value}",
            {"value": _show(value)},
        )
    return value


def _iso_time(value: object) -> datetime:
    """An ISO 8601 time with its zone (``2026-11-23T09:15:00+08:00``)."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if not isinstance(parsed, datetime) or parsed.tzinfo is None:
        raise PydanticCustomError(
            "order_time",
            "must be an ISO 8601 time with its zone, e.g. 2026-11-23T09:15:00+08:00, got {value}",
            {"value": _show(value)},
        )
    return parsed


def _show(value: object) -> str:
    """A value as it would appear in the file, cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bounded(max_length: int) -> Any:
    return Field(default="", max_length=max_length)


Text = Annotated[str, AfterValidator(_text)]
Code = Annotated[str, AfterValidator(_text), AfterValidator(_code)]
Phone = Annotated[str, AfterValidator(_text), AfterValidator(_phone)]
Time = Annotated[AwareDatetime, BeforeValidator(_iso_time)]
# Strict: ``true`` is not 1 and ``"2"`` is not 2 (a CSV cell is converted before).
Count = Annotated[int, Field(strict=True)]


def _parcels_form(value: object) -> str:
    return "parcel-list" if isinstance(value, list) else "parcel-count"


# --------------------------------------------------------------------------- enums


class OrderStatus(enum.StrEnum):
    """Where the order stands for the bench; only ``ready`` may be packed (B1)."""

    READY = "ready"
    HELD = "held"
    ADDRESS_CHANGE = "address_change"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class OrderType(enum.StrEnum):
    """Selects the deadline rule (D1)."""

    NORMAL = "normal"
    PRESALE = "presale"


class ReturnOutcome(enum.StrEnum):
    """How a returned parcel was judged at the bench (B8)."""

    RESTOCK = "restock"
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"


#: Why a status stops the bench, in the words the packer reads.
HOLD_REASONS: Mapping[OrderStatus, str] = {
    OrderStatus.HELD: "order is on hold",
    OrderStatus.ADDRESS_CHANGE: "address change pending",
    OrderStatus.CANCELLED: "order was cancelled",
    OrderStatus.REFUNDED: "order was refunded",
}


# --------------------------------------------------------------------------- models


class _Part(BaseModel):
    """Shared settings: frozen, trimmed text, ``null`` = absent, unknown keys by context."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        str_strip_whitespace=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _absent_and_unknown(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        if (info.context or {}).get("unknown_fields") == "refuse":
            # The names of docs/order.md: ``return``, not the attribute ``return_info``.
            known = {f.alias or name for name, f in cls.model_fields.items()}
            for key in data:
                if key not in known:
                    raise PydanticCustomError("order_unknown", "unknown field", {"field": key})
        # ``null`` means "not given", so the default applies (qty 1, no sender...).
        return {k: v for k, v in data.items() if v is not None}


class Party(_Part):
    """Recipient or sender of a parcel. An empty string means "not given"."""

    name: Text = _bounded(NAME_MAX)
    phone: Phone = _bounded(PHONE_MAX)
    province: Text = _bounded(PLACE_MAX)
    city: Text = _bounded(PLACE_MAX)
    district: Text = _bounded(PLACE_MAX)
    address: Text = _bounded(ADDRESS_MAX)
    postcode: Text = _bounded(POSTCODE_MAX)

    @property
    def is_empty(self) -> bool:
        """Nothing given at all (an absent sender reads as ``None``, not as this)."""
        return not any(getattr(self, name) for name in type(self).model_fields)

    @property
    def full_address(self) -> str:
        """Province, city, district and street address, as written on a Chinese label."""
        region = "".join(p for p in (self.province, self.city, self.district) if p)
        return f"{region} {self.address}" if region and self.address else region + self.address


class OrderLine(_Part):
    """One line of an order: a SKU and how many of it."""

    sku: Code = Field(min_length=1, max_length=CODE_MAX)
    name: Text = _bounded(ITEM_NAME_MAX)
    spec: Text = _bounded(NAME_MAX)
    qty: Count = Field(default=1, ge=1, le=MAX_QTY)
    barcode: Code = _bounded(CODE_MAX)

    @property
    def scan_code(self) -> str:
        """What the packer scans for this line and its product label encodes (B4)."""
        return self.barcode or self.sku


class ParcelRef(_Part):
    """One parcel of an order that ships in several, each with its own waybill (B5)."""

    tracking_no: Code = _bounded(CODE_MAX)


# ``parcels``: a count, or a list of parcels. The tags keep pydantic from reporting
# both forms' errors; _explain drops them from the field path.
Parcels = Annotated[
    Annotated[Count, Tag("parcel-count")] | Annotated[list[ParcelRef], Tag("parcel-list")],
    Discriminator(_parcels_form),
]


class ReturnInfo(_Part):
    """After-sales data of a returned parcel (B8), for the return/restock label."""

    outcome: ReturnOutcome
    reason: Text = _bounded(REMARK_MAX)
    rma_no: Code = _bounded(CODE_MAX)


class Order(_Part):
    """An order as central knows it and sends it to the stations (``docs/order.md``).

    Valid is not the same as packable: see :func:`packing_blockers`.
    """

    order_no: Code = Field(min_length=1, max_length=CODE_MAX)
    shop: Text = _bounded(NAME_MAX)
    order_type: OrderType = OrderType.NORMAL
    status: OrderStatus = OrderStatus.READY
    hold_reason: Annotated[Text, Field(max_length=REMARK_MAX)] | None = None
    revision: Count = Field(default=1, ge=1, le=REVISION_MAX)
    paid_at: Time | None = None
    promised_ship_at: Time | None = None
    pack_by: Time | None = None
    ship_by: Time | None = None
    carrier: Text = _bounded(NAME_MAX)
    service: Text = _bounded(NAME_MAX)
    tracking_no: Code = _bounded(CODE_MAX)
    recipient: Party = Field(default_factory=Party)
    sender: Party | None = None
    lines: list[OrderLine] = Field(default_factory=list, max_length=MAX_LINES)
    # A count, or one {"tracking_no"} per parcel: read it through parcel_count and
    # parcel_tracking, never directly.
    parcels: Parcels = Field(default=1)
    note: Text = _bounded(REMARK_MAX)
    return_info: ReturnInfo | None = Field(default=None, alias="return")

    @field_validator("sender")
    @classmethod
    def _empty_sender_is_absent(cls, sender: Party | None) -> Party | None:
        return None if sender is None or sender.is_empty else sender

    @field_validator("parcels")
    @classmethod
    def _parcels(cls, parcels: int | list[ParcelRef]) -> int | list[ParcelRef]:
        count = parcels if isinstance(parcels, int) else len(parcels)
        if count < 1:
            raise PydanticCustomError(
                "order_parcels", "must be at least 1, got {value}", {"value": _show(count)}
            )
        if count > MAX_PARCELS:
            raise PydanticCustomError(
                "order_parcels",
                "must be at most {most}, got {value}",
                {"most": MAX_PARCELS, "value": _show(count)},
            )
        if isinstance(parcels, list):
            seen: dict[str, int] = {}
            for n, parcel in enumerate(parcels, start=1):
                if parcel.tracking_no in seen:
                    raise PydanticCustomError(
                        "order_parcels",
                        "parcel {n} repeats the tracking number of parcel {first}",
                        {"n": n, "first": seen[parcel.tracking_no]},
                    )
                if parcel.tracking_no:
                    seen[parcel.tracking_no] = n
        return parcels

    @property
    def parcel_count(self) -> int:
        """How many parcels the order ships in (the waybill prints ``n/parcel_count``)."""
        return self.parcels if isinstance(self.parcels, int) else len(self.parcels)

    def parcel_tracking(self, parcel_no: int) -> str:
        """The tracking number on parcel ``parcel_no``'s waybill (from 1).

        With ``parcels`` as a list each parcel has its own (parcel 1's defaults to the
        order's ``tracking_no``); with a count every parcel carries the order's.
        """
        if not 1 <= parcel_no <= self.parcel_count:
            raise ValueError(f"{self.order_no} has no parcel {parcel_no}")
        if isinstance(self.parcels, int):
            return self.tracking_no
        own = self.parcels[parcel_no - 1].tracking_no
        return own or (self.tracking_no if parcel_no == 1 else "")

    def parcel_with_tracking(self, tracking_no: str) -> int | None:
        """The parcel whose waybill carries ``tracking_no`` (the first, when they share one)."""
        for n in range(1, self.parcel_count + 1):
            if tracking_no and self.parcel_tracking(n) == tracking_no:
                return n
        return None

    @property
    def item_count(self) -> int:
        """How many items the order holds, over all its lines."""
        return sum(line.qty for line in self.lines)


# --------------------------------------------------------------------------- rules


class InvalidOrder(ValueError):
    """Data that is not an order; ``str()`` is ``field: what is wrong`` on one line."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(error: ErrorDetails) -> tuple[str, str]:
    """(field, problem) of a pydantic error, in the words of docs/order.md."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    loc = [
        p
        for p in error["loc"]
        if not (isinstance(p, str) and p.startswith(("function-", "parcel-count", "parcel-list")))
    ]
    if kind == "order_unknown":
        loc.append(ctx["field"])
    problems: dict[str, str] = {
        "missing": "missing",
        "int_type": f"must be a whole number, got {_show(value)}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}, got {_show(value)}",
        "less_than_equal": f"must be at most {ctx.get('le')}, got {_show(value)}",
        "string_too_short": "must not be empty",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters, "
        f"got {len(value) if isinstance(value, str) else '?'}",
        "string_type": f"must be text, got {_show(value)}",
        "enum": f"must be one of {ctx.get('expected')}, got {_show(value)}",
        "model_type": f"must be an object, got {_show(value)}",
        "model_attributes_type": f"must be an object, got {_show(value)}",
        "list_type": f"must be a list, got {_show(value)}",
        "too_long": f"must have at most {ctx.get('max_length')} entries, "
        f"got {ctx.get('actual_length')}",
    }
    if isinstance(value, str) and kind == "too_long":
        kind = "string_too_long"
    return _field_path(loc) or "order", problems.get(kind, error["msg"])


def parcel_count_of(body: object, *, default: int = 1) -> int:
    """How many parcels a stored order's body (validated when it was imported) ships
    in, read from its ``parcels`` field alone, as :attr:`Order.parcel_count` reads it;
    ``default`` for anything that is not a count in range. Central asks this for every
    shipment it stores: validating the whole order each time cost more than the rest."""
    if not isinstance(body, dict):
        return default
    parcels = body.get("parcels", 1)
    if isinstance(parcels, list):
        count = len(parcels)
    elif isinstance(parcels, int) and not isinstance(parcels, bool):
        count = parcels
    else:
        return default
    return count if 1 <= count <= MAX_PARCELS else default


def validate_order(
    data: object, *, unknown_fields: Literal["ignore", "refuse"] = "ignore"
) -> Order:
    """``data`` (the order object as parsed JSON) as an :class:`Order`.

    ``unknown_fields="refuse"`` is the import's rule (an unknown key is usually a typo);
    the wire and the renderers ignore them, so a newer central can add fields.
    Raises :class:`InvalidOrder` naming the first bad field.
    """
    if not isinstance(data, Mapping):
        raise InvalidOrder("order", f"must be an object, got {_show(data)}")
    try:
        return Order.model_validate(data, context={"unknown_fields": unknown_fields})
    except ValidationError as exc:
        raise InvalidOrder(*_explain(exc.errors()[0])) from None


# What B1 requires before packing, with the words the packer reads.
_REQUIRED: tuple[tuple[str, str], ...] = (
    ("recipient.name", "recipient name"),
    ("recipient.phone", "recipient phone"),
    ("recipient.address", "recipient address"),
    ("carrier", "carrier"),
    ("tracking_no", "tracking number"),
)


def _value(order: Order, dotted: str) -> object:
    value: object = order
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def packing_blockers(order: Order) -> list[str]:
    """Why ``order`` cannot be packed now (B1), in the packer's words; empty when it can.

    Central stores these at import and the bench refuses a scan with them, so both
    say the same (``missing tracking number``, ``order is on hold: buyer moved``).
    """
    reasons: list[str] = []
    held = HOLD_REASONS.get(order.status)
    if held is not None:
        reasons.append(f"{held}: {order.hold_reason}" if order.hold_reason else held)
    missing = [words for path, words in _REQUIRED if not _value(order, path)]
    if missing:
        reasons.append("missing " + ", ".join(missing))
    if not order.lines:
        reasons.append("no order lines")
    elif order.parcel_count > order.item_count:
        reasons.append(
            f"{order.parcel_count} parcels for {order.item_count} items: every parcel needs "
            "at least one item"
        )
    if order.tracking_no and not isinstance(order.parcels, int):
        untracked = [
            str(n) for n in range(2, order.parcel_count + 1) if not order.parcel_tracking(n)
        ]
        if untracked:
            reasons.append(f"missing tracking number of parcel {', '.join(untracked)}")
    return reasons
