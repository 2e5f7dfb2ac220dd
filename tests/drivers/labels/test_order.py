"""The order object as labels read it, and privacy masking (B3, C1)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.labels import LabelOrder, mask_name, mask_phone


def test_example_order_reads(order: dict[str, Any]) -> None:
    lo = LabelOrder.from_dict(order)
    assert lo.order_no == "PDD20261123000017"
    assert lo.tracking_no == "SF1402867519036"
    assert lo.recipient.name == "张三"
    assert lo.sender is not None
    assert [(line.sku, line.qty) for line in lo.lines] == [("TEE-BLK-M", 2), ("CAP-RED", 1)]
    assert lo.parcels == 1
    assert lo.return_info is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.pop("tracking_no"), "'tracking_no' is missing"),
        (lambda o: o.update(carrier="  "), "'carrier' is empty"),
        (lambda o: o["recipient"].pop("phone"), "'recipient.phone' is missing"),
        (lambda o: o.update(recipient="张三"), "'recipient' must be an object"),
        (lambda o: o["lines"][1].update(qty=0), "'lines[1].qty' must be a whole number"),
        (lambda o: o["lines"][0].pop("sku"), "'lines[0].sku' is missing"),
        (lambda o: o.update(lines={}), "'lines' must be a list"),
        (lambda o: o.update(parcels="2"), "'parcels' must be a whole number"),
        (lambda o: o.update(order_no=["x"]), "'order_no' must be text"),
        (lambda o: o.update({"return": {"outcome": "lost"}}), "'return.outcome' must be one of"),
    ],
)
def test_malformed_order_names_the_field(order: dict[str, Any], change: Any, message: str) -> None:
    change(order)
    with pytest.raises(ValueError, match=re.escape(message)):
        LabelOrder.from_dict(order)


def test_unknown_fields_are_ignored(order: dict[str, Any]) -> None:
    order["warehouse_zone"] = "B"
    assert LabelOrder.from_dict(order).order_no == "PDD20261123000017"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("", ""),
        ("张", "*"),
        ("张三", "张*"),
        ("张三丰", "张*丰"),
        ("欧阳娜娜", "欧**娜"),
        (" 李四 ", "李*"),
    ],
)
def test_mask_name_examples(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("020-8888-6666", "020-****-6666"),
        ("+86 138 1234 5678", "+86 1** **** 5678"),
        ("95338", "***38"),
        ("", ""),
    ],
)
def test_mask_phone_examples(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@given(st.text(min_size=0, max_size=30))
def test_mask_name_keeps_at_most_first_and_last(name: str) -> None:
    stripped = name.strip()
    masked = mask_name(name)
    assert len(masked) == len(stripped)
    shown = [i for i, ch in enumerate(masked) if ch != "*" or stripped[i] == "*"]
    # Only the first character, and the last from 3 characters on, may be shown.
    allowed = (
        {0, len(stripped) - 1} if len(stripped) >= 3 else ({0} if len(stripped) == 2 else set())
    )
    assert set(shown) - {i for i in range(len(stripped)) if stripped[i] == "*"} <= allowed
    if len(stripped) >= 2:
        assert masked[0] == stripped[0]
        assert "*" in masked


@given(st.text(alphabet="0123456789 -+()", min_size=0, max_size=24))
def test_mask_phone_hides_the_middle_digits(phone: str) -> None:
    stripped = phone.strip()
    masked = mask_phone(phone)
    assert len(masked) == len(stripped)
    digits = [i for i, ch in enumerate(stripped) if ch.isdigit()]
    for i, (a, b) in enumerate(zip(stripped, masked, strict=True)):
        if i not in digits:
            assert a == b  # separators stay put
    shown = [i for i in digits if masked[i] == stripped[i]]
    if len(digits) >= 8:
        assert shown == digits[:3] + digits[-4:]
    else:
        assert len(shown) <= len(digits) // 2
    if digits:
        assert len(shown) < len(digits)  # something is always hidden
