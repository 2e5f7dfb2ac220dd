"""``packline label render`` as a person runs it: a subprocess, files in and out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from brother_ql.reader import BrotherQLReader
from PIL import Image

from drivers.printers.zpl.graphics import decode_graphic_fields

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "docs" / "examples" / "order.json"
Reader = Callable[[Image.Image], dict[str, str]]


def _label(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "packline", "label", "render", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_example_order_renders_as_is(tmp_path: Path, read_barcodes: Reader) -> None:
    out = tmp_path / "waybill.png"
    done = _label("--order", EXAMPLE, "--kind", "waybill", "--format", "png", "--out", out)
    assert done.returncode == 0, done.stderr
    assert read_barcodes(Image.open(out)).get("SF1402867519036") == "Code128"


def test_ql_and_zpl_output(tmp_path: Path, read_barcodes: Reader) -> None:
    ql, zpl = tmp_path / "w.bin", tmp_path / "w.zpl"
    done = _label(
        "--order", EXAMPLE, "--format", "ql", "--printer-model", "QL-820NWB", "--label", "62",
        "--out", ql,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reader = BrotherQLReader(io.BytesIO(ql.read_bytes()))
    reader.filename_fmt = str(tmp_path / "page{counter:04d}.png")
    reader.analyse()
    assert read_barcodes(Image.open(tmp_path / "page0001.png")).get("SF1402867519036")
    done = _label("--order", EXAMPLE, "--kind", "packing-list", "--format", "zpl", "--out", zpl)
    assert done.returncode == 0, done.stderr
    (image,) = decode_graphic_fields(zpl.read_bytes())
    assert "PDD20261123000017" in read_barcodes(image)


def test_document_pdf_and_zpl(tmp_path: Path, read_barcodes: Reader) -> None:
    sheet = Image.open(_render_png(tmp_path)).convert("L")
    pdf = tmp_path / "carrier.pdf"
    sheet.save(pdf, "PDF", resolution=300)
    out = tmp_path / "fitted.png"
    done = _label("--document", pdf, "--size", "76x130", "--dpi", "203", "--out", out)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (607, 1038)
    assert read_barcodes(Image.open(out)).get("SF1402867519036") == "Code128"

    raw = tmp_path / "carrier.zpl"
    raw.write_bytes(b"^XA^FO20,20^BCN,80^FDSF1^FS^XZ")
    passed = tmp_path / "out.zpl"
    assert _label("--document", raw, "--format", "zpl", "--out", passed).returncode == 0
    assert passed.read_bytes() == raw.read_bytes()


def _render_png(tmp_path: Path) -> Path:
    out = tmp_path / "source.png"
    assert _label("--order", EXAMPLE, "--out", out).returncode == 0
    return out


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--order", "missing.json"], "cannot read order file"),
        ("{not json", ["--order", "{file}"], "is not valid JSON"),
        ('{"order_no": "X"}', ["--order", "{file}"], "order X has no tracking number"),
        (
            '{"order_no": "X", "lines": [{"sku": "S", "qty": 0}]}',
            ["--order", "{file}"],
            "order file {file}: lines[0].qty: must be at least 1, got 0",
        ),
        (None, ["--order", str(EXAMPLE), "--format", "ql", "--size", "100x180"], "no Brother QL"),
        (None, ["--order", str(EXAMPLE), "--size", "9x9"], "unknown label size"),
        (None, ["--document", "missing.pdf"], "cannot read document"),
        (None, [], "exactly one of --order"),
    ],
)
def test_mistakes_end_with_one_line_and_exit_2(
    tmp_path: Path, setup: str | None, args: list[str], message: str
) -> None:
    file = tmp_path / "order.json"
    if setup is not None:
        file.write_text(setup, encoding="utf-8")
    args = [a.replace("{file}", str(file)) for a in args]
    message = message.replace("{file}", str(file))
    done = _label(*args, "--out", tmp_path / "x.png")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("packline: error:"), done.stderr
    assert message in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_an_unknown_kind_is_a_usage_mistake(tmp_path: Path) -> None:
    done = _label("--order", EXAMPLE, "--kind", "sticker", "--out", tmp_path / "x.png")
    assert done.returncode == 2
    assert "Invalid value for '--kind'" in done.stderr and "'waybill'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_example_order_is_documented() -> None:
    doc = (REPO / "docs" / "order.md").read_text(encoding="utf-8")
    order = json.loads(EXAMPLE.read_text(encoding="utf-8"))

    def fields(prefix: str, data: dict[str, object]) -> list[str]:
        out = []
        for key, value in data.items():
            out.append(prefix + key)
            if isinstance(value, dict):
                out += fields(f"{prefix}{key}.", value)
            if isinstance(value, list) and value and isinstance(value[0], dict):
                out += fields(f"{prefix}{key}[].", value[0])
        return out

    for name in fields("", order):
        assert f"`{name}`" in doc, f"docs/order.md does not document {name}"
