"""B1: an incomplete or held order is refused at the bench with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.audit import audit
from sync.order import Order, packing_blockers

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "order.json"


def example(**changes: object) -> Order:
    data = json.loads(EXAMPLE.read_text())
    data.update(changes)
    return Order.model_validate(data)


def test_complete_order_passes() -> None:
    assert audit(example()) == []


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"tracking_no": ""}, "missing tracking number"),
        ({"carrier": ""}, "missing carrier"),
        ({"lines": []}, "no order lines"),
        ({"status": "held"}, "order is on hold"),
        ({"status": "cancelled"}, "order was cancelled"),
        ({"status": "refunded"}, "order was refunded"),
        ({"status": "address_change", "hold_reason": "buyer moved"}, "buyer moved"),
    ],
)
def test_incomplete_or_held_order_is_refused_with_reason(
    changes: dict[str, object], words: str
) -> None:
    reasons = audit(example(**changes))
    assert any(words in r for r in reasons), reasons


def test_missing_recipient_fields_are_all_named() -> None:
    reasons = audit(example(recipient={"name": "", "phone": "", "address": ""}))
    assert reasons == ["missing recipient name, recipient phone, recipient address"]


def test_optional_fields_do_not_block() -> None:
    # The sender is optional (the waybill omits it) and a line's qty defaults to 1.
    order = example(sender=None, lines=[{"sku": "TEE-BLK-M"}], paid_at=None, shop="")
    assert order.sender is None and order.lines[0].qty == 1
    assert audit(order) == []


def test_the_bench_uses_the_orders_own_rules() -> None:
    # One set of rules: central stores these reasons at import (sync.order).
    for order in (example(), example(tracking_no="", status="held"), example(lines=[])):
        assert audit(order) == packing_blockers(order)
