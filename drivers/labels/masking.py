"""Privacy masking on labels (C1, B3).

A waybill travels through many hands, so the recipient's name and phone are printed
masked — :func:`mask_name`, :func:`mask_phone`. The sender is the merchant itself and
is printed in full, as carriers require.
"""

from __future__ import annotations

__all__ = ["MASK", "mask_name", "mask_phone"]

MASK = "*"


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
