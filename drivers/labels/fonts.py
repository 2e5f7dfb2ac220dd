"""The CJK font that draws recipients' names and addresses.

Recipient names and addresses are Chinese, and a font without CJK glyphs prints empty
boxes — a waybill the courier cannot read. So the font is found explicitly, in this
order: the ``font`` argument, the ``PACKLINE_LABEL_FONT`` environment variable, then
the Debian packages' paths in :data:`FONT_SEARCH_PATH` (``scripts/system-deps.sh``
installs ``fonts-wqy-zenhei``). No font found is :class:`FontNotFound`, never a
fallback to Pillow's built-in Latin bitmap font.

Characters the CJK font lacks (an emoji in a recipient's name) are drawn with the first
monochrome fallback font of :data:`FALLBACK_FONT_PATHS` that has them (Symbola from
``fonts-symbola``, DejaVu Sans), else as a visible placeholder (see
:mod:`drivers.labels.glyphs`) — never as an empty box that looks like a real character.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import ImageFont

from drivers.errors import DriverError

__all__ = [
    "FALLBACK_FONT_PATHS",
    "FONT_ENV",
    "FONT_SEARCH_PATH",
    "FontNotFound",
    "find_fallback_fonts",
    "find_font",
    "has_glyph",
    "has_kerning",
    "load_font",
]

FONT_ENV = "PACKLINE_LABEL_FONT"

# Debian package → path. Index 0 of each collection is the proportional sans face.
FONT_SEARCH_PATH: Sequence[Path] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # fonts-noto-cjk
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
)


# Monochrome fonts for what the CJK font lacks, tried in order (a colour emoji font
# is no use on a 1-bit label). Symbola covers emoji up to Unicode 9 and most symbols.
FALLBACK_FONT_PATHS: Sequence[Path] = (
    Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"),  # fonts-symbola
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # fonts-dejavu-core
)
# A code point no font has: what the font draws for it is its "missing glyph" box.
_NO_SUCH_CHARACTER = "\U0010fffd"
_PROBE_PX = 32


class FontNotFound(DriverError):
    """No CJK font at the configured path or any known system path."""


def find_font(
    font: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Path:
    """The CJK font file to use: ``font``, else ``$PACKLINE_LABEL_FONT``, else the search list.

    A path that is given (argument or environment) but missing is an error rather than
    a silent fall-through, so a typo in the station's settings is noticed.
    """
    env = os.environ if environ is None else environ
    configured = font if font is not None else env.get(FONT_ENV) or None
    if configured is not None:
        path = Path(configured)
        if not path.is_file():
            raise FontNotFound(f"label font {path} does not exist (set by argument or {FONT_ENV})")
        return path
    for path in FONT_SEARCH_PATH:
        if path.is_file():
            return path
    raise FontNotFound(
        "no CJK font found for labels; install fonts-wqy-zenhei (scripts/system-deps.sh) "
        f"or set {FONT_ENV} to a .ttf/.ttc/.otf file"
    )


@functools.lru_cache(maxsize=64)
def load_font(path: Path, px: int) -> ImageFont.FreeTypeFont:
    """The font at ``px`` pixels (= printer dots); cached, fonts are immutable.

    The basic layout engine is used on purpose: CJK and Latin need no shaping, and it
    gives the same pixels whether or not libraqm is installed on the station.
    """
    try:
        return ImageFont.truetype(str(path), px, index=0, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise FontNotFound(f"label font {path} cannot be read: {exc}") from exc


def find_fallback_fonts() -> tuple[Path, ...]:
    """The installed fonts of :data:`FALLBACK_FONT_PATHS`, in order (maybe none)."""
    return tuple(path for path in FALLBACK_FONT_PATHS if path.is_file())


@functools.lru_cache(maxsize=16384)
def has_glyph(path: Path, ch: str) -> bool:
    """Whether the font at ``path`` draws ``ch`` itself rather than its missing-glyph box.

    Pillow does not expose a font's character map, so the glyph is compared with what
    the font draws for a code point no font has. White space always counts as present.
    """
    if ch.isspace():
        return True
    font = load_font(path, _PROBE_PX)
    missing = font.getmask(_NO_SUCH_CHARACTER)
    glyph = font.getmask(ch)
    return glyph.size != missing.size or bytes(glyph) != bytes(missing)


@functools.lru_cache(maxsize=16)
def has_kerning(path: Path) -> bool:
    """Whether the font (face 0) has a ``kern`` table, the only kerning basic layout uses.

    Without one, a text's width is exactly the sum of its characters' advances, which
    the layout then measures from a cache instead of asking FreeType again for every
    candidate line. A file that cannot be read this way counts as kerned (slow path).
    """
    try:
        data = path.read_bytes()
        offset = 0
        if data[:4] == b"ttcf":  # a collection: the first face's table directory
            (offset,) = struct.unpack(">I", data[12:16])
        (count,) = struct.unpack(">H", data[offset + 4 : offset + 6])
        tags = {data[offset + 12 + 16 * i : offset + 16 + 16 * i] for i in range(count)}
    except (OSError, struct.error):
        return True
    return b"kern" in tags
