"""The order as the label renderers see it, read from the shared order object.

The order object (``docs/order.md``, ``docs/examples/order.json``) is the contract
between central, the station and these renderers. :meth:`LabelOrder.from_dict` reads
the fields a label needs, ignores the rest (central may add fields at any time), and
refuses a malformed order with a :class:`ValueError` naming the field, so the station
can show the packer exactly what is wrong.

Masking (C1, B3): a waybill travels through many hands, so the recipient's name and
phone are printed masked — :func:`mask_name`, :func:`mask_phone`. The sender is the
merchant itself and is printed in full, as carriers require.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = [
    "RETURN_OUTCOMES",
    "LabelOrder",
    "OrderLine",
    "Party",
    "ReturnInfo",
    "mask_name",
    "mask_phone",
]

MASK = "*"

# How a returned parcel was judged at the bench (B8), in the words printed on the
# return/restock label; the key is what the order object carries.
RETURN_OUTCOMES: Mapping[str, str] = {
    "restock": "入库 RESTOCK",
    "damaged": "破损 DAMAGED",
    "wrong_item": "错货 WRONG ITEM",
}


def mask_name(name: str) -> str:
    """Hide a person's name except its first (and, from 3 characters, last) character.

    ``"张"`` → ``"*"``, ``"张三"`` → ``"张*"``, ``"张三丰"`` → ``"张*丰"``,
    ``"欧阳娜娜"`` → ``"欧**娜"``. Surrounding white space is dropped; the result has
    as many characters as the stripped name, so a name's length stays visible but
    never more than two of its characters.
    """
    name = name.strip()
    n = len(name)
    if n <= 1:
        return MASK * n
    if n == 2:
        return name[0] + MASK
    return name[0] + MASK * (n - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """Hide the middle digits of a phone number: ``"13812345678"`` → ``"138****5678"``.

    With 8 or more digits the first 3 and last 4 digits stay; shorter numbers keep
    only their last ``digits // 2`` (at most 4) digits. Separators (``-``, spaces,
    ``+``) stay where they are, so ``"020-8888-6666"`` → ``"020-****-6666"``.
    """
    phone = phone.strip()
    positions = [i for i, ch in enumerate(phone) if ch.isdigit()]
    n = len(positions)
    head, tail = (3, 4) if n >= 8 else (0, min(4, n // 2))
    hidden = set(positions[head : n - tail])
    return "".join(MASK if i in hidden else ch for i, ch in enumerate(phone))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Party:
    """A recipient or sender: who, how to reach them, where."""

    name: str
    phone: str
    province: str = ""
    city: str = ""
    district: str = ""
    address: str = ""
    postcode: str = ""

    @property
    def full_address(self) -> str:
        """Province, city, district and street address as written on a Chinese label."""
        return "".join(p for p in (self.province, self.city, self.district) if p) + (
            (" " if (self.province or self.city or self.district) and self.address else "")
            + self.address
        )

    @property
    def masked_name(self) -> str:
        """The name as printed on a waybill (:func:`mask_name`)."""
        return mask_name(self.name)

    @property
    def masked_phone(self) -> str:
        """The phone as printed on a waybill (:func:`mask_phone`)."""
        return mask_phone(self.phone)


@dataclasses.dataclass(frozen=True, kw_only=True)
class OrderLine:
    """One line of an order: a SKU, what it is, how many."""

    sku: str
    name: str = ""
    spec: str = ""
    qty: int = 1
    barcode: str = ""

    @property
    def scan_code(self) -> str:
        """What the product label's barcode encodes: the item barcode, else the SKU."""
        return self.barcode or self.sku


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReturnInfo:
    """After-sales data for a return/restock label (B8); optional on an order."""

    outcome: str
    reason: str = ""
    rma_no: str = ""

    @property
    def outcome_text(self) -> str:
        """The outcome in the words printed on the label."""
        return RETURN_OUTCOMES[self.outcome]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabelOrder:
    """Everything a label shows about an order. Build one with :meth:`from_dict`."""

    order_no: str
    carrier: str
    tracking_no: str
    recipient: Party
    service: str = ""
    sender: Party | None = None
    lines: tuple[OrderLine, ...] = ()
    parcels: int = 1
    note: str = ""
    shop: str = ""
    return_info: ReturnInfo | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelOrder:
        """Read the shared order object; unknown keys are ignored.

        Raises :class:`ValueError` with a message naming the missing or bad field,
        e.g. ``order field 'recipient.phone' is missing``.
        """
        if not isinstance(data, Mapping):
            raise ValueError("order must be a JSON object")
        sender = data.get("sender")
        returned = data.get("return")
        lines = data.get("lines", [])
        if not isinstance(lines, list):
            raise ValueError("order field 'lines' must be a list")
        return cls(
            order_no=_text(data, "order_no"),
            carrier=_text(data, "carrier"),
            tracking_no=_text(data, "tracking_no"),
            service=_text(data, "service", required=False),
            recipient=_party(data, "recipient"),
            sender=None if sender is None else _party(data, "sender"),
            lines=tuple(_line(line, f"lines[{i}]") for i, line in enumerate(lines)),
            parcels=_count(data, "parcels", default=1),
            note=_text(data, "note", required=False),
            shop=_text(data, "shop", required=False),
            return_info=None if returned is None else _return(returned),
        )


def _text(data: Mapping[str, Any], key: str, *, required: bool = True, where: str = "") -> str:
    name = f"{where}{key}"
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"order field '{name}' is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"order field '{name}' must be text, not {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise ValueError(f"order field '{name}' is empty")
    return text


def _count(data: Mapping[str, Any], key: str, *, default: int, where: str = "") -> int:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"order field '{where}{key}' must be a whole number of at least 1")
    return value


def _party(data: Mapping[str, Any], key: str) -> Party:
    raw = data.get(key)
    if raw is None:
        raise ValueError(f"order field '{key}' is missing")
    if not isinstance(raw, Mapping):
        raise ValueError(f"order field '{key}' must be an object")
    where = f"{key}."
    optional = ("province", "city", "district", "address", "postcode")
    return Party(
        name=_text(raw, "name", where=where),
        phone=_text(raw, "phone", where=where),
        **{k: _text(raw, k, required=False, where=where) for k in optional},
    )


def _line(raw: object, where: str) -> OrderLine:
    if not isinstance(raw, Mapping):
        raise ValueError(f"order field '{where}' must be an object")
    prefix = f"{where}."
    return OrderLine(
        sku=_text(raw, "sku", where=prefix),
        name=_text(raw, "name", required=False, where=prefix),
        spec=_text(raw, "spec", required=False, where=prefix),
        qty=_count(raw, "qty", default=1, where=prefix),
        barcode=_text(raw, "barcode", required=False, where=prefix),
    )


def _return(raw: object) -> ReturnInfo:
    if not isinstance(raw, Mapping):
        raise ValueError("order field 'return' must be an object")
    outcome = _text(raw, "outcome", where="return.")
    if outcome not in RETURN_OUTCOMES:
        choices = ", ".join(RETURN_OUTCOMES)
        raise ValueError(f"order field 'return.outcome' must be one of {choices}, not {outcome!r}")
    return ReturnInfo(
        outcome=outcome,
        reason=_text(raw, "reason", required=False, where="return."),
        rma_no=_text(raw, "rma_no", required=False, where="return."),
    )
