"""The pure decoder of USB HID scanners: real evdev.InputEvent objects in, barcodes out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from evdev import InputEvent, ecodes
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanners.assembler import Barcode, BarcodeAssembler
from drivers.scanners.base import GS
from drivers.scanners.keymaps import KEYMAPS, Keymap, Level

FIXTURES = Path(__file__).parent / "fixtures"

_LEVEL_MODIFIER = {Level.SHIFT: "KEY_LEFTSHIFT", Level.ALTGR: "KEY_RIGHTALT"}

# HID keyboard usage of each key, as a real keyboard reports it in EV_MSC/MSC_SCAN.
_HID_USAGE = {
    **{f"KEY_{c}": 0x70004 + i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")},
    **{f"KEY_{d}": 0x7001E + i for i, d in enumerate("1234567890")},
    "KEY_ENTER": 0x70028,
    "KEY_TAB": 0x7002B,
    "KEY_SPACE": 0x7002C,
    "KEY_LEFTCTRL": 0x700E0,
    "KEY_LEFTSHIFT": 0x700E1,
    "KEY_LEFTALT": 0x700E2,
    "KEY_RIGHTALT": 0x700E6,
}


class Typist:
    """Types text as a scanner would: the layout's tables inverted into key events."""

    def __init__(self, keymap: Keymap, *, gs: str = "ctrl", terminator: str = "KEY_ENTER") -> None:
        self.chords = keymap.chords()
        self.gs = gs
        self.terminator = terminator

    def strokes(self, text: str) -> Iterator[tuple[str, int]]:
        """(key name, value) pairs for ``text`` and the terminator."""
        for ch in text:
            if ch == GS:
                if self.gs == "ctrl":
                    yield from self._chord("KEY_LEFTCTRL", "KEY_RIGHTBRACE")
                else:
                    yield ("KEY_LEFTALT", 1)
                    for digit in "0029":
                        yield from self._chord(None, f"KEY_KP{digit}")
                    yield ("KEY_LEFTALT", 0)
                continue
            key, level = self.chords[ch]
            yield from self._chord(_LEVEL_MODIFIER.get(level), key)
        yield from self._chord(None, self.terminator)

    @staticmethod
    def _chord(modifier: str | None, key: str) -> Iterator[tuple[str, int]]:
        if modifier:
            yield (modifier, 1)
        yield (key, 1)
        yield (key, 0)
        if modifier:
            yield (modifier, 0)

    def events(
        self, text: str, gaps: Iterator[float], start: float = 1_700_000_000.0
    ) -> list[InputEvent]:
        """Events with MSC_SCAN and SYN_REPORT like a real keyboard, spaced by ``gaps``."""
        out: list[InputEvent] = []
        t = start
        for key, value in self.strokes(text):
            t += next(gaps)
            sec, usec = int(t), round((t - int(t)) * 1e6)
            if usec == 1_000_000:
                sec, usec = sec + 1, 0
            if key in _HID_USAGE:
                out.append(InputEvent(sec, usec, ecodes.EV_MSC, ecodes.MSC_SCAN, _HID_USAGE[key]))
            out.append(InputEvent(sec, usec, ecodes.EV_KEY, ecodes.ecodes[key], value))
            out.append(InputEvent(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0))
        return out


def _constant(seconds: float) -> Iterator[float]:
    while True:
        yield seconds


def _decode(events: list[InputEvent], **kw: object) -> list[Barcode]:
    return BarcodeAssembler(**kw).feed_all(events)  # type: ignore[arg-type]


# -- recorded sequences -----------------------------------------------------------------


_RECORDING_OPTIONS = frozenset({"keymap", "terminator", "prefix", "suffix"})
_MODIFIER_CODES = frozenset(
    ecodes.ecodes[k] for k in ("KEY_LEFTSHIFT", "KEY_RIGHTSHIFT", "KEY_LEFTALT", "KEY_RIGHTALT")
)


def _load_recording(path: Path) -> tuple[dict[str, str], list[str], list[InputEvent]]:
    """A recording: ``# key: value`` headers, ``# expect: TEXT`` lines, then events.

    Event lines read ``SEC.USEC TYPE CODE VALUE`` with evdev's names, as evtest shows them.
    """
    options: dict[str, str] = {}
    expected: list[str] = []
    events: list[InputEvent] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect:"):
            expected.append(line.removeprefix("# expect: ").replace("<GS>", GS))
        elif line.startswith("# ") and line[2:].partition(":")[0] in _RECORDING_OPTIONS:
            key, _, value = line[2:].partition(":")
            options[key] = value.strip()
        elif line.strip() and not line.startswith("#"):
            stamp, type_name, code_name, value = line.split()
            sec, usec = stamp.split(".")
            code = ecodes.ecodes[code_name]
            events.append(
                InputEvent(int(sec), int(usec), ecodes.ecodes[type_name], code, int(value))
            )
    return options, expected, events


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.events")), ids=lambda p: p.stem)
def test_recorded_sequences(path: Path) -> None:
    options, expected, events = _load_recording(path)
    barcodes = _decode(events, **options)
    assert [b.problem for b in barcodes] == [None] * len(expected)
    assert [b.text for b in barcodes] == expected
    first_press = next(
        e
        for e in events
        if e.type == ecodes.EV_KEY and e.value == 1 and e.code not in _MODIFIER_CODES
    )
    assert barcodes[0].at == first_press.timestamp()


