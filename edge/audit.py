"""Order intake audit (B1): can this order be packed at the bench?"""

from __future__ import annotations

from sync.messages import Order

__all__ = ["HELD_STATUSES", "audit"]

# Order statuses that stop the bench, with the words the packer sees.
HELD_STATUSES: dict[str, str] = {
    "held": "order is on hold",
    "cancelled": "order was cancelled",
    "address_change": "address change pending",
    "refunded": "order was refunded",
}

# (what is checked, the words shown when it is missing)
REQUIRED: list[tuple[str, str]] = [
    ("recipient.name", "recipient name"),
    ("recipient.phone", "recipient phone"),
    ("recipient.address", "recipient address"),
    ("carrier", "carrier"),
    ("tracking_no", "tracking number"),
]


def _get(order: Order, dotted: str) -> str:
    value: object = order
    for part in dotted.split("."):
        value = getattr(value, part)
    return str(value).strip()


def audit(order: Order) -> list[str]:
    """The reasons ``order`` cannot be packed now; empty when it can."""
    reasons: list[str] = []
    if order.status in HELD_STATUSES:
        held = HELD_STATUSES[order.status]
        reasons.append(f"{held}: {order.hold_reason}" if order.hold_reason else held)
    elif order.status != "ready":
        reasons.append(f"order status is {order.status!r}, not ready")
    missing = [words for path, words in REQUIRED if not _get(order, path)]
    if missing:
        reasons.append("missing " + ", ".join(missing))
    if not order.lines:
        reasons.append("no order lines")
    for i, line in enumerate(order.lines, start=1):
        if not line.sku.strip() or line.qty < 1:
            reasons.append(f"line {i} needs a SKU and a quantity of at least 1")
    return reasons
