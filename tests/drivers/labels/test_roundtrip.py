"""Round trips: what the printer would print still scans as the tracking number.

Render → PNG, → Brother QL raster read back by brother_ql's own reader, → ZPL ^GF
decoded back to an image; each time zxing-cpp must read the tracking number (Code128)
and, on the waybill, the order number (QR).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from brother_ql.reader import BrotherQLReader
from PIL import Image

from drivers.labels import render, render_waybill
from drivers.printers.ql.raster import encode_raster
from drivers.printers.zpl.graphics import decode_graphic_fields, image_to_zpl

Reader = Callable[[Image.Image], dict[str, str]]


@pytest.mark.parametrize(("size", "dpi"), [("62", 300), ("102x152", 300), ("100x180", 203)])
def test_png_decodes_tracking_and_order_number(
    order: dict[str, Any], printed_at: datetime, read_barcodes: Reader, size: str, dpi: int
) -> None:
    found = read_barcodes(render_waybill(order, size=size, dpi=dpi, printed_at=printed_at))
    assert found.get("SF1402867519036") == "Code128"
    assert found.get("PDD20261123000017") == "QRCode"


def test_other_kinds_scan(returned_order: dict[str, Any], read_barcodes: Reader) -> None:
    def codes(kind: str, **kw: Any) -> dict[str, str]:
        return read_barcodes(render(kind, returned_order, size="62", printed_at=None, **kw))

    assert "PDD20261123000017" in codes("packing-list")
    assert "6901234567908" in codes("product", line=1)
    assert "RMA20261130001" in codes("return")


def _ql_read_back(data: bytes, tmp_path: Path) -> Image.Image:
    reader = BrotherQLReader(io.BytesIO(data))
    reader.filename_fmt = str(tmp_path / "page{counter:04d}.png")
    reader.analyse()
    return Image.open(tmp_path / "page0001.png")


@pytest.mark.parametrize("label", ["62", "62x100", "102x152"])
def test_ql_raster_round_trip(
    order: dict[str, Any],
    printed_at: datetime,
    read_barcodes: Reader,
    tmp_path: Path,
    label: str,
) -> None:
    image = render_waybill(order, size=label, dpi=300, printed_at=printed_at)
    data = encode_raster(
        [image], model="QL-1100" if label == "102x152" else "QL-820NWB", label=label
    )
    back = _ql_read_back(data, tmp_path)
    assert back.height == image.height  # one raster line per row: nothing was rescaled
    assert read_barcodes(back).get("SF1402867519036") == "Code128"


@pytest.mark.parametrize("dpi", [203, 300])
def test_zpl_round_trip(
    order: dict[str, Any], printed_at: datetime, read_barcodes: Reader, dpi: int
) -> None:
    image = render_waybill(order, size="100x180", dpi=dpi, printed_at=printed_at)
    (back,) = decode_graphic_fields(image_to_zpl(image, dpi=dpi))
    assert back.crop((0, 0, image.width, image.height)).tobytes() == image.tobytes()
    assert read_barcodes(back).get("SF1402867519036") == "Code128"
