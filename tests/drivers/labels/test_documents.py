"""Carrier-supplied waybills: PDF and PNG fitted to the label, ZPL passed through."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from drivers.labels import canvas_dots, label_size
from drivers.labels.barcodes import CODE128_QUIET_MODULES, code128_modules, draw_code128
from drivers.labels.documents import DocumentError, fit_scale, load_document

Reader = Callable[[Image.Image], dict[str, str]]
TRACKING = "YT7522345678901"


def _carrier_waybill(*, width: int, height: int, module: int = 3) -> Image.Image:
    """A carrier's waybill page: a frame, some text blocks and a Code128 across the top."""
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, width - 1, height - 1), outline=0, width=4)
    modules = code128_modules(TRACKING)
    left = (width - len(modules) * module) // 2
    assert left >= CODE128_QUIET_MODULES * module
    draw_code128(draw, x=left, y=height // 10, modules=modules, module_dots=module, height=120)
    for i in range(6):
        draw.rectangle((40, height // 3 + i * 60, width - 200, height // 3 + i * 60 + 20), fill=0)
    return page


def _pdf(path: Path, pages: list[Image.Image], *, resolution: float = 200) -> Path:
    pages[0].save(path, "PDF", resolution=resolution, save_all=True, append_images=pages[1:])
    return path


@pytest.mark.parametrize(("size", "dpi"), [("100x180", 203), ("76x130", 203), ("62x100", 300)])
def test_pdf_page_fits_and_scans(
    tmp_path: Path, read_barcodes: Reader, size: str, dpi: int
) -> None:
    pdf = _pdf(tmp_path / "waybill.pdf", [_carrier_waybill(width=1000, height=1500)])
    doc = load_document(pdf, size=size, dpi=dpi)
    (page,) = doc.pages
    assert page.size == canvas_dots(label_size(size), dpi=dpi)
    assert page.mode == "1"
    assert read_barcodes(page).get(TRACKING) == "Code128"
    # Nothing clipped and aspect kept: the page's frame is whole, in the page's proportions,
    # and as large as the label allows in one direction.
    box = page.convert("L").point(lambda v: 255 - v).getbbox()
    assert box is not None
    ink_w, ink_h = box[2] - box[0], box[3] - box[1]
    assert abs(ink_w / ink_h - 1000 / 1500) < 0.01
    assert ink_w >= page.width - 2 or ink_h >= page.height - 2


def test_landscape_pdf_turns_on_an_endless_roll(tmp_path: Path, read_barcodes: Reader) -> None:
    pdf = _pdf(tmp_path / "wide.pdf", [_carrier_waybill(width=1500, height=700, module=4)])
    (page,) = load_document(pdf, size="62", dpi=300).pages
    assert page.width == 696
    assert page.height > page.width  # turned: the long side runs along the roll
    assert read_barcodes(page).get(TRACKING) == "Code128"


def test_every_pdf_page_is_a_label(tmp_path: Path) -> None:
    sheet = _carrier_waybill(width=1000, height=1500)
    pdf = _pdf(tmp_path / "two.pdf", [sheet, sheet])
    assert len(load_document(pdf, size="100x180", dpi=203).pages) == 2


def test_png_fits_and_scans(tmp_path: Path, read_barcodes: Reader) -> None:
    png = tmp_path / "waybill.png"
    _carrier_waybill(width=1000, height=1500).convert("RGBA").save(png)
    (page,) = load_document(png, size="100x180", dpi=203).pages
    assert page.size == (799, 1438)
    assert read_barcodes(page).get(TRACKING) == "Code128"


def test_small_png_is_enlarged_by_whole_factors(tmp_path: Path, read_barcodes: Reader) -> None:
    png = tmp_path / "small.png"
    _carrier_waybill(width=380, height=560, module=1).save(png)
    (page,) = load_document(png, size="100x180", dpi=203).pages
    assert read_barcodes(page).get(TRACKING) == "Code128"
    # x2 exactly: every source pixel is a 2x2 block, so bar edges fall on even columns.
    ink = page.convert("L").point(lambda v: 255 - v).getbbox()
    assert ink is not None and (ink[2] - ink[0]) == 2 * 380


def test_zpl_is_kept_byte_for_byte(tmp_path: Path) -> None:
    raw = b"^XA^FO50,50^BCN,100,Y,N,N^FDYT7522345678901^FS^XZ\n"
    path = tmp_path / "carrier.zpl"
    path.write_bytes(raw)
    doc = load_document(path, size="100x180", dpi=203)
    assert doc.zpl == raw and doc.pages == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"  \n", "is empty"),
        (b"hello", "not a PDF"),
        (b"%PDF-1.4 junk", "PDF"),
    ],
)
def test_unreadable_documents(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "doc.bin"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DocumentError, match=message):
        load_document(path, size="100x180", dpi=203)


def test_fit_scale_keeps_aspect_and_prefers_the_larger_fit() -> None:
    assert fit_scale((100, 200), width=100, length=200) == (1.0, False)
    scale, rotate = fit_scale((300, 100), width=100, length=300)
    assert rotate and scale == 1.0
    assert fit_scale((50, 50), width=100, length=None) == (2.0, False)
