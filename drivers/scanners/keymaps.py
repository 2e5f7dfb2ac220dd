"""Keyboard layouts as data: which character a key gives, plain, with Shift, with AltGr.

A USB HID scanner "types" each barcode as key presses. It presses the key *positions*
its own keyboard-country setting calls for, and the host decodes them with its layout;
when the two disagree the bench sees ``&é"'(`` instead of ``12345``. packline decodes
with the layout the scanner is configured for (URL option ``keymap=``), whatever the
Pi's own console layout is.

Each table lists the keys of one physical row, left to right, and one string per level
with one character per key; a space in a level string means "no character here" (a
dead key, or a symbol barcodes never use). The space bar is added to every layout.
Key names are evdev's (``KEY_Q`` is the key *position* labelled Q on a US keyboard),
so this module needs no evdev import.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

__all__ = ["KEYMAPS", "KEYPAD", "Keymap", "Level"]


class Level(enum.IntEnum):
    """Shift level of a key press."""

    PLAIN = 0
    SHIFT = 1
    ALTGR = 2


ROW_E = ["GRAVE", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "MINUS", "EQUAL"]
ROW_D = ["Q", "W", "E", "R", "T", "Y", "U", "I", "O", "P", "LEFTBRACE", "RIGHTBRACE"]
ROW_C = ["A", "S", "D", "F", "G", "H", "J", "K", "L", "SEMICOLON", "APOSTROPHE", "BACKSLASH"]
ROW_B = ["102ND", "Z", "X", "C", "V", "B", "N", "M", "COMMA", "DOT", "SLASH"]
_ROWS = (ROW_E, ROW_D, ROW_C, ROW_B)

# layout → per row: (plain, shift, altgr); one character per key of the row.
_LAYOUT_ROWS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "us": (
        ("`1234567890-=", "~!@#$%^&*()_+", " " * 13),
        ("qwertyuiop[]", "QWERTYUIOP{}", " " * 12),
        ("asdfghjkl;'\\", 'ASDFGHJKL:"|', " " * 12),
        ("\\zxcvbnm,./", "|ZXCVBNM<>?", " " * 11),
    ),
    "uk": (
        ("`1234567890-=", '¬!"£$%^&*()_+', "¦   €        "),
        ("qwertyuiop[]", "QWERTYUIOP{}", " " * 12),
        ("asdfghjkl;'#", "ASDFGHJKL:@~", " " * 12),
        ("\\zxcvbnm,./", "|ZXCVBNM<>?", " " * 11),
    ),
    "de": (
        # ^ and ´ are dead keys on a German keyboard: a scanner never needs them.
        (" 1234567890ß ", '°!"§$%&/()=? ', "  ²³   {[]}\\ "),
        ("qwertzuiopü+", "QWERTZUIOPÜ*", "@ €        ~"),
        ("asdfghjklöä#", "ASDFGHJKLÖÄ'", " " * 12),
        ("<yxcvbnm,.-", ">YXCVBNM;:_", "|      µ   "),
    ),
    "fr": (
        # AZERTY: digits need Shift, the classic cause of garbled scans.
        ("²&é\"'(-è_çà)=", " 1234567890°+", "  ~#{[|`\\^@]}"),
        ("azertyuiop $", "AZERTYUIOP £", "  €         "),
        ("qsdfghjklmù*", "QSDFGHJKLM%µ", " " * 12),
        ("<wxcvbn,;:!", ">WXCVBN?./§", " " * 11),
    ),
}

KEYPAD: Mapping[str, str] = {
    **{f"KEY_KP{d}": str(d) for d in range(10)},
    "KEY_KPDOT": ".",
    "KEY_KPMINUS": "-",
    "KEY_KPPLUS": "+",
    "KEY_KPASTERISK": "*",
    "KEY_KPSLASH": "/",
}
"""Keypad keys (Num Lock on), the same on every layout except where a layout overrides."""

_KEYPAD_OVERRIDES: dict[str, dict[str, str]] = {"de": {"KEY_KPDOT": ","}}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Keymap:
    """One keyboard layout: evdev key name → characters per :class:`Level`."""

    name: str
    keys: Mapping[str, Mapping[Level, str]]
    keypad: Mapping[str, str]

    def char(self, key: str, level: Level) -> str | None:
        """The character ``key`` gives at ``level``, or None when it gives none."""
        return self.keys.get(key, {}).get(level)

    def alphabet(self) -> frozenset[str]:
        """Every character this layout can type (without Alt codes)."""
        return frozenset(c for levels in self.keys.values() for c in levels.values())

    def chords(self) -> dict[str, tuple[str, Level]]:
        """The inverse table: character → (key, level) that types it, preferring main keys.

        Used to type text on this layout (tests, fakes); the first key in row order wins.
        """
        out: dict[str, tuple[str, Level]] = {}
        for key, levels in self.keys.items():
            for level in sorted(levels):
                out.setdefault(levels[level], (key, level))
        return out


def _build(name: str) -> Keymap:
    keys: dict[str, dict[Level, str]] = {"KEY_SPACE": {Level.PLAIN: " ", Level.SHIFT: " "}}
    for row, levels in zip(_ROWS, _LAYOUT_ROWS[name], strict=True):
        for level, chars in zip(Level, levels, strict=True):
            if len(chars) != len(row):
                raise ValueError(f"keymap {name}: {level.name} of {row[0]} row has {len(chars)}")
            for key, ch in zip(row, chars, strict=True):
                if ch != " ":
                    keys.setdefault(f"KEY_{key}", {})[level] = ch
    keypad = {**KEYPAD, **_KEYPAD_OVERRIDES.get(name, {})}
    return Keymap(name=name, keys=keys, keypad=keypad)


KEYMAPS: Mapping[str, Keymap] = {name: _build(name) for name in _LAYOUT_ROWS}
"""Layouts by the name used in URLs (``keymap=us|uk|de|fr``)."""
