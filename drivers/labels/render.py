"""The label kinds: waybill, packing list, product label, return/restock label.

Each kind is a function from the order (:class:`sync.order.Order`, the one order model
central, the wire and the bench use) and the bench's choices (which parcel, QC flag,
print time) to a layout tree; :func:`render` lays the tree out on the label size
and returns a 1-bit Pillow image in printer dots. Same input, same pixels: the print
time is an argument, and the only clock read is the documented default when it is
``None``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from drivers.labels.fonts import find_fallback_fonts, find_font
from drivers.labels.layout import (
    NBSP,
    Block,
    Code128,
    Inverse,
    QRCode,
    Row,
    Rule,
    Spacer,
    Stack,
    Text,
    compose,
)
from drivers.labels.masking import mask_name, mask_phone
from drivers.labels.sizes import canvas_dots, label_size
from sync.order import Order, Party, ReturnInfo, ReturnOutcome, validate_order

__all__ = [
    "DATE_FORMAT",
    "KINDS",
    "RETURN_OUTCOMES",
    "label_texts",
    "render",
    "render_packing_list",
    "render_product",
    "render_return",
    "render_waybill",
]

DATE_FORMAT = "%Y-%m-%d %H:%M"

#: How a returned parcel was judged (B8), in the words printed on the return label.
RETURN_OUTCOMES: Mapping[ReturnOutcome, str] = {
    ReturnOutcome.RESTOCK: "入库 RESTOCK",
    ReturnOutcome.DAMAGED: "破损 DAMAGED",
    ReturnOutcome.WRONG_ITEM: "错货 WRONG ITEM",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Options:
    parcel: tuple[int, int]
    qc: bool
    printed: str
    line: int
    returned: ReturnInfo | None


def _party(tag: str, party: Party, *, pt: float, masked: bool) -> Block:
    # The recipient is a private person: only the masked forms ever reach the layout
    # (B3, C1). The sender is the merchant, whose name and phone the carrier needs.
    name, phone = party.name, party.phone
    if masked:
        name, phone = mask_name(name), mask_phone(phone)
    return Row(
        children=[
            Inverse(text=tag, pt=pt + 2, min_pt=8),
            Stack(
                children=[
                    # A phone number never breaks across lines.
                    Text(
                        text=f"{name}  {phone.replace(' ', NBSP)}",
                        pt=pt,
                        bold=True,
                    ),
                    Text(text=party.full_address, pt=pt - 1, min_pt=6),
                ]
            ),
        ]
    )


def _waybill(order: Order, opt: _Options) -> Block:
    if not order.tracking_no:
        # Valid but not packable (B1): the bench never gets here, a direct call might.
        raise ValueError(f"order {order.order_no} has no tracking number for its waybill")
    n, total = opt.parcel
    blocks: list[Block] = [
        Row(
            children=[
                Stack(
                    children=[
                        Text(text=order.carrier, pt=20, min_pt=10, bold=True),
                        *([Text(text=order.service, pt=11, min_pt=7)] if order.service else []),
                    ]
                ),
                Inverse(text=f"{n}/{total}", pt=20, min_pt=10),
            ]
        ),
        Rule(),
        Code128(data=order.tracking_no, height_mm=18, min_height_mm=10, pt=12, min_pt=7),
        Rule(),
        _party("收", order.recipient, pt=14, masked=True),
    ]
    if order.sender is not None:
        blocks += [Rule(), _party("寄", order.sender, pt=10, masked=False)]
    footer: list[Block] = [
        Text(text=f"订单 {order.order_no}", pt=10, min_pt=6),
        Text(text=f"打印 {opt.printed}", pt=9, min_pt=6),
    ]
    if order.note:
        footer.append(Text(text=f"备注 {order.note}", pt=9, min_pt=6))
    blocks += [Rule(), Row(children=[QRCode(data=order.order_no), Stack(children=footer)])]
    return Stack(children=blocks)


def _packing_list(order: Order, opt: _Options) -> Block:
    title: list[Block] = [Text(text="装箱单 Packing list", pt=16, min_pt=9, bold=True)]
    if opt.qc:
        title.append(Inverse(text="QC 抽检", pt=16, min_pt=9))
    blocks: list[Block] = [
        Row(children=title),
        Text(text=f"订单 {order.order_no}", pt=11, min_pt=6),
        Text(text=f"{order.carrier} {order.tracking_no}", pt=10, min_pt=6),
        Rule(),
    ]
    for i, line in enumerate(order.lines):
        if i:
            blocks.append(Rule(thickness_mm=0.15, space_mm=0.6))
        detail = [Text(text=line.name or line.sku, pt=12, min_pt=6, bold=True)]
        if line.spec:
            detail.append(Text(text=line.spec, pt=10, min_pt=6))
        detail.append(Text(text=f"SKU {line.sku}", pt=9, min_pt=6))
        blocks.append(
            Row(children=[Stack(children=detail), Text(text=f"×{line.qty}", pt=16, fixed=True)])
        )
    items = sum(line.qty for line in order.lines)
    blocks += [
        Rule(),
        Text(text=f"共 {items} 件 / {len(order.lines)} 行", pt=11, min_pt=6, bold=True),
        Spacer(mm=1),
        Code128(data=order.order_no, height_mm=10, min_height_mm=6, pt=9, min_pt=6),
        Text(text=f"打印 {opt.printed}", pt=8, min_pt=6),
    ]
    return Stack(children=blocks)


def _product(order: Order, opt: _Options) -> Block:
    if not 0 <= opt.line < len(order.lines):
        raise ValueError(f"order {order.order_no} has no line {opt.line}")
    line = order.lines[opt.line]
    blocks: list[Block] = [Text(text=line.name or line.sku, pt=14, min_pt=7, bold=True)]
    if line.spec:
        blocks.append(Text(text=line.spec, pt=11, min_pt=6))
    blocks += [
        Row(
            children=[
                Text(text=f"SKU {line.sku}", pt=10, min_pt=6),
                Inverse(text=f"×{line.qty}", pt=14, min_pt=8),
            ]
        ),
        Code128(data=line.scan_code, height_mm=10, min_height_mm=5, pt=9, min_pt=6),
    ]
    return Stack(children=blocks)


def _return(order: Order, opt: _Options) -> Block:
    returned = opt.returned or order.return_info
    if returned is None:
        raise ValueError("a return label needs the return outcome (order field return.outcome)")
    head: list[Block] = [Text(text=f"订单 {order.order_no}", pt=11, min_pt=6)]
    if returned.rma_no:
        head.append(Text(text=f"售后 RMA {returned.rma_no}", pt=10, min_pt=6))
    if returned.reason:
        head.append(Text(text=f"原因 {returned.reason}", pt=10, min_pt=6))
    blocks: list[Block] = [
        Row(
            children=[
                Text(text="退货 Return", pt=16, min_pt=9, bold=True),
                Inverse(text=RETURN_OUTCOMES[returned.outcome], pt=14, min_pt=8),
            ]
        ),
        *head,
        Rule(),
    ]
    for line in order.lines:
        name = " ".join(p for p in (line.name, line.spec) if p)
        blocks.append(
            Row(
                children=[
                    Stack(
                        children=[
                            Text(text=line.sku, pt=10, min_pt=6, bold=True),
                            Text(text=name, pt=9, min_pt=6),
                        ]
                    ),
                    Text(text=f"×{line.qty}", pt=14, fixed=True),
                ]
            )
        )
    blocks += [
        Rule(),
        Code128(data=returned.rma_no or order.order_no, height_mm=10, min_height_mm=6, pt=9),
        Text(text=f"打印 {opt.printed}", pt=8, min_pt=6),
    ]
    return Stack(children=blocks)


KINDS: Mapping[str, Callable[[Order, _Options], Block]] = {
    "waybill": _waybill,
    "packing-list": _packing_list,
    "product": _product,
    "return": _return,
}
"""Label kind → layout builder; the keys are the kinds :func:`render` accepts."""


def _layout(
    kind: str,
    order: Order | Mapping[str, Any],
    *,
    parcel: tuple[int, int] | None,
    qc: bool,
    printed_at: datetime | None,
    line: int,
    returned: ReturnInfo | None,
) -> Block:
    if kind not in KINDS:
        raise ValueError(f"unknown label kind {kind!r}; kinds: {', '.join(KINDS)}")
    if not isinstance(order, Order):
        order = validate_order(order)
    n, total = parcel or (1, order.parcel_count)
    if not 1 <= n <= total:
        raise ValueError(f"parcel {n}/{total} is not a parcel of the shipment")
    # The one clock read of the renderers: callers that need identical pixels pass it.
    when = printed_at if printed_at is not None else datetime.now().astimezone()
    opt = _Options(
        parcel=(n, total), qc=qc, printed=when.strftime(DATE_FORMAT), line=line, returned=returned
    )
    return KINDS[kind](order, opt)


def render(
    kind: str,
    order: Order | Mapping[str, Any],
    *,
    size: str = "100x180",
    dpi: int = 300,
    parcel: tuple[int, int] | None = None,
    qc: bool = False,
    printed_at: datetime | None = None,
    line: int = 0,
    returned: ReturnInfo | None = None,
    font: str | os.PathLike[str] | None = None,
    fallback_fonts: Sequence[str | os.PathLike[str]] | None = None,
) -> Image.Image:
    """Render one label of ``kind`` (a key of :data:`KINDS`) as a 1-bit image in printer dots.

    ``order`` is an :class:`~sync.order.Order` or the order object as a mapping (read
    with :func:`~sync.order.validate_order`; unknown fields are ignored). ``size`` is a
    key of :data:`~drivers.labels.sizes.LABEL_SIZES` (or a brother_ql label id) and
    ``dpi`` the printer's resolution: the image is exactly the label's dots (for a
    Brother QL label at 300 dpi, its printable area), endless rolls as long as needed.
    ``parcel`` is (this parcel, parcels in the shipment), default (1, order.parcels);
    ``qc`` flags the packing list for a quality check (B7); ``printed_at`` is printed
    as the print date — when ``None`` the station's clock is read, so pass it for
    reproducible output; ``line`` picks the order line of a product label;
    ``returned`` gives a return label's outcome when the order does not carry one;
    ``font`` overrides the CJK font (see :func:`~drivers.labels.fonts.find_font`);
    ``fallback_fonts`` the fonts for characters it lacks, such as an emoji in a name
    (default: :func:`~drivers.labels.fonts.find_fallback_fonts`; what no font has is
    printed as a boxed question mark, never as an empty box).

    Raises :class:`ValueError` for a malformed order or option
    (:class:`~sync.order.InvalidOrder` names the field), a waybill without a tracking
    number or a return label without an outcome,
    :class:`~drivers.errors.LabelDoesNotFit` when the content cannot fit the size and
    :class:`~drivers.labels.fonts.FontNotFound` without a CJK font.
    """
    root = _layout(
        kind, order, parcel=parcel, qc=qc, printed_at=printed_at, line=line, returned=returned
    )
    width, length = canvas_dots(label_size(size), dpi=dpi)
    fallbacks = (
        find_fallback_fonts() if fallback_fonts is None else tuple(Path(f) for f in fallback_fonts)
    )
    return compose(
        root,
        width=width,
        length=length,
        dpi=dpi,
        font_path=find_font(font),
        fallback_paths=fallbacks,
        what=kind,
    )


def label_texts(
    kind: str,
    order: Order | Mapping[str, Any],
    *,
    parcel: tuple[int, int] | None = None,
    qc: bool = False,
    printed_at: datetime | None = None,
    line: int = 0,
    returned: ReturnInfo | None = None,
) -> tuple[str, ...]:
    """Every text and barcode payload :func:`render` would print, in layout order.

    For checks that a label says exactly what the order says — and nothing it must not
    (a waybill never carries the full phone number or name).
    """
    root = _layout(
        kind, order, parcel=parcel, qc=qc, printed_at=printed_at, line=line, returned=returned
    )
    return tuple(root.texts())


def render_waybill(order: Order | Mapping[str, Any], **options: Any) -> Image.Image:
    """The shipping label (B3): :func:`render` with ``kind="waybill"``."""
    return render("waybill", order, **options)


def render_packing_list(order: Order | Mapping[str, Any], **options: Any) -> Image.Image:
    """The packing list (B3): :func:`render` with ``kind="packing-list"``."""
    return render("packing-list", order, **options)


def render_product(order: Order | Mapping[str, Any], **options: Any) -> Image.Image:
    """A product label for ``line`` (B3): :func:`render` with ``kind="product"``."""
    return render("product", order, **options)


def render_return(order: Order | Mapping[str, Any], **options: Any) -> Image.Image:
    """A return/restock label (B8): :func:`render` with ``kind="return"``."""
    return render("return", order, **options)
