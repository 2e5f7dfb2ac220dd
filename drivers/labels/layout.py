"""A small box layout for labels: blocks measured and drawn in printer dots.

A label is a tree of blocks (text, barcodes, rules, rows, stacks). Every block can say
how tall it is at a given width and scale, and draw itself. :func:`compose` tries the
full scale first and shrinks text and barcode heights step by step down to their
minimums until the content fits the label; endless rolls instead grow in length.
What cannot fit even then is :class:`~drivers.errors.LabelDoesNotFit` — a label is
never cropped silently. Barcodes never shrink in width below whole-dot modules.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageDraw, ImageFont

from drivers.errors import LabelDoesNotFit
from drivers.labels.barcodes import (
    CODE128_QUIET_MODULES,
    QR_QUIET_MODULES,
    code128_modules,
    draw_code128,
    draw_qr,
    qr_matrix,
)
from drivers.labels.fonts import has_kerning, load_font
from drivers.labels.glyphs import Face, draw_runs, runs_width

__all__ = [
    "MIN_MODULE_DOTS",
    "NBSP",
    "SCALES",
    "Block",
    "Code128",
    "Ctx",
    "Inverse",
    "QRCode",
    "Row",
    "Rule",
    "Spacer",
    "Stack",
    "Text",
    "compose",
    "wrap",
]

MM_PER_INCH = 25.4
# Two dots is the narrowest bar a thermal head prints reliably (0.17 mm at 300 dpi,
# 0.25 mm at 203 dpi); handheld warehouse scanners read 0.17 mm bars.
MIN_MODULE_DOTS = 2
# Tried in order until the content fits; the last is the smallest text allowed.
SCALES: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
# Leading between wrapped lines, as a share of the font size.
LEADING = 0.15
# Pixels at or above this grey level print white; the label is 1-bit on the printer.
THRESHOLD = 128


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ctx:
    """Resolution, current shrink step and fonts: everything a block needs to size itself.

    ``fallback_paths`` are the fonts for characters the CJK font lacks (see
    :mod:`drivers.labels.glyphs`).
    """

    dpi: int
    scale: float
    font_path: Path
    fallback_paths: tuple[Path, ...] = ()

    def dots(self, mm: float) -> int:
        """``mm`` millimetres in printer dots."""
        return round(mm * self.dpi / MM_PER_INCH)

    def font(self, pt: float, min_pt: float) -> ImageFont.FreeTypeFont:
        """The font at ``pt`` points scaled by the current step, never below ``min_pt``."""
        return load_font(self.font_path, self._px(pt, min_pt))

    def face(self, pt: float, min_pt: float) -> Face:
        """Like :meth:`font`, with the fallback fonts for what the CJK font lacks."""
        return Face(self.font_path, self._px(pt, min_pt), self.fallback_paths)

    def _px(self, pt: float, min_pt: float) -> int:
        return max(round(min_pt * self.dpi / 72), round(pt * self.scale * self.dpi / 72))


class Block(Protocol):
    """One piece of a label."""

    def natural_width(self, ctx: Ctx) -> int | None:
        """Width the block wants in a :class:`Row`, or ``None`` to take what is left."""

    def measure(self, ctx: Ctx, width: int) -> int:
        """Height in dots when laid out ``width`` dots wide."""

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        """Draw with the top-left corner at (x, y)."""

    def texts(self) -> Iterator[str]:
        """Every human-readable string and barcode payload the block prints."""


# ASCII words and numbers wrap as a whole (no-break spaces join them); every other
# character (CJK) may break alone, but never inside what a reader sees as one
# character (an emoji joined by U+200D, with a skin tone or a variation selector).
NBSP = "\u00a0"
_ATTACHED = "\u0300-\u036f\u20e3\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
_TOKENS = re.compile(
    rf"[!-~\u00a0{_ATTACHED}]+|[^\S\u00a0]+|.(?:\u200d.|[{_ATTACHED}])*", flags=re.DOTALL
)


# A label is measured at each shrink step and again while drawing; wrapping is pure
# (faces are values and fonts come from load_font's cache).
@functools.lru_cache(maxsize=1024)
def wrap(text: str, face: Face, width: int, *, stroke: int = 0) -> tuple[str, ...]:
    """Break ``text`` into lines no wider than ``width`` dots.

    Breaks between CJK characters or at spaces; a Latin word longer than a line is
    cut between characters. Explicit newlines are kept.
    """
    measure = _measure(face, text, stroke)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for token in _TOKENS.findall(paragraph):
            candidate = line + token if line else token.lstrip()
            if measure(candidate) <= width:
                line = candidate
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = token.lstrip()
            while line and measure(line) > width:
                cut = max(1, _fits(measure, line, width))
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return tuple(lines)


def _measure(face: Face, text: str, stroke: int) -> Callable[[str], float]:
    """Width in dots of parts of ``text``; the fast path when the CJK font has it all."""
    if not face.covers(_printable(text)):
        return lambda part: runs_width(_printable(part), face) + 2 * stroke
    font = face.main
    if has_kerning(face.path):
        return lambda part: font.getlength(_printable(part)) + 2 * stroke
    # No kerning: a line is exactly the sum of its advances (sixty-fourths of a dot,
    # so the float sum is exact), and wrapping measures each candidate line.
    return lambda part: sum(_advance(font, ch) for ch in _printable(part)) + 2 * stroke


@functools.lru_cache(maxsize=65536)
def _advance(font: ImageFont.FreeTypeFont, ch: str) -> float:
    return font.getlength(ch)


def _printable(text: str) -> str:
    # CJK fonts draw U+00A0 as an empty box: it only marks where not to wrap.
    return text.replace(NBSP, " ")


def _fits(measure: Callable[[str], float], text: str, width: int) -> int:
    n = 0
    while n < len(text) and measure(text[: n + 1]) <= width:
        n += 1
    return n


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent + round(font.size * LEADING)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Text:
    """Wrapped text; ``bold`` thickens strokes (CJK fonts on Debian have no bold face).

    In a :class:`Row` text takes the width left over, unless ``fixed`` (then its own).
    """

    text: str
    pt: float = 10
    min_pt: float = 6
    bold: bool = False
    align: str = "left"
    fixed: bool = False

    def _face(self, ctx: Ctx) -> tuple[Face, int]:
        face = ctx.face(self.pt, self.min_pt)
        return face, (max(1, round(face.px / 48)) if self.bold else 0)

    def natural_width(self, ctx: Ctx) -> int | None:
        if not self.fixed:
            return None
        face, stroke = self._face(ctx)
        measure = _measure(face, self.text, stroke)
        return max(round(measure(line)) for line in self.text.split("\n")) + 1

    def measure(self, ctx: Ctx, width: int) -> int:
        face, stroke = self._face(ctx)
        return len(wrap(self.text, face, width, stroke=stroke)) * _line_height(face.main)

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        face, stroke = self._face(ctx)
        measure = _measure(face, self.text, stroke)
        for line in wrap(self.text, face, width, stroke=stroke):
            left = x + stroke + _ALIGN[self.align](width - round(measure(line)))
            text = _printable(line)
            if face.covers(text):
                draw.text(
                    (left, y + stroke),
                    text,
                    font=face.main,
                    fill=0,
                    stroke_width=stroke,
                    stroke_fill=0,
                )
            else:
                draw_runs(draw, (left, y + stroke), text, face, stroke=stroke)
            y += _line_height(face.main)

    def texts(self) -> Iterator[str]:
        yield _printable(self.text)


# Where a line goes, given the spare dots of its row.
_ALIGN: Mapping[str, Callable[[int], int]] = {
    "left": lambda spare: 0,
    "center": lambda spare: spare // 2,
    "right": lambda spare: spare,
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Inverse:
    """Short text white on a black box: flags a packer must not miss (QC, parcel 2/3)."""

    text: str
    pt: float = 14
    min_pt: float = 8
    pad_mm: float = 1.0

    def natural_width(self, ctx: Ctx) -> int | None:
        font = ctx.font(self.pt, self.min_pt)
        return round(font.getlength(self.text)) + 2 * ctx.dots(self.pad_mm)

    def measure(self, ctx: Ctx, width: int) -> int:
        font = ctx.font(self.pt, self.min_pt)
        if (self.natural_width(ctx) or 0) > width:
            raise LabelDoesNotFit(f"{self.text!r} does not fit in {width} dots")
        return _line_height(font) + 2 * ctx.dots(self.pad_mm)

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        font = ctx.font(self.pt, self.min_pt)
        box = self.natural_width(ctx) or 0
        left = x + width - box
        draw.rectangle((left, y, x + width - 1, y + self.measure(ctx, width) - 1), fill=0)
        pad = ctx.dots(self.pad_mm)
        draw.text((left + pad, y + pad), self.text, font=font, fill=255)

    def texts(self) -> Iterator[str]:
        yield self.text


@dataclasses.dataclass(frozen=True, kw_only=True)
class Code128:
    """A Code128 barcode, centred, with its text below; never clipped, never resampled.

    The module width is the largest whole number of dots up to ``module_mm`` that lets
    the barcode and its quiet zones fit the width; below :data:`MIN_MODULE_DOTS` the
    label does not fit. Only the bar height shrinks with the scale.
    """

    data: str
    height_mm: float = 15
    min_height_mm: float = 8
    module_mm: float = 0.5
    pt: float = 10
    min_pt: float = 6
    human_readable: bool = True

    def module_dots(self, ctx: Ctx, width: int) -> int:
        """Dots per module at ``width``; raises :class:`LabelDoesNotFit` below the minimum."""
        modules = len(code128_modules(self.data)) + 2 * CODE128_QUIET_MODULES
        wanted = max(MIN_MODULE_DOTS, ctx.dots(self.module_mm))
        dots = min(wanted, width // modules)
        if dots < MIN_MODULE_DOTS:
            raise LabelDoesNotFit(
                f"barcode {self.data!r} needs {modules * MIN_MODULE_DOTS} dots across "
                f"but the label has {width}"
            )
        return dots

    def _bar_height(self, ctx: Ctx) -> int:
        return max(ctx.dots(self.min_height_mm), ctx.dots(self.height_mm * ctx.scale))

    def natural_width(self, ctx: Ctx) -> int | None:
        return None

    def measure(self, ctx: Ctx, width: int) -> int:
        self.module_dots(ctx, width)
        text = Text(text=self.data, pt=self.pt, min_pt=self.min_pt, align="center")
        below = text.measure(ctx, width) if self.human_readable else 0
        return self._bar_height(ctx) + below

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        modules = code128_modules(self.data)
        dots = self.module_dots(ctx, width)
        left = x + (width - len(modules) * dots) // 2
        bar = self._bar_height(ctx)
        draw_code128(draw, x=left, y=y, modules=modules, module_dots=dots, height=bar)
        if self.human_readable:
            text = Text(text=self.data, pt=self.pt, min_pt=self.min_pt, align="center")
            text.draw(ctx, draw, x, y + bar, width)

    def texts(self) -> Iterator[str]:
        yield self.data


@dataclasses.dataclass(frozen=True, kw_only=True)
class QRCode:
    """A QR code about ``size_mm`` square (with quiet zone), on whole-dot modules."""

    data: str
    size_mm: float = 22
    min_size_mm: float = 12

    def module_dots(self, ctx: Ctx) -> int:
        """Dots per module at the current scale; at least :data:`MIN_MODULE_DOTS`."""
        n = len(qr_matrix(self.data)) + 2 * QR_QUIET_MODULES
        size = max(ctx.dots(self.min_size_mm), ctx.dots(self.size_mm * ctx.scale))
        return max(MIN_MODULE_DOTS, size // n)

    def natural_width(self, ctx: Ctx) -> int | None:
        n = len(qr_matrix(self.data)) + 2 * QR_QUIET_MODULES
        return n * self.module_dots(ctx)

    def measure(self, ctx: Ctx, width: int) -> int:
        side = self.natural_width(ctx) or 0
        if side > width:
            raise LabelDoesNotFit(f"QR code of {self.data!r} needs {side} dots, has {width}")
        return side

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        dots = self.module_dots(ctx)
        quiet = QR_QUIET_MODULES * dots
        draw_qr(draw, x=x + quiet, y=y + quiet, matrix=qr_matrix(self.data), module_dots=dots)

    def texts(self) -> Iterator[str]:
        yield self.data


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """A horizontal line across the width, with space above and below."""

    thickness_mm: float = 0.4
    space_mm: float = 1.2

    def natural_width(self, ctx: Ctx) -> int | None:
        return None

    def measure(self, ctx: Ctx, width: int) -> int:
        return 2 * ctx.dots(self.space_mm) + max(1, ctx.dots(self.thickness_mm))

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        top = y + ctx.dots(self.space_mm)
        draw.rectangle((x, top, x + width - 1, top + max(1, ctx.dots(self.thickness_mm)) - 1), 0)

    def texts(self) -> Iterator[str]:
        return iter(())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spacer:
    """Empty vertical space."""

    mm: float = 1

    def natural_width(self, ctx: Ctx) -> int | None:
        return 0

    def measure(self, ctx: Ctx, width: int) -> int:
        return ctx.dots(self.mm * ctx.scale)

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        return None

    def texts(self) -> Iterator[str]:
        return iter(())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stack:
    """Blocks one below the other."""

    children: Sequence[Block]
    gap_mm: float = 0.5

    def natural_width(self, ctx: Ctx) -> int | None:
        widths = [c.natural_width(ctx) for c in self.children]
        return None if None in widths else max((w or 0 for w in widths), default=0)

    def measure(self, ctx: Ctx, width: int) -> int:
        gaps = ctx.dots(self.gap_mm) * max(0, len(self.children) - 1)
        return sum(c.measure(ctx, width) for c in self.children) + gaps

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        for child in self.children:
            child.draw(ctx, draw, x, y, width)
            y += child.measure(ctx, width) + ctx.dots(self.gap_mm)

    def texts(self) -> Iterator[str]:
        for child in self.children:
            yield from child.texts()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Row:
    """Blocks side by side: those with a natural width get it, the rest share what is left."""

    children: Sequence[Block]
    gap_mm: float = 2

    def _widths(self, ctx: Ctx, width: int) -> list[int]:
        natural = [c.natural_width(ctx) for c in self.children]
        flexible = natural.count(None)
        spare = width - sum(w or 0 for w in natural)
        spare -= ctx.dots(self.gap_mm) * (len(self.children) - 1)
        if spare < 0 or (flexible and spare < ctx.dots(10)):
            raise LabelDoesNotFit(f"a row of {len(self.children)} blocks needs more width")
        share = spare // flexible if flexible else 0
        return [share if w is None else w for w in natural]

    def natural_width(self, ctx: Ctx) -> int | None:
        return None

    def measure(self, ctx: Ctx, width: int) -> int:
        widths = self._widths(ctx, width)
        return max(c.measure(ctx, w) for c, w in zip(self.children, widths, strict=True))

    def draw(self, ctx: Ctx, draw: ImageDraw.ImageDraw, x: int, y: int, width: int) -> None:
        widths = self._widths(ctx, width)
        if not any(c.natural_width(ctx) is None for c in self.children):
            # Nothing stretches: push the last block to the right edge.
            widths[-1] += width - sum(widths) - ctx.dots(self.gap_mm) * (len(widths) - 1)
        for child, w in zip(self.children, widths, strict=True):
            child.draw(ctx, draw, x, y, w)
            x += w + ctx.dots(self.gap_mm)

    def texts(self) -> Iterator[str]:
        for child in self.children:
            yield from child.texts()


def compose(
    root: Block,
    *,
    width: int,
    length: int | None,
    dpi: int,
    font_path: Path,
    fallback_paths: Sequence[Path] = (),
    margin_mm: float = 2.0,
    what: str = "label",
) -> Image.Image:
    """Lay ``root`` out on a ``width`` x ``length`` dot canvas and return a 1-bit image.

    ``fallback_paths`` are fonts for characters ``font_path`` lacks; what none has is
    drawn as a placeholder (:mod:`drivers.labels.glyphs`).

    ``length=None`` is an endless roll: the image is as long as the content at full
    scale. Otherwise the largest scale in :data:`SCALES` that fits is used; if none
    fits, :class:`LabelDoesNotFit` says how much is missing.
    """
    probe = Ctx(dpi=dpi, scale=1.0, font_path=font_path, fallback_paths=tuple(fallback_paths))
    margin = probe.dots(margin_mm)
    inner = width - 2 * margin
    needed = 0
    for scale in SCALES if length is not None else SCALES[:1]:
        ctx = dataclasses.replace(probe, scale=scale)
        needed = root.measure(ctx, inner)
        if length is None or needed <= length - 2 * margin:
            canvas = Image.new("L", (width, length or needed + 2 * margin), 255)
            root.draw(ctx, ImageDraw.Draw(canvas), margin, margin, inner)
            return canvas.point(lambda v: 255 if v >= THRESHOLD else 0, mode="1")
    have = (length or 0) - 2 * margin
    raise LabelDoesNotFit(
        f"the {what} needs {needed / dpi * MM_PER_INCH:.0f} mm of length at the smallest "
        f"text size, but the label has {have / dpi * MM_PER_INCH:.0f} mm"
    )
