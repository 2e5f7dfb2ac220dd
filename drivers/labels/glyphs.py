"""Characters the label font lacks: a fallback font, else a visible placeholder.

The CJK font draws names and addresses, but a recipient may put an emoji in their
name (``小美🌸``), and the font draws what it lacks as an empty box — which reads like
a real character. So text is split into runs: what the CJK font has, what a monochrome
fallback font has (:func:`~drivers.labels.fonts.find_fallback_fonts`), and what no font
has, drawn as a placeholder: a box with a question mark, one per character as a reader
sees it (an emoji with its skin tone or a family joined by zero-width joiners is one).
Invisible joiners and variation selectors are never drawn on their own.
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
from pathlib import Path

from PIL import ImageDraw, ImageFont

from drivers.labels.fonts import has_glyph, load_font

__all__ = ["PLACEHOLDER", "Face", "clusters", "draw_runs", "runs", "runs_width"]

#: The index of a run no font can draw (see :func:`runs`).
PLACEHOLDER = -1
ZWJ = "\u200d"
# Placeholder: a box of this share of the font size, a question mark inside.
_BOX_WIDTH = 0.86
_MARK_SCALE = 0.75


def _invisible(ch: str) -> bool:
    """Joiners, variation selectors, skin-tone modifiers, tags, the keycap enclosure."""
    code = ord(ch)
    return (
        ch == ZWJ
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or code == 0x20E3
    )


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def clusters(text: str) -> list[str]:
    """``text`` in characters as a reader sees them.

    A combining mark, modifier or variation selector belongs to the character before
    it; a zero-width joiner joins the next one too; two regional indicators are a flag.
    """
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if out and (
            _invisible(ch)
            or unicodedata.combining(ch)
            or out[-1].endswith(ZWJ)
            or (_regional(ch) and len(out[-1]) == 1 and _regional(out[-1]))
        ):
            out[-1] += ch
        else:
            out.append(ch)
    return out


@dataclasses.dataclass(frozen=True)
class Face:
    """The fonts one text is drawn with at one size: the CJK font, then the fallbacks."""

    path: Path
    px: int
    fallbacks: tuple[Path, ...] = ()

    @property
    def main(self) -> ImageFont.FreeTypeFont:
        """The CJK font at this size."""
        return load_font(self.path, self.px)

    def font(self, index: int) -> ImageFont.FreeTypeFont:
        """Run font ``index``: 0 the CJK font, 1… the fallbacks in order."""
        return self.main if index == 0 else load_font(self.fallbacks[index - 1], self.px)

    def covers(self, text: str) -> bool:
        """The CJK font alone draws every character of ``text``."""
        return all(has_glyph(self.path, ch) for ch in text)


def _font_for(visible: str, face: Face) -> int:
    for index, path in enumerate((face.path, *face.fallbacks)):
        if all(has_glyph(path, ch) for ch in visible):
            return index
    return PLACEHOLDER


@functools.lru_cache(maxsize=4096)
def runs(text: str, face: Face) -> tuple[tuple[str, int], ...]:
    """``text`` as (segment, font index) runs; :data:`PLACEHOLDER` runs are one cluster.

    Invisible characters are left out of the segments.
    """
    out: list[tuple[str, int]] = []
    for cluster in clusters(text):
        visible = "".join(ch for ch in cluster if not _invisible(ch))
        if not visible:
            continue
        index = _font_for(visible, face)
        if out and index != PLACEHOLDER and out[-1][1] == index:
            out[-1] = (out[-1][0] + visible, index)
        else:
            out.append((visible, index))
    return tuple(out)


def _placeholder_width(face: Face) -> float:
    return round(face.px * _BOX_WIDTH) + 2 * max(1, face.px // 16)


def runs_width(text: str, face: Face) -> float:
    """Width in dots of ``text`` drawn by :func:`draw_runs`."""
    return sum(
        _placeholder_width(face) if index == PLACEHOLDER else face.font(index).getlength(segment)
        for segment, index in runs(text, face)
    )


def draw_runs(
    draw: ImageDraw.ImageDraw,
    xy: tuple[int, int],
    text: str,
    face: Face,
    *,
    fill: int = 0,
    stroke: int = 0,
) -> None:
    """Draw ``text`` at ``xy`` (top left, like ``draw.text``) run by run."""
    x: float = xy[0]
    y = xy[1]
    ascent = face.main.getmetrics()[0]
    for segment, index in runs(text, face):
        if index == PLACEHOLDER:
            x += _draw_placeholder(draw, x, y, face, fill=fill)
            continue
        font = face.font(index)
        # Fonts differ in ascent: a fallback shares the CJK font's baseline.
        at, anchor = ((x, y), "la") if index == 0 else ((x, y + ascent), "ls")
        draw.text(
            at, segment, font=font, fill=fill, anchor=anchor, stroke_width=stroke, stroke_fill=fill
        )
        x += font.getlength(segment)


def _draw_placeholder(
    draw: ImageDraw.ImageDraw, x: float, y: int, face: Face, *, fill: int
) -> float:
    width = _placeholder_width(face)
    line = max(1, face.px // 12)
    left, right = round(x) + line, round(x) + width - line - 1
    top, bottom = y + round(face.px * 0.06), y + round(face.px * 1.0)
    draw.rectangle((left, top, right, bottom), outline=fill, width=line)
    mark = load_font(face.path, max(1, round(face.px * _MARK_SCALE)))
    draw.text(((left + right) / 2, (top + bottom) / 2), "?", font=mark, fill=fill, anchor="mm")
    return width
