"""What a scan says, normalised: scanners send the same code in different clothes.

A scanner may put an AIM symbology identifier in front (``]E0`` EAN-13, ``]C1``
GS1-128, ``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR), send GS1's FNC1 as the group
separator ``\\x1d`` (see docs/scanners.md), or a person may type a GS1 code in its
printed form ``(01)09501101530003(17)261231``. A product's EAN-13, its UPC-A, its
GTIN-14 and a GS1 code carrying it in AI ``01`` all name the same product: they are
compared as GTIN-14. Codes that are not numbers (Code128 SKUs, command barcodes) are
compared as text.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = ["GS", "ScannedCode", "gtin14", "normalise", "shown"]

GS = "\x1d"
"""The group separator: GS1's FNC1 as a scanner sends it."""

# ``]`` + symbology letter + modifier character (ISO/IEC 15424).
_AIM = re.compile(r"\A\][A-Za-z][0-9A-Za-z]")
# Identifiers whose data is a GS1 element string (AI then data).
_GS1_AIM = frozenset({"]C1", "]e0", "]d2", "]Q3", "]J1"})
# Lengths of GTIN-8, UPC-A (GTIN-12), EAN-13 and GTIN-14.
_GTIN_LENGTHS = frozenset({8, 12, 13, 14})
_HRI = re.compile(r"\((\d{2,4})\)")


def _check_digit_ok(digits: str) -> bool:
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def gtin14(code: str) -> str | None:
    """``code`` as a GTIN-14 when it is a GTIN-8/12/13/14 with a right check digit."""
    digits = code.isascii() and code.isdigit() and len(code) in _GTIN_LENGTHS
    return code.zfill(14) if digits and _check_digit_ok(code) else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScannedCode:
    """One scan: what arrived, the text to match, and the product's GTIN if it has one."""

    raw: str
    text: str
    gtin: str | None = None

    def matches(self, code: str) -> bool:
        """True when this scan names ``code`` (a line's barcode or SKU)."""
        if not code:
            return False
        if self.text == code:
            return True
        return self.gtin is not None and self.gtin == gtin14(code)


def _gs1_gtin(data: str) -> str | None:
    """The GTIN in AI 01 (or 02) at the start of a GS1 element string."""
    if data[:2] in ("01", "02") and len(data) >= 16:
        return gtin14(data[2:16])
    return None


def normalise(raw: str) -> ScannedCode:
    """What ``raw`` (a scan's text) names, with the scanner's clothes taken off."""
    text = raw.strip(" \t\r\n")
    gs1 = False
    aim = _AIM.match(text)
    if aim:
        gs1 = aim.group(0) in _GS1_AIM
        text = text[aim.end() :]
    if text.startswith(GS):  # FNC1 in first position marks a GS1 code
        gs1 = True
        text = text.lstrip(GS)
    if text.startswith("(") and _HRI.match(text):
        # The printed form: "(01)0950...(17)2612..." → element string with separators.
        parts = [p for p in _HRI.split(text) if p]
        text = GS.join(a + b for a, b in zip(parts[::2], parts[1::2], strict=False))
        gs1 = True
    gtin = gtin14(text)
    if gtin is None and gs1:
        gtin = _gs1_gtin(text)
    if gtin is None and not gs1 and GS not in text and text.isdigit() and len(text) > 16:
        # A GS1-128 scanned without FNC1 transmitted still starts with AI 01.
        gtin = _gs1_gtin(text)
    return ScannedCode(raw=raw, text=text, gtin=gtin)


def shown(text: str) -> str:
    """A scan's text for a person: the group separator as ``<GS>``."""
    return text.replace(GS, "<GS>")