# -- properties -------------------------------------------------------------------------

_layouts = st.sampled_from(sorted(KEYMAPS))


@st.composite
def _layout_and_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    name = draw(_layouts)
    alphabet = sorted(KEYMAPS[name].alphabet() | {GS})
    texts = draw(
        st.lists(st.text(alphabet=alphabet, min_size=1, max_size=40), min_size=1, max_size=4)
    )
    return name, texts


@settings(max_examples=300, deadline=None)
@given(
    case=_layout_and_texts(),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=50),
    gs=st.sampled_from(["ctrl", "alt"]),
    terminator=st.sampled_from(["enter", "tab"]),
)
def test_any_text_any_timing_round_trips(
    case: tuple[str, list[str]], gaps: list[float], gs: str, terminator: str
) -> None:
    name, texts = case
    typist = Typist(
        KEYMAPS[name], gs=gs, terminator="KEY_ENTER" if terminator == "enter" else "KEY_TAB"
    )
    cycle = iter(gaps * 10_000)
    events = [e for text in texts for e in typist.events(text, cycle)]
    barcodes = _decode(events, keymap=name, terminator=terminator)
    assert [(b.text, b.problem) for b in barcodes] == [(t, None) for t in texts]


def test_characters_one_millisecond_apart_are_all_delivered() -> None:
    text = "4006381333931" * 4
    events = Typist(KEYMAPS["us"]).events(text, _constant(0.001))
    (barcode,) = _decode(events)
    assert barcode.text == text


def test_first_key_time_is_the_barcode_time() -> None:
    events = Typist(KEYMAPS["us"]).events("A1", _constant(0.25), start=100.0)
    (barcode,) = _decode(events)
    # Shift goes down at 100.25; the first character's key at 100.5 dates the scan.
    assert barcode.at == pytest.approx(100.5)


@pytest.mark.parametrize("layout", sorted(KEYMAPS))
def test_a_layout_mismatch_is_visible_not_silent(layout: str) -> None:
    # An AZERTY scanner's digits, decoded as each layout: only "fr" gives the digits.
    events = Typist(KEYMAPS["fr"]).events("12345", _constant(0.001))
    (barcode,) = _decode(events, keymap=layout)
    assert (barcode.text == "12345") is (layout == "fr")


def test_unmapped_keys_make_the_barcode_unreadable_not_guessed() -> None:
    typist = Typist(KEYMAPS["de"])
    events = typist.events("AB", _constant(0.001))
    f1 = ecodes.KEY_F1
    events[3:3] = [
        InputEvent(1_700_000_000, 0, ecodes.EV_KEY, f1, 1),
        InputEvent(1_700_000_000, 0, ecodes.EV_KEY, f1, 0),
    ]
    events += typist.events("OK", _constant(0.001), start=1_700_000_010.0)
    bad, good = _decode(events, keymap="de")
    assert bad.problem is not None and "KEY_F1" in bad.problem
    assert (good.text, good.problem) == ("OK", None)


def test_ctrl_letter_is_unreadable() -> None:
    keys = [("KEY_LEFTCTRL", 1), ("KEY_A", 1), ("KEY_A", 0), ("KEY_LEFTCTRL", 0)]
    keys += [("KEY_ENTER", 1), ("KEY_ENTER", 0)]
    events = [InputEvent(1, 0, ecodes.EV_KEY, ecodes.ecodes[k], v) for k, v in keys]
    (barcode,) = _decode(events)
    assert barcode.problem == "unexpected Ctrl+KEY_A"


def test_alt_code_outside_ascii_is_unreadable() -> None:
    events = [InputEvent(1, 0, ecodes.EV_KEY, ecodes.KEY_LEFTALT, 1)]
    for digit in "0233":
        code = ecodes.ecodes[f"KEY_KP{digit}"]
        events += [
            InputEvent(1, 0, ecodes.EV_KEY, code, 1),
            InputEvent(1, 0, ecodes.EV_KEY, code, 0),
        ]
    events += [InputEvent(1, 0, ecodes.EV_KEY, ecodes.KEY_LEFTALT, 0)]
    events += [InputEvent(1, 0, ecodes.EV_KEY, ecodes.KEY_ENTER, v) for v in (1, 0)]
    (barcode,) = _decode(events)
    assert barcode.problem == "Alt code 233 is outside ASCII"


def test_prefix_suffix_strip_and_bare_terminators() -> None:
    typist = Typist(KEYMAPS["uk"])
    events = typist.events("", _constant(0.001)) + typist.events("]C1£5#", _constant(0.001))
    (barcode,) = _decode(events, keymap="uk", prefix="]C1", suffix="#")
    assert barcode.text == "£5"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown keymap 'xx'"):
        BarcodeAssembler(keymap="xx")
    with pytest.raises(ValueError, match="unknown terminator"):
        BarcodeAssembler(terminator="space")
