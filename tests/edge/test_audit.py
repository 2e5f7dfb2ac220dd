"""B1: an incomplete or held order is refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.audit import audit
from sync.messages import Order

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
        ({"lines": [{"sku": "A", "qty": 0}]}, "line 1 needs a SKU"),
        ({"status": "cancelled"}, "order was cancelled"),
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
