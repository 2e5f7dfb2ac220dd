"""Order intake audit (B1): can this order be packed at the bench?

The rules are the order's own (:func:`sync.order.packing_blockers`): central applies the
same ones at import and keeps the reasons, so the page shows exactly what the bench
will say when the order is scanned.
"""

from __future__ import annotations

from sync.order import Order, packing_blockers

__all__ = ["audit"]


def audit(order: Order) -> list[str]:
    """The reasons ``order`` cannot be packed now, in the packer's words; empty when it can."""
    return packing_blockers(order)
