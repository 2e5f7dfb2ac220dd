"""Shared helpers for the printer tests: a Code128 label drawn dot for dot."""

from __future__ import annotations

import barcode
from PIL import Image, ImageDraw

__all__ = ["code128_label"]


def code128_label(text: str, *, width: int, height: int = 240, module: int = 3) -> Image.Image:
    """A white label with ``text`` as Code128, each module ``module`` whole dots wide."""
    modules = barcode.Code128(text).build()[0]
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    left = (width - len(modules) * module) // 2
    assert left >= 10 * module, "barcode needs its quiet zone"
    for i, bit in enumerate(modules):
        if bit == "1":
            x = left + i * module
            draw.rectangle((x, 20, x + module - 1, height - 20), fill=0)
    return image
