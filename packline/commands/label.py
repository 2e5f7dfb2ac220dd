"""``packline label``: render labels and carrier documents to PNG, Brother QL or ZPL.

``packline label render --order ORDER.json --kind waybill --format ql --label 62 --out X``
renders an order; ``--document FILE.pdf|png|zpl`` prints a carrier's ready-made waybill
instead. Problems a person can fix (missing file, malformed order, a size the printer
cannot take) end with one line and exit code 2.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import typer
from PIL import Image

from drivers.labels.documents import Document, load_document
from drivers.labels.render import render
from drivers.labels.sizes import LABEL_SIZES, QL_DPI, label_size
from packline.commands import command_group
from sync.errors import UserError
from sync.order import InvalidOrder, Order, validate_order

__all__ = ["LabelInputError", "LabelKind", "OutputFormat", "app", "encode_pages"]

app = command_group()


class LabelInputError(UserError, ValueError):
    """An input to ``packline label`` that cannot be used (file, order, option)."""


class LabelKind(enum.StrEnum):
    """What ``--kind`` renders: one of :data:`drivers.labels.render.KINDS`."""

    WAYBILL = "waybill"
    PACKING_LIST = "packing-list"
    PRODUCT = "product"
    RETURN = "return"


class OutputFormat(enum.StrEnum):
    """What ``--out`` receives."""

    PNG = "png"
    QL = "ql"
    ZPL = "zpl"


# Resolution when --dpi is not given: QL prints at 300 dpi, most ZPL printers at 203.
DEFAULT_DPI: Mapping[OutputFormat, int] = {
    OutputFormat.PNG: 300,
    OutputFormat.QL: QL_DPI,
    OutputFormat.ZPL: 203,
}
DEFAULT_SIZE: Mapping[OutputFormat, str] = {
    OutputFormat.PNG: "100x180",
    OutputFormat.QL: "62",
    OutputFormat.ZPL: "100x180",
}


def _ql(pages: Sequence[Image.Image], *, model: str, label: str, dpi: int) -> bytes:
    from drivers.printers.ql.raster import encode_raster

    return encode_raster(pages, model=model, label=label)


def _zpl(pages: Sequence[Image.Image], *, model: str, label: str, dpi: int) -> bytes:
    from drivers.printers.zpl.graphics import image_to_zpl

    return b"".join(image_to_zpl(page, dpi=dpi) for page in pages)


# PNG has no entry: it is an image file per page, not printer bytes.
ENCODERS: Mapping[OutputFormat, Callable[..., bytes]] = {
    OutputFormat.QL: _ql,
    OutputFormat.ZPL: _zpl,
}


def encode_pages(
    pages: Sequence[Image.Image], *, fmt: OutputFormat, model: str, label: str, dpi: int
) -> bytes:
    """Printer bytes for rendered pages: Brother QL raster or ZPL ^GF graphic fields."""
    if fmt not in ENCODERS:
        raise ValueError(f"{fmt.value} output is an image per page, not printer bytes")
    return ENCODERS[fmt](pages, model=model, label=label, dpi=dpi)


def _read_order(path: Path) -> Order:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabelInputError(f"cannot read order file {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabelInputError(f"order file {path} is not valid JSON: {exc}") from None
    try:
        return validate_order(data)
    except InvalidOrder as exc:
        raise LabelInputError(f"order file {path}: {exc}") from None


def _parcel(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        n, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise LabelInputError(f"--parcel must look like 2/3, not {text!r}") from None
    return n, total


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise LabelInputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _page_paths(out: Path, count: int) -> list[Path]:
    # A PNG holds one page; a multi-page PDF writes OUT, OUT-2, OUT-3...
    return [out] + [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(2, count + 1)]


@app.command("render")
def render_command(
    out: Path = typer.Option(
        ..., "--out", metavar="FILE", help="File to write (a PDF's pages: FILE, FILE-2...)."
    ),
    order_file: Path | None = typer.Option(
        None, "--order", metavar="FILE", help="Order JSON (docs/order.md)."
    ),
    document: Path | None = typer.Option(
        None,
        "--document",
        metavar="FILE",
        help="Carrier-supplied waybill (PDF, PNG or ZPL) instead of --order.",
    ),
    kind: LabelKind = typer.Option(LabelKind.WAYBILL, "--kind", help="What to render."),
    fmt: OutputFormat = typer.Option(OutputFormat.PNG, "--format", help="What --out receives."),
    printer_model: str = typer.Option("QL-820NWB", "--printer-model", help="Brother QL model."),
    label: str | None = typer.Option(None, "--label", help="Brother label (62, 62x100...)."),
    size: str | None = typer.Option(
        None, "--size", help=f"Label size: {', '.join(LABEL_SIZES)} (default by format)."
    ),
    dpi: int | None = typer.Option(None, "--dpi", help="Printer dots per inch (QL: 300)."),
    parcel: str | None = typer.Option(None, "--parcel", help="This parcel of the shipment: 2/3."),
    qc: bool = typer.Option(False, "--qc", help="Flag the packing list for a quality check."),
    line: int = typer.Option(0, "--line", help="Order line of a product label (from 0)."),
    printed_at: datetime | None = typer.Option(
        None, "--printed-at", help="Print date to show (ISO 8601); default now."
    ),
    font: Path | None = typer.Option(None, "--font", metavar="FILE", help="CJK font file."),
) -> None:
    """Render an order's label, or fit a carrier's document, for a printer."""
    if (order_file is None) == (document is None):
        raise LabelInputError("give exactly one of --order ORDER.json and --document FILE")
    size_key = label_size(label or size or DEFAULT_SIZE[fmt]).key
    # 0 is a resolution like -5 (refused below), not "the default".
    resolution = DEFAULT_DPI[fmt] if dpi is None else dpi
    ql_label = label or label_size(size_key).brother_ql
    if fmt is OutputFormat.QL:
        if resolution != QL_DPI:
            raise LabelInputError(f"Brother QL printers print at {QL_DPI} dpi, not {resolution}")
        if ql_label is None:
            raise LabelInputError(f"there is no Brother QL label of size {size_key}")

    if document is not None:
        doc = load_document(document, size=size_key, dpi=resolution)
    else:
        assert order_file is not None
        try:
            page = render(
                kind.value,
                _read_order(order_file),
                size=size_key,
                dpi=resolution,
                parcel=_parcel(parcel),
                qc=qc,
                printed_at=printed_at,
                line=line,
                font=font,
            )
        except ValueError as exc:
            if isinstance(exc, UserError):
                raise
            raise LabelInputError(str(exc)) from None
        doc = Document(pages=(page,))
    _emit(doc, out=out, fmt=fmt, model=printer_model, label=ql_label or "", dpi=resolution)


def _emit(doc: Document, *, out: Path, fmt: OutputFormat, model: str, label: str, dpi: int) -> None:
    written = [out]
    if doc.zpl is not None:
        if fmt is not OutputFormat.ZPL:
            raise LabelInputError("a ZPL document can only go to a ZPL printer (--format zpl)")
        _write(out, doc.zpl)  # passed through untouched: the carrier's ZPL is the label
    elif fmt is OutputFormat.PNG:
        written = _page_paths(out, len(doc.pages))
        for path, page in zip(written, doc.pages, strict=True):
            try:
                page.save(path, format="PNG", dpi=(dpi, dpi))
            except OSError as exc:
                raise LabelInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    else:
        _write(out, encode_pages(doc.pages, fmt=fmt, model=model, label=label, dpi=dpi))
    for path in written:  # a PDF of three pages is three PNG files: name each
        typer.echo(f"wrote {path}")


@app.command("sizes")
def sizes_command() -> None:
    """List the label sizes, with their Brother QL label where there is one."""
    for s in LABEL_SIZES.values():
        length = "endless" if s.length_mm is None else f"{s.length_mm:g} mm"
        ql = f"  brother_ql={s.brother_ql}" if s.brother_ql else ""
        typer.echo(f"{s.key:<8} {s.width_mm:g} mm x {length:<8}{ql}  {s.description}")


@app.command("commands")
def commands_command(
    out: Path = typer.Option(
        ...,
        "--out",
        metavar="FILE",
        help="FILE.pdf (every page in one file) or FILE.png (pages FILE, FILE-2...).",
    ),
    station: str = typer.Option("", "--station", help="Bench name printed in the heading."),
) -> None:
    """Print the sheet of command barcodes (CMD-OK, CMD-UNDO...) with their names."""
    from edge.bench.sheet import DPI, command_sheet

    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise LabelInputError(f"--out must end in .pdf or .png, not {out.name!r}")
    pages = command_sheet(station=station)
    if suffix == ".pdf":
        try:
            first, *rest = [page.convert("L") for page in pages]
            first.save(out, format="PDF", save_all=True, append_images=rest, resolution=DPI)
        except OSError as exc:
            raise LabelInputError(f"cannot write {out}: {exc.strerror or exc}") from None
        typer.echo(f"wrote {out} ({len(pages)} pages)")
        return
    for path, page in zip(_page_paths(out, len(pages)), pages, strict=True):
        try:
            page.save(path, format="PNG", dpi=(DPI, DPI))
        except OSError as exc:
            raise LabelInputError(f"cannot write {path}: {exc.strerror or exc}") from None
        typer.echo(f"wrote {path}")
