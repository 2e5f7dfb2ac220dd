"""Checks shared by every backend on a decoded barcode's text."""

from __future__ import annotations

import unicodedata

from drivers.scanners.base import GS

__all__ = ["strip_affixes", "unreadable_reason"]


def unreadable_reason(text: str) -> str | None:
    """Why ``text`` is not a barcode a bench can use, or None when it is fine.

    Control characters other than GS mean line noise, a wrong baud rate or a
    keyboard-layout mismatch; such a scan is dropped rather than guessed at.
    """
    for ch in text:
        if ch != GS and unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            return f"control or invalid character {ch!r}"
    return None


def strip_affixes(text: str, *, prefix: str, suffix: str) -> str:
    """Remove a configured prefix/suffix the scanner adds, when present."""
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    if suffix and text.endswith(suffix):
        text = text[: -len(suffix)]
    return text
