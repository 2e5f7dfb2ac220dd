"""Barcodes drawn on whole printer dots.

A scanner reads a barcode from the ratios of its bar widths. A barcode rendered at
some size and then resampled to the printer's resolution gets bars of 2 and 3 dots
where all should be equal, and stops scanning. So the module pattern comes from
python-barcode (Code128) and qrcode (QR), and each module is drawn here as an integer
number of dots directly on the label canvas — nothing is ever scaled.
"""

from __future__ import annotations

import functools

from PIL import ImageDraw

__all__ = [
    "CODE128_QUIET_MODULES",
    "QR_QUIET_MODULES",
    "QRMatrix",
    "code128_modules",
    "draw_code128",
    "draw_qr",
    "qr_matrix",
]

QRMatrix = tuple[tuple[bool, ...], ...]
"""QR modules, row by row; True is a dark module."""

# ISO/IEC 15417 asks for a quiet zone of at least 10 modules each side of Code128.
CODE128_QUIET_MODULES = 10
# ISO/IEC 18004 asks for 4; labels are crowded and scanners cope with 2.
QR_QUIET_MODULES = 2


# Layout asks for the same pattern several times per label (measure, then draw); the
# encodings are pure, so a small cache makes that free.
@functools.lru_cache(maxsize=256)
def code128_modules(data: str) -> str:
    """The Code128 module pattern of ``data``: one ``"1"`` (bar) or ``"0"`` per module.

    python-barcode picks the code sets (e.g. set C for digit runs) and the check digit.
    Raises :class:`ValueError` for data Code128 cannot carry (empty, non-ASCII).
    """
    from barcode import Code128  # lazily: only renderers need it

    if not data or not data.isascii():
        raise ValueError(f"{data!r} cannot be encoded as Code128 (needs ASCII text)")
    (pattern,) = Code128(data).build()
    return str(pattern)


def draw_code128(
    draw: ImageDraw.ImageDraw, *, x: int, y: int, modules: str, module_dots: int, height: int
) -> None:
    """Draw the bars of ``modules`` with their left edge at ``x`` (no quiet zone added)."""
    start = None
    for i, bit in enumerate(modules + "0"):
        if bit == "1" and start is None:
            start = i
        elif bit == "0" and start is not None:
            draw.rectangle(
                (x + start * module_dots, y, x + i * module_dots - 1, y + height - 1), fill=0
            )
            start = None


@functools.lru_cache(maxsize=256)
def qr_matrix(data: str) -> QRMatrix:
    """The QR modules of ``data`` (error correction M), without quiet zone; rows of bools."""
    import qrcode
    import qrcode.constants

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(data)
    qr.make(fit=True)
    return tuple(tuple(bool(v) for v in row) for row in qr.get_matrix())


def draw_qr(
    draw: ImageDraw.ImageDraw,
    *,
    x: int,
    y: int,
    matrix: tuple[tuple[bool, ...], ...],
    module_dots: int,
) -> None:
    """Draw ``matrix`` with its top-left dark-module corner at (x, y)."""
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                left, top = x + c * module_dots, y + r * module_dots
                draw.rectangle((left, top, left + module_dots - 1, top + module_dots - 1), fill=0)
