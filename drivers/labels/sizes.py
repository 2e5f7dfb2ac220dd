"""Label sizes as data: physical size, the Brother QL label they match, and dots.

Renderers draw on a canvas measured in printer dots, so that every barcode module
lands on whole dots. For a Brother QL label at 300 dpi the canvas is exactly the
printable area brother_ql expects (``ql_dots``): an image of any other width would be
resampled by the encoder and the barcode's modules smeared. Elsewhere (ZPL printers,
PNG) the canvas is the label's physical size at the chosen resolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from drivers.errors import DriverError

__all__ = ["LABEL_SIZES", "QL_DPI", "LabelSize", "UnknownLabelSize", "canvas_dots", "label_size"]

QL_DPI = 300
MM_PER_INCH = 25.4


class UnknownLabelSize(DriverError, ValueError):
    """A label size that is not in :data:`LABEL_SIZES`."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabelSize:
    """One label stock.

    ``length_mm`` is ``None`` for endless (continuous) rolls: the label grows to fit.
    ``brother_ql`` is brother_ql's label identifier when Brother sells this stock, and
    ``ql_dots`` its printable area at 300 dpi (width, length; length 0 for endless),
    copied from brother_ql's label table so renderers need not import brother_ql.
    """

    key: str
    width_mm: float
    length_mm: float | None
    brother_ql: str | None = None
    ql_dots: tuple[int, int] | None = None
    description: str = ""

    @property
    def endless(self) -> bool:
        """True for continuous rolls, cut to the length of the content."""
        return self.length_mm is None


LABEL_SIZES: Mapping[str, LabelSize] = {
    s.key: s
    for s in (
        LabelSize(
            key="62",
            width_mm=62,
            length_mm=None,
            brother_ql="62",
            ql_dots=(696, 0),
            description="62 mm endless roll (Brother DK-22205)",
        ),
        LabelSize(
            key="62x100",
            width_mm=62,
            length_mm=100,
            brother_ql="62x100",
            ql_dots=(696, 1109),
            description="62 x 100 mm die-cut (Brother DK-11202)",
        ),
        LabelSize(
            key="102x152",
            width_mm=102,
            length_mm=152,
            brother_ql="102x152",
            ql_dots=(1164, 1660),
            description='4 x 6" shipping label (Brother DK-11241, ZPL 4x6)',
        ),
        LabelSize(
            key="76x130",
            width_mm=76,
            length_mm=130,
            description="76 x 130 mm e-waybill (two-part, thermal)",
        ),
        LabelSize(
            key="100x180",
            width_mm=100,
            length_mm=180,
            description="100 x 180 mm Chinese e-waybill (thermal, one-part)",
        ),
    )
}


def label_size(key: str) -> LabelSize:
    """The size for ``key`` (``"100x180"``) or for a brother_ql label identifier.

    Raises :class:`UnknownLabelSize` naming the known sizes.
    """
    found = LABEL_SIZES.get(key) or next(
        (s for s in LABEL_SIZES.values() if s.brother_ql == key), None
    )
    if found is None:
        known = ", ".join(LABEL_SIZES)
        raise UnknownLabelSize(f"unknown label size {key!r}; known sizes: {known}")
    return found


def canvas_dots(size: LabelSize, *, dpi: int) -> tuple[int, int | None]:
    """The canvas in printer dots (width, length); length ``None`` for endless rolls."""
    if dpi < 100 or dpi > 1200:
        raise ValueError(f"dpi must be between 100 and 1200, not {dpi}")
    if dpi == QL_DPI and size.ql_dots is not None:
        width, length = size.ql_dots
        return width, (length or None)

    def dots(mm: float) -> int:
        return int(mm * dpi / MM_PER_INCH)

    return dots(size.width_mm), (None if size.length_mm is None else dots(size.length_mm))
