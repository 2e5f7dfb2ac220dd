"""ZPL: images as ``^GF`` graphic fields, and reading them back.

:func:`image_to_zpl` is what the label renderer calls for ZPL printers; raw ZPL (a
carrier's ready-made waybill) is passed through by the printer unchanged. The
printers reached by URL (``zpl+tcp``, ``zpl+serial``) live in
:mod:`drivers.printers.zpl.printer`.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Sequence

from PIL import Image

from drivers.errors import LabelDoesNotFit

__all__ = [
    "MAX_PRINT_WIDTH_MM",
    "decode_graphic_fields",
    "image_to_zpl",
    "images_to_zpl",
]

#: The widest common ZPL print head (4.09 in); a wider image would be cropped.
MAX_PRINT_WIDTH_MM = 104
_THRESHOLD = 128


def _bits(image: Image.Image) -> tuple[bytes, int]:
    """The image as ZPL bits (1 = black dot), packed per row; and bytes per row."""
    grey = image.convert("L") if image.mode not in ("1", "L") else image
    if grey.mode == "1":
        grey = grey.convert("L")
    # Pillow's "1" mode packs white as 1; ZPL wants black as 1, so map before packing.
    mono = grey.point(lambda v: 255 if v < _THRESHOLD else 0).convert("1")
    return mono.tobytes(), (image.width + 7) // 8


def image_to_zpl(image: Image.Image, *, dpi: int = 203, copies: int = 1) -> bytes:
    """One ZPL format (``^XA``…``^XZ``) printing ``image`` as a ``^GF`` graphic field.

    The image must already be at the printer's resolution ``dpi`` (203, 300 or 600):
    dots are sent one to one so barcode modules stay on whole dots. Raises
    :class:`LabelDoesNotFit` when it is wider than a ZPL print head.
    """
    if dpi <= 0:
        raise ValueError("dpi must be positive")
    max_dots = int(MAX_PRINT_WIDTH_MM / 25.4 * dpi)
    if image.width > max_dots:
        raise LabelDoesNotFit(
            f"label image is {image.width} dots wide; a {dpi} dpi ZPL printer prints "
            f"at most {max_dots}"
        )
    if copies < 1:
        raise ValueError("copies must be at least 1")
    data, per_row = _bits(image)
    total = len(data)
    lines = [
        "^XA",
        f"^PW{image.width}",
        f"^LL{image.height}",
        "^LH0,0",
        f"^FO0,0^GFA,{total},{total},{per_row},{data.hex().upper()}^FS",
    ]
    if copies > 1:
        lines.append(f"^PQ{copies}")
    lines.append("^XZ")
    return ("\n".join(lines) + "\n").encode("ascii")


def images_to_zpl(images: Sequence[Image.Image], *, dpi: int = 203) -> bytes:
    """One ZPL format per image, concatenated."""
    return b"".join(image_to_zpl(im, dpi=dpi) for im in images)


_GF = re.compile(rb"\^GF([ABC]),(\d+),(\d+),(\d+),", re.IGNORECASE)
# ZPL's ASCII run-length letters: G..Y repeat 1..19 times, g..z repeat 20..400.
_RUN = {chr(c): i + 1 for i, c in enumerate(range(ord("G"), ord("Y") + 1))}
_RUN.update({chr(c): 20 * (i + 1) for i, c in enumerate(range(ord("g"), ord("z") + 1))})


def _expand_ascii(text: str, per_row: int) -> bytes:
    """Decode ``^GFA`` hex, including ZPL's run-length compression (``,`` ``!`` ``:``)."""
    rows: list[str] = []
    row = ""
    count = 0
    previous = "0" * (per_row * 2)
    for ch in text:
        if ch in _RUN:
            count += _RUN[ch]
            continue
        if ch in ",!:":
            if ch == ",":
                row = row.ljust(per_row * 2, "0")
            elif ch == "!":
                row = row.ljust(per_row * 2, "F")
            else:
                row = previous
        else:
            row += ch * (count or 1)
            count = 0
        if len(row) >= per_row * 2:
            rows.append(row[: per_row * 2])
            previous = rows[-1]
            row = ""
    if row:
        rows.append(row.ljust(per_row * 2, "0"))
    return bytes.fromhex("".join(rows))


def _field_bytes(kind: bytes, body: bytes, total: int, per_row: int) -> bytes:
    text = body.decode("ascii", "replace").strip()
    if kind.upper() == b"B":
        return body[:total]
    for prefix in (":Z64:", ":B64:"):
        if text.upper().startswith(prefix):
            payload = base64.b64decode(text[len(prefix) :].split(":", 1)[0])
            return zlib.decompress(payload) if prefix == ":Z64:" else payload
    return _expand_ascii(re.sub(r"\s+", "", text), per_row)


def decode_graphic_fields(zpl: bytes) -> list[Image.Image]:
    """Every ``^GF`` graphic field in ``zpl`` as a black-on-white image (mode ``1``).

    Used by the fake ZPL printer to save what it received, and by tests to prove a
    barcode survived encoding. Supports ASCII hex (plain and run-length
    compressed), ``:Z64:``/``:B64:`` payloads and binary ``^GFB``.
    """
    images: list[Image.Image] = []
    for match in _GF.finditer(zpl):
        kind, total, per_row = match.group(1), int(match.group(2)), int(match.group(4))
        if per_row <= 0 or total <= 0:
            continue
        start = match.end()
        if kind.upper() == b"B":
            body = zpl[start : start + total]
        else:
            end = zpl.find(b"^", start)
            body = zpl[start : end if end >= 0 else len(zpl)]
        data = _field_bytes(kind, body, total, per_row)[:total]
        height = len(data) // per_row
        if height == 0:
            continue
        inverted = bytes(b ^ 0xFF for b in data[: height * per_row])
        images.append(Image.frombytes("1", (per_row * 8, height), inverted))
    return images
