"""Privacy masking of the recipient on labels (B3, C1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.labels import mask_name, mask_phone


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
