"""What the CJK font lacks (an emoji in a name) prints visibly, never as an empty box."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw

from drivers.labels import find_font, label_texts, render_waybill
from drivers.labels.fonts import FALLBACK_FONT_PATHS, find_fallback_fonts, has_glyph, load_font
from drivers.labels.glyphs import PLACEHOLDER, Face, clusters, runs
from drivers.labels.layout import Stack, Text, compose

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("PACKLINE_REGEN_GOLDEN") == "1"
SYMBOLA = FALLBACK_FONT_PATHS[0]
NAME = "小美🌸"


@pytest.fixture
def symbola() -> Path:
    """The monochrome emoji font scripts/system-deps.sh installs (fonts-symbola)."""
    assert SYMBOLA.is_file(), "fonts-symbola is not installed: run make setup"
    return SYMBOLA


def face(*fallbacks: Path, px: int = 48) -> Face:
    return Face(find_font(environ={}), px, fallbacks)


@pytest.mark.parametrize(
    ("text", "seen"),
    [
        ("张三", ["张", "三"]),
        ("👨\u200d👩\u200d👧", ["👨\u200d👩\u200d👧"]),  # a family joined by ZWJ
        ("👍🏽!", ["👍🏽", "!"]),  # skin tone belongs to the hand
        ("❤️", ["❤️"]),  # variation selector belongs to the heart
        ("🇨🇳🇯🇵", ["🇨🇳", "🇯🇵"]),  # two flags, not four letters
        ("cafe\u0301", ["c", "a", "f", "é"]),  # composed
    ],
)
def test_clusters_are_characters_as_a_reader_sees_them(text: str, seen: list[str]) -> None:
    assert clusters(text) == seen


def test_the_cjk_font_lacks_emoji_and_the_fallback_has_them(symbola: Path) -> None:
    cjk = find_font(environ={})
    assert has_glyph(cjk, "张") and not has_glyph(cjk, "🌸")
    assert has_glyph(symbola, "🌸")
    assert symbola in find_fallback_fonts()


def test_runs_use_the_fallback_then_a_placeholder(symbola: Path) -> None:
    assert runs(NAME, face(symbola)) == (("小美", 0), ("🌸", 1))
    assert runs(NAME, face()) == (("小美", 0), ("🌸", PLACEHOLDER))
    # Newer than the fallback font (Unicode 14): a placeholder even with it.
    assert runs("🫠", face(symbola)) == (("🫠", PLACEHOLDER),)
    # Invisible characters are never drawn on their own.
    assert runs("❤️", face(symbola)) == (("❤", 1),)
    assert runs("\u200d\ufe0f", face(symbola)) == ()
    # One placeholder per character as a reader sees it.
    assert runs("👨\u200d👩\u200d👧", face()) == (("👨👩👧", PLACEHOLDER),)


def _text_image(text: str, *fallbacks: Path) -> Image.Image:
    """``text`` at 24 pt as a label draws it: at (24, 24), 100 dots high, on 300 x 200."""
    image = compose(
        Stack(children=[Text(text=text, pt=24)]),
        width=300,
        length=200,
        dpi=300,
        font_path=find_font(environ={}),
        fallback_paths=fallbacks,
    )
    return image.convert("L")


def _cjk_font_alone(text: str) -> Image.Image:
    """What the CJK font draws for ``text`` at the same place: an empty box."""
    image = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(image).text((24, 24), text, font=load_font(find_font(environ={}), 100), fill=0)
    return image.point(lambda v: 255 if v >= 128 else 0)


def _ink(image: Image.Image) -> int:
    return sum(image.convert("L").histogram()[:128])


def _differ(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a, b).getbbox() is not None


def test_an_emoji_is_drawn_not_an_empty_box(symbola: Path) -> None:
    box = _cjk_font_alone("🌸")
    assert not _differ(box, _cjk_font_alone("🫠"))  # the font's one missing-glyph box
    drawn, placeholder = _text_image("🌸", symbola), _text_image("🌸")
    assert _ink(drawn) > 500 and _ink(placeholder) > 200
    assert _differ(drawn, box) and _differ(placeholder, box) and _differ(drawn, placeholder)
    # Every character no font has gets the same mark.
    assert not _differ(_text_image("🫠"), placeholder)
    assert not _differ(_text_image("🫠", symbola), placeholder)


def test_the_placeholder_is_a_box_with_a_question_mark() -> None:
    placeholder = _text_image("🌸")
    bbox = ImageChops.invert(placeholder).getbbox()
    assert bbox is not None
    inside = placeholder.crop(bbox)
    w, h = inside.size
    assert 0.6 < w / h < 1.1  # about square
    # Outline: the box's edges are inked along their whole length...
    assert _ink(inside.crop((0, 0, 2, h))) >= 2 * h - 2
    assert _ink(inside.crop((0, 0, w, 2))) >= 2 * w - 2
    # ...and there is ink in the middle (the question mark), unlike an empty box.
    assert _ink(inside.crop((w // 3, h // 4, 2 * w // 3, 3 * h // 4))) > 20


@pytest.mark.parametrize("mode", ["symbola", "placeholder"])
def test_golden_emoji_waybill(
    mode: str, symbola: Path, order: dict[str, Any], printed_at: datetime
) -> None:
    order["recipient"]["name"] = NAME
    order["note"] = "易碎 📦 请轻放 🫠"
    fallbacks = [symbola] if mode == "symbola" else []
    image = render_waybill(order, size="62", printed_at=printed_at, fallback_fonts=fallbacks)
    path = GOLDEN / f"waybill-emoji-{mode}-62-300dpi.png"
    if REGEN:
        image.save(path)
        return
    golden = Image.open(path).convert("L")
    assert image.size == golden.size
    # As in test_render: a different FreeType build may move a few edge pixels.
    histogram = ImageChops.difference(image.convert("L"), golden).histogram()
    assert 1 - histogram[0] / (image.width * image.height) <= 0.001
    # The masked name keeps its last character, the emoji, on the label.
    assert "小*🌸  138****5678" in label_texts("waybill", order, printed_at=printed_at)


def test_widths_from_cached_advances_are_exact() -> None:
    from drivers.labels.fonts import has_kerning
    from drivers.labels.layout import _measure

    cjk = find_font(environ={})
    assert has_kerning(cjk) is False  # so a line is the sum of its advances
    assert has_kerning(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")) is True
    text = "科技园南区高新南一道 8 号 创维大厦 A 座 1203 室 AVATAR To., Ltd. ×2"
    for px in (25, 58, 100):
        measure = _measure(face(px=px), text, 0)
        font = load_font(cjk, px)
        for end in range(1, len(text) + 1):
            assert measure(text[:end]) == font.getlength(text[:end])
