"""Encoders: an image survives QL raster and ZPL ^GF and its barcode still scans."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from brother_ql.reader import BrotherQLReader
from PIL import Image

from drivers.errors import BadDeviceURL, LabelDoesNotFit
from drivers.fakes.ql import decode_pages
from drivers.printers.ql.raster import encode_raster, label_spec
from drivers.printers.zpl.graphics import decode_graphic_fields, image_to_zpl

from .helpers import code128_label


def _decode(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]


def test_ql_raster_round_trip_through_brother_ql_reader(tmp_path: Path) -> None:
    label = code128_label("SF1234567890", width=696)
    raster = encode_raster([label], model="QL-820NWB", label="62")
    reader = BrotherQLReader(io.BufferedReader(io.BytesIO(raster)))  # type: ignore[arg-type]
    reader.filename_fmt = str(tmp_path / "page{counter:04d}.png")
    reader.analyse()
    back = Image.open(tmp_path / "page0001.png")
    assert back.height == label.height
    assert _decode(back) == ["SF1234567890"]


def test_ql_raster_pages_and_the_fakes_decoder() -> None:
    pages = [code128_label(f"PAGE{n}", width=696) for n in range(3)]
    raster = encode_raster(pages, model="QL-820NWB", label="62", compress=True)
    decoded = decode_pages(raster)
    assert [_decode(p) for p in decoded] == [["PAGE0"], ["PAGE1"], ["PAGE2"]]


def test_ql_narrow_image_is_centred_not_scaled() -> None:
    raster = encode_raster([code128_label("NARROW1", width=500)], model="QL-820NWB", label="62")
    assert _decode(decode_pages(raster)[0]) == ["NARROW1"]


def test_ql_wider_than_the_roll_is_an_error_not_a_crop() -> None:
    with pytest.raises(LabelDoesNotFit):
        encode_raster([Image.new("L", (800, 100), 255)], model="QL-820NWB", label="62")


def test_ql_die_cut_needs_the_exact_size() -> None:
    spec = label_spec("62x100")
    assert spec.size == (62, 100) and not spec.endless
    ok = Image.new("L", spec.printable_dots, 255)
    assert encode_raster([ok], model="QL-820NWB", label="62x100")
    with pytest.raises(LabelDoesNotFit):
        encode_raster([Image.new("L", (696, 500), 255)], model="QL-820NWB", label="62x100")


def test_ql_unknown_model_or_label() -> None:
    image = Image.new("L", (696, 100), 255)
    with pytest.raises(BadDeviceURL):
        encode_raster([image], model="QL-9999", label="62")
    with pytest.raises(BadDeviceURL):
        encode_raster([image], model="QL-820NWB", label="63")


def test_zpl_graphic_field_round_trip() -> None:
    label = code128_label("YT9876543210", width=800, module=2)
    zpl = image_to_zpl(label, dpi=203)
    assert zpl.startswith(b"^XA\n^PW800\n") and zpl.rstrip().endswith(b"^XZ")
    [back] = decode_graphic_fields(zpl)
    assert back.size == label.size
    assert _decode(back) == ["YT9876543210"]


def test_zpl_exact_bytes_for_a_tiny_image() -> None:
    image = Image.new("L", (10, 2), 255)
    image.putpixel((0, 0), 0)
    image.putpixel((9, 1), 0)
    assert image_to_zpl(image, copies=2) == (
        b"^XA\n^PW10\n^LL2\n^LH0,0\n^FO0,0^GFA,4,4,2,80000040^FS\n^PQ2\n^XZ\n"
    )


def test_zpl_compressed_ascii_decodes() -> None:
    # 2 rows of 2 bytes: "FFF0" as ZPL run-length ("I" = 3 times, "," = zero fill), ":" repeats.
    [image] = decode_graphic_fields(b"^XA^GFA,4,4,2,IF,:^FS^XZ")
    assert image.size == (16, 2)
    assert image.getpixel((0, 0)) == 0 and image.getpixel((15, 1)) == 255


def test_zpl_too_wide_is_an_error() -> None:
    with pytest.raises(LabelDoesNotFit):
        image_to_zpl(Image.new("L", (900, 10), 255), dpi=203)
