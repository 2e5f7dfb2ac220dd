"""Label renderers: golden images, CJK glyphs, masking on the label, fitting, whole-dot bars.

Golden images live in ``golden/``; after an intended layout change regenerate them with
``PACKLINE_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/drivers/labels`` and look at
the new PNGs before committing them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from drivers.errors import LabelDoesNotFit
from drivers.labels import (
    KINDS,
    LABEL_SIZES,
    FontNotFound,
    canvas_dots,
    find_font,
    label_size,
    label_texts,
    render,
    render_waybill,
)
from drivers.labels import fonts as fonts_module
from drivers.labels.barcodes import code128_modules
from drivers.labels.layout import MIN_MODULE_DOTS
from sync.order import Order

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[3]
REGEN = os.environ.get("PACKLINE_REGEN_GOLDEN") == "1"
# Each size at the resolution of the printer it goes on: Brother QL stock at 300 dpi,
# Chinese e-waybill stock on 203 dpi thermal printers.
GOLDEN_SIZES = [("62", 300), ("62x100", 300), ("102x152", 300), ("76x130", 203), ("100x180", 203)]
# A different FreeType build may move a few edge pixels; more than this is a change.
TOLERANCE = 0.001


def _differing_share(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("L"), b.convert("L"))
    histogram = diff.histogram()
    return 1 - histogram[0] / (a.width * a.height)


@pytest.mark.parametrize(("size", "dpi"), GOLDEN_SIZES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_golden(
    kind: str, size: str, dpi: int, returned_order: dict[str, Any], printed_at: datetime
) -> None:
    image = render(kind, returned_order, size=size, dpi=dpi, parcel=(2, 3), printed_at=printed_at)
    path = GOLDEN / f"{kind}-{size}-{dpi}dpi.png"
    if REGEN:
        image.save(path)
        return
    assert path.exists(), f"no golden image {path.name}; run with PACKLINE_REGEN_GOLDEN=1"
    golden = Image.open(path)
    assert image.size == golden.size
    assert _differing_share(image, golden) <= TOLERANCE


@pytest.mark.parametrize(("size", "dpi"), GOLDEN_SIZES)
def test_canvas_is_the_label_in_printer_dots(size: str, dpi: int, order: dict[str, Any]) -> None:
    image = render("waybill", order, size=size, dpi=dpi, printed_at=None)
    width, length = canvas_dots(label_size(size), dpi=dpi)
    assert image.mode == "1"
    assert image.width == width
    if length is not None:
        assert image.height == length
    spec = LABEL_SIZES[size]
    if dpi == 300 and spec.ql_dots is not None:
        assert image.width == spec.ql_dots[0]  # brother_ql gets exactly its printable width


def test_same_input_same_pixels(order: dict[str, Any], printed_at: datetime) -> None:
    a = render_waybill(order, size="100x180", dpi=203, printed_at=printed_at)
    b = render_waybill(Order.model_validate(order), size="100x180", dpi=203, printed_at=printed_at)
    assert a.tobytes() == b.tobytes()


def test_sizes_table() -> None:
    assert set(LABEL_SIZES) == {"62", "62x100", "102x152", "76x130", "100x180"}
    assert LABEL_SIZES["62"].endless
    assert label_size("62x100").brother_ql == "62x100"
    assert LABEL_SIZES["100x180"].brother_ql is None
    with pytest.raises(ValueError, match="unknown label size"):
        label_size("50x30")


# --- CJK text ------------------------------------------------------------------------


def test_cjk_glyphs_are_drawn_not_tofu() -> None:
    from drivers.labels.fonts import load_font

    font = load_font(find_font(), 64)

    def glyph(ch: str) -> Image.Image:
        image = Image.new("L", (80, 80), 255)
        from PIL import ImageDraw

        ImageDraw.Draw(image).text((8, 4), ch, font=font, fill=0)
        return image

    zhang, tofu = glyph("张"), glyph("\U0010fffd")  # a private-use code point no font has
    ink = sum(glyph("张").histogram()[:128])
    assert ink > 200
    assert ImageChops.difference(zhang, tofu).getbbox() is not None
    # Two different characters are two different glyphs, not the same box.
    assert ImageChops.difference(zhang, glyph("三")).getbbox() is not None


def test_recipient_name_changes_the_label(order: dict[str, Any], printed_at: datetime) -> None:
    a = render_waybill(order, size="62", printed_at=printed_at)
    order["recipient"]["name"] = "王五"
    b = render_waybill(order, size="62", printed_at=printed_at)
    assert ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is not None


def test_font_is_found_by_argument_env_then_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = find_font(environ={})
    assert system.is_file()
    assert find_font(system, environ={}) == system
    assert find_font(environ={"PACKLINE_LABEL_FONT": str(system)}) == system
    with pytest.raises(FontNotFound, match="does not exist"):
        find_font(environ={"PACKLINE_LABEL_FONT": str(tmp_path / "nope.ttf")})
    monkeypatch.setattr(fonts_module, "FONT_SEARCH_PATH", (tmp_path / "missing.ttc",))
    with pytest.raises(FontNotFound, match="fonts-wqy-zenhei"):
        find_font(environ={})


def test_missing_font_is_a_clear_error(
    order: dict[str, Any], printed_at: datetime, tmp_path: Path
) -> None:
    with pytest.raises(FontNotFound):
        render_waybill(order, printed_at=printed_at, font=tmp_path / "none.ttc")


# --- masking on the label ------------------------------------------------------------


def test_waybill_never_prints_the_recipients_full_name_or_phone(
    order: dict[str, Any], printed_at: datetime
) -> None:
    text = "\n".join(label_texts("waybill", order, printed_at=printed_at))
    assert "138****5678" in text and "张*" in text
    assert "13812345678" not in text and "张三" not in text
    # The sender is the merchant: printed in full, the carrier needs to reach it.
    assert "02088886666" in text and "Packline Demo Store" in text
    assert "SF1402867519036" in text and "PDD20261123000017" in text
    assert "深圳市" in text  # the address is printed in full: the courier needs it


def test_masked_digits_do_not_reach_the_pixels(order: dict[str, Any], printed_at: datetime) -> None:
    # Two recipients whose masked forms are equal must give identical labels.
    a = render_waybill(order, size="100x180", dpi=203, printed_at=printed_at)
    order["recipient"].update(name="张飞", phone="13899995678")
    b = render_waybill(order, size="100x180", dpi=203, printed_at=printed_at)
    assert a.tobytes() == b.tobytes()


def test_labels_say_what_the_order_says(
    returned_order: dict[str, Any], printed_at: datetime
) -> None:
    packing = label_texts("packing-list", returned_order, qc=True, printed_at=printed_at)
    assert "QC 抽检" in packing
    for line in returned_order["lines"]:
        assert f"SKU {line['sku']}" in packing and f"×{line['qty']}" in packing
        assert line["name"] in packing and line["spec"] in packing
    product = label_texts("product", returned_order, line=1, printed_at=printed_at)
    assert "棒球帽" in product and "6901234567908" in product and "×1" in product
    ret = label_texts("return", returned_order, printed_at=printed_at)
    assert "入库 RESTOCK" in ret and "RMA20261130001" in ret and "TEE-BLK-M" in ret
    waybill = label_texts("waybill", returned_order, parcel=(2, 3), printed_at=printed_at)
    assert "2/3" in waybill and "打印 2026-11-23 10:30" in waybill


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("sticker", {}, "unknown label kind"),
        ("waybill", {"parcel": (4, 3)}, "parcel 4/3"),
        ("product", {"line": 5}, "has no line 5"),
        ("return", {}, "return outcome"),
    ],
)
def test_bad_options_are_value_errors(
    order: dict[str, Any], kind: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render(kind, order, printed_at=None, **options)


# --- fitting -------------------------------------------------------------------------

LONG_ADDRESS = "科技园南区高新南一道创维大厦A座十二层东侧走廊尽头左转第三间办公室前台代收" * 4


def test_long_address_wraps_and_shrinks_on_a_fixed_label(
    order: dict[str, Any], printed_at: datetime, read_barcodes: Callable[..., dict[str, str]]
) -> None:
    order["recipient"]["address"] = LONG_ADDRESS
    image = render_waybill(order, size="76x130", dpi=203, printed_at=printed_at)
    assert image.size == canvas_dots(label_size("76x130"), dpi=203)
    assert "SF1402867519036" in read_barcodes(image)
    texts = label_texts("waybill", order, printed_at=printed_at)
    assert any(LONG_ADDRESS in t for t in texts)  # wrapped, never cut short


def test_endless_roll_grows_to_fit(order: dict[str, Any], printed_at: datetime) -> None:
    short = render_waybill(order, size="62", printed_at=printed_at)
    order["recipient"]["address"] = LONG_ADDRESS
    long = render_waybill(order, size="62", printed_at=printed_at)
    assert long.width == short.width == 696
    assert long.height > short.height + 300


def test_content_that_cannot_fit_is_an_error(order: dict[str, Any], printed_at: datetime) -> None:
    # A valid order of many lines: its packing list needs an endless roll.
    order["lines"] = [{"sku": f"SKU-{i}", "name": LONG_ADDRESS[:40]} for i in range(60)]
    with pytest.raises(LabelDoesNotFit, match=r"needs .* mm of length"):
        render("packing-list", order, size="62x100", printed_at=printed_at)


def test_barcode_too_wide_for_the_label_is_an_error(
    order: dict[str, Any], printed_at: datetime
) -> None:
    # The longest tracking number an order may have, all letters (no digit pairs to
    # pack): it fits 62 mm at 300 dpi but not the narrower 76 mm stock at 203 dpi.
    order["tracking_no"] = "JD" + "ABCDEFGHIJKLMNOPQRSTUV"
    render_waybill(order, size="62", printed_at=printed_at)
    with pytest.raises(LabelDoesNotFit, match="barcode"):
        render_waybill(order, size="76x130", dpi=203, printed_at=printed_at)


def _runs(row: bytes) -> list[int]:
    """Run lengths of dark/light starting at the first dark pixel, trailing light dropped."""
    dark = [v < 128 for v in row]
    if True not in dark:
        return []
    start, end = dark.index(True), len(dark) - dark[::-1].index(True)
    runs, current, count = [], dark[start], 0
    for d in dark[start:end]:
        if d == current:
            count += 1
        else:
            runs.append(count)
            current, count = d, 1
    return [*runs, count]


def _module_pattern_runs(modules: str) -> list[int]:
    return _runs(bytes(0 if m == "1" else 255 for m in modules))


@pytest.mark.parametrize(("size", "dpi"), GOLDEN_SIZES)
def test_barcode_modules_are_whole_dots(
    order: dict[str, Any], printed_at: datetime, size: str, dpi: int
) -> None:
    image = render_waybill(order, size=size, dpi=dpi, printed_at=printed_at).convert("L")
    expected = _module_pattern_runs(code128_modules(order["tracking_no"]))
    data = image.tobytes()
    for y in range(0, image.height, 3):
        runs = _runs(data[y * image.width : (y + 1) * image.width])
        if len(runs) == len(expected) and runs[0] % expected[0] == 0:
            module = runs[0] // expected[0]
            if runs == [r * module for r in expected]:
                assert module >= MIN_MODULE_DOTS
                return
    pytest.fail("no row of the label holds the tracking barcode on whole-dot modules")


def test_every_kind_renders_on_every_size(returned_order: dict[str, Any]) -> None:
    for kind in KINDS:
        for size in LABEL_SIZES:
            image = render(kind, returned_order, size=size, dpi=203, printed_at=None)
            assert image.width == canvas_dots(label_size(size), dpi=203)[0]


def test_layout_blocks_are_frozen() -> None:
    from drivers.labels.layout import Text

    with pytest.raises(dataclasses.FrozenInstanceError):
        Text(text="x").text = "y"  # type: ignore[misc]


@pytest.mark.parametrize("example", sorted((REPO / "docs" / "examples").glob("*.json")))
def test_every_example_order_renders_every_kind(example: Path, read_barcodes: Any) -> None:
    import json

    data = json.loads(example.read_text(encoding="utf-8"))
    kinds = [k for k in KINDS if k != "return" or "return" in data]
    for kind in kinds:
        image = render(kind, data, size="62", printed_at=None)
        assert image.width == 696
    assert data["tracking_no"] in read_barcodes(render_waybill(data, size="62", printed_at=None))
