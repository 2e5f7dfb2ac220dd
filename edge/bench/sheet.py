"""The command sheet: every command barcode with its name, to print and pin at the bench.

``packline label commands --out commands.pdf`` (or ``.png``) renders it. Each entry is
a Code128 barcode of the command's text with its name and what it does beside; the
quantities ``CMD-QTY-n`` most benches need come last. Page size A4 at 150 dpi; the
bars are at least 3 dots (0.5 mm) wide, which every handheld scanner reads from 20 cm.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from drivers.labels.barcodes import code128_modules, draw_code128
from drivers.labels.fonts import find_font, load_font
from edge.bench.commands import COMMANDS, QTY_ON_SHEET

__all__ = ["DPI", "command_sheet", "sheet_entries"]

DPI = 150
_PAGE = (1240, 1754)  # A4 at 150 dpi
_MARGIN = 90
_ROW = 180
_MODULE = 3


def sheet_entries() -> list[tuple[str, str, str]]:
    """(barcode text, name, what it does) of every entry on the sheet, in order."""
    entries = [(cmd.value, name, what) for cmd, name, what in COMMANDS]
    entries += [
        (f"CMD-QTY-{n}", f"Quantity {n}", f"the next item scan counts {n}") for n in QTY_ON_SHEET
    ]
    return entries


def command_sheet(*, station: str = "") -> list[Image.Image]:
    """The sheet's pages (1-bit images, A4 at :data:`DPI`)."""
    font_path = find_font()
    title, name_font, small = (load_font(font_path, px) for px in (44, 34, 24))
    per_page = (_PAGE[1] - 2 * _MARGIN - 90) // _ROW
    entries = sheet_entries()
    pages: list[Image.Image] = []
    for start in range(0, len(entries), per_page):
        page = Image.new("1", _PAGE, 1)
        draw = ImageDraw.Draw(page)
        heading = "packline — command barcodes" + (f" ({station})" if station else "")
        number = f"{len(pages) + 1}/{-(-len(entries) // per_page)}"
        draw.text((_MARGIN, _MARGIN - 30), heading, font=title, fill=0)
        draw.text((_PAGE[0] - _MARGIN - 80, _MARGIN - 20), number, font=small, fill=0)
        y = _MARGIN + 60
        for code, name, what in entries[start : start + per_page]:
            draw.text((_MARGIN, y), name, font=name_font, fill=0)
            name_width = draw.textlength(name, font=name_font)
            draw.text((_MARGIN + name_width + 24, y + 10), what, font=small, fill=0)
            modules = code128_modules(code)
            # A quiet zone of 10 modules each side: the sheet is cut and pinned up.
            draw_code128(
                draw,
                x=_MARGIN + 10 * _MODULE,
                y=y + 48,
                modules=modules,
                module_dots=_MODULE,
                height=80,
            )
            draw.text((_MARGIN + 10 * _MODULE, y + 132), code, font=small, fill=0)
            y += _ROW
        pages.append(page)
    return pages
