"""Decoding of USB HID scanner key events into barcodes: a pure function of the events.

:class:`BarcodeAssembler` takes ``evdev.InputEvent`` objects, as read from the device
or from a recording, and returns :class:`Barcode` values. It keeps no clock and does no
I/O, so the same events always give the same barcodes, however fast or slow they came.

GS1's FNC1 (ASCII GS, ``\\x1d``) arrives in one of two ways, both understood:

* **Ctrl+]** — Ctrl with the key at the US ``]`` position (``KEY_RIGHTBRACE``), what
  most scanners send in "Ctrl+ASCII" / "function key emulation" mode whatever the
  layout;
* **Alt+keypad code** — Alt held while typing the decimal code on the keypad
  (``Alt+0029``, ``Alt+029`` or ``Alt+29``). Codes 0–127 are accepted (ASCII); other
  control codes are reported as unreadable like any control character.

A barcode with a key the layout does not map (a dead key, F1, Ctrl+A) is not guessed
at: it comes out with :attr:`Barcode.problem` set, and readers drop it as unreadable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from evdev import InputEvent, ecodes

from drivers.scanners.base import GS
from drivers.scanners.keymaps import KEYMAPS, Keymap, Level
from drivers.scanners.text import strip_affixes, unreadable_reason

__all__ = ["TERMINATOR_KEYS", "Barcode", "BarcodeAssembler"]

TERMINATOR_KEYS: Mapping[str, frozenset[str]] = {
    "enter": frozenset({"KEY_ENTER", "KEY_KPENTER"}),
    "tab": frozenset({"KEY_TAB"}),
}
"""Terminator names used in URLs → the keys that end a barcode."""

_SHIFT = frozenset({"KEY_LEFTSHIFT", "KEY_RIGHTSHIFT"})
_CTRL = frozenset({"KEY_LEFTCTRL", "KEY_RIGHTCTRL"})
_ALT = frozenset({"KEY_LEFTALT"})
_ALTGR = frozenset({"KEY_RIGHTALT"})
_MODIFIERS = _SHIFT | _CTRL | _ALT | _ALTGR

# Ctrl+key chords that stand for a character; data, so more can be added per scanner.
_CTRL_CHORDS: Mapping[str, str] = {"KEY_RIGHTBRACE": GS}

_KEY_DOWN, _KEY_UP = 1, 0  # value 2 (autorepeat) never comes from a scanner's own keys

_NAMES: dict[int, str] = {}
for _name, _code in ecodes.ecodes.items():
    if _name.startswith("KEY_"):
        # Several names share a code (KEY_MUTE/KEY_MIN_INTERESTING); keep the first.
        _NAMES.setdefault(_code, _name)


def key_name(code: int) -> str:
    """evdev's name for a key code (``KEY_A``), or ``KEY_<code>`` when it has none."""
    return _NAMES.get(code, f"KEY_{code}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Barcode:
    """One barcode assembled from key events.

    ``at`` is the timestamp of its first key press (the event's own time). When
    ``problem`` is set the barcode is unreadable and ``text`` holds only what decoded.
    """

    text: str
    at: float
    keys: tuple[str, ...] = ()
    problem: str | None = None


class BarcodeAssembler:
    """Turns a stream of ``evdev.InputEvent`` into :class:`Barcode` values.

    ``keymap`` is a layout name (``us``, ``uk``, ``de``, ``fr``) or a :class:`Keymap`;
    ``terminator`` is ``enter`` or ``tab``; ``prefix``/``suffix`` are removed from the
    text when present (scanners are often set to add one).
    """

    def __init__(
        self,
        *,
        keymap: Keymap | str = "us",
        terminator: str = "enter",
        prefix: str = "",
        suffix: str = "",
        max_length: int = 4096,
    ) -> None:
        if isinstance(keymap, str):
            try:
                keymap = KEYMAPS[keymap]
            except KeyError:
                raise ValueError(
                    f"unknown keymap {keymap!r}; known: {', '.join(KEYMAPS)}"
                ) from None
        try:
            self.terminator_keys = TERMINATOR_KEYS[terminator]
        except KeyError:
            raise ValueError(f"unknown terminator {terminator!r}; use enter or tab") from None
        self.keymap = keymap
        self.prefix = prefix
        self.suffix = suffix
        self.max_length = max_length
        self.reset()

    def reset(self) -> None:
        """Forget a partial barcode and every held modifier (the device went away)."""
        self._held: set[str] = set()
        self._chars: list[str] = []
        self._keys: list[str] = []
        self._at: float | None = None
        self._problem: str | None = None
        self._alt_digits: str = ""

    def feed(self, event: InputEvent) -> Barcode | None:
        """Take one event; return a barcode when this event completed one."""
        if event.type != ecodes.EV_KEY:
            return None  # EV_SYN, EV_MSC scan codes, LEDs: nothing to decode
        name = key_name(event.code)
        if name in _MODIFIERS:
            self._modifier(name, event)
            return None
        if event.value != _KEY_DOWN:
            return None
        if name in self.terminator_keys and not self._held & (_CTRL | _ALT):
            return self._finish()
        if self._at is None:
            self._at = event.timestamp()
        self._keys.append(name)
        if len(self._keys) > self.max_length:
            self._fail(f"more than {self.max_length} keys without a terminator")
            return None
        self._key_down(name)
        return None

    def feed_all(self, events: Iterable[InputEvent]) -> list[Barcode]:
        """Take many events; return every barcode they completed, in order."""
        return [b for b in map(self.feed, events) if b is not None]

    def _modifier(self, name: str, event: InputEvent) -> None:
        if event.value == _KEY_DOWN:
            self._held.add(name)
        elif event.value == _KEY_UP:
            self._held.discard(name)
            if name in _ALT and self._alt_digits:
                self._alt_code()

    def _key_down(self, name: str) -> None:
        held = self._held
        if held & _ALT:
            digit = self.keymap.keypad.get(name)
            if digit is not None and digit.isdigit():
                self._alt_digits += digit
            else:
                self._fail(f"unexpected Alt+{name}")
            return
        if held & _CTRL:
            char = _CTRL_CHORDS.get(name)
            if char is None:
                self._fail(f"unexpected Ctrl+{name}")
            else:
                self._chars.append(char)
            return
        keypad = self.keymap.keypad.get(name)
        if keypad is not None:
            self._chars.append(keypad)
            return
        level = Level.ALTGR if held & _ALTGR else Level.SHIFT if held & _SHIFT else Level.PLAIN
        char = self.keymap.char(name, level)
        if char is None:
            self._fail(f"{name} at {level.name} gives no character in layout {self.keymap.name}")
        else:
            self._chars.append(char)

    def _alt_code(self) -> None:
        code = int(self._alt_digits)
        self._alt_digits = ""
        if code > 127:
            self._fail(f"Alt code {code} is outside ASCII")
        else:
            self._chars.append(chr(code))

    def _fail(self, problem: str) -> None:
        if self._problem is None:
            self._problem = problem

    def _finish(self) -> Barcode | None:
        if self._at is None:
            return None  # a bare terminator: nothing was scanned
        text = "".join(self._chars)
        problem = self._problem or unreadable_reason(text)
        if problem is None:
            text = strip_affixes(text, prefix=self.prefix, suffix=self.suffix)
        barcode = Barcode(text=text, at=self._at, keys=tuple(self._keys), problem=problem)
        held = self._held
        self.reset()
        # Modifiers stay held across the terminator (a scanner may release Shift late).
        self._held = held
        return barcode
