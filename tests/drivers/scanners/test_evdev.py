"""The evdev reader, as far as a machine without /dev/input can test it.

This machine has no input devices and no /dev/uinput, so the grab-and-read loop
itself is exercised on hardware only; here: URL handling, the "not plugged in yet"
state and its retries, and the conversion of assembled barcodes into scans. The
decoding is tested in full in test_assembler.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.errors import BadDeviceURL
from drivers.scanners import Scan, ScannerState, UnreadableScan, open_scanner
from drivers.scanners.assembler import Barcode
from drivers.scanners.evdev import EvdevScanner, to_scans
from drivers.scanners.hotplug import Clock

FAST = "reconnect_min=0.01&reconnect_max=0.05"


def test_a_missing_device_is_gone_and_retried(tmp_path: Path) -> None:
    seen: list[tuple[ScannerState, str]] = []
    path = tmp_path / "usb-Scanner-event-kbd"
    scanner = open_scanner(f"evdev://{path}?keymap=de&{FAST}", on_state=lambda *c: seen.append(c))
    try:
        assert isinstance(scanner, EvdevScanner)
        assert scanner.assembler.keymap.name == "de"
        assert scanner.read(timeout=0.2) is None
        assert [s for s, _ in seen] == [ScannerState.OPENING, ScannerState.GONE]
        assert "No such file" in seen[-1][1]
    finally:
        scanner.close()
    assert scanner.state is ScannerState.CLOSED


def test_a_file_that_is_no_input_device_is_gone_with_the_reason(tmp_path: Path) -> None:
    not_a_device = tmp_path / "event0"
    not_a_device.write_bytes(b"")
    with open_scanner(f"evdev://{not_a_device}?{FAST}") as scanner:
        assert scanner.state is ScannerState.GONE


def test_vendor_product_not_plugged_in() -> None:
    seen: list[str] = []
    with open_scanner(f"evdev://0c2e:0B61?{FAST}", on_state=lambda s, d: seen.append(d)):
        pass
    assert "no input device with USB id 0c2e:0b61" in seen[1]


@pytest.mark.parametrize(
    "url,words",
    [
        ("evdev://scanner", "expected evdev:///dev/input"),
        ("evdev://0c2e:0b61/extra", "expected evdev:///dev/input"),
        ("evdev:///dev/input/event3?keymap=jp", "bad value for 'keymap'"),
        ("evdev:///dev/input/event3?terminator=space", "bad value for 'terminator'"),
        ("evdev:///dev/input/event3?grab=maybe", "bad value for 'grab'"),
        ("evdev:///dev/input/event3?layout=us", "unknown option 'layout'"),
    ],
)
def test_bad_urls(url: str, words: str) -> None:
    with pytest.raises(BadDeviceURL, match=words):
        open_scanner(url)


def test_barcodes_become_scans_on_both_clocks() -> None:
    clock = Clock(wall=lambda: 1000.0, mono=lambda: 50.0)
    out = to_scans(
        [
            Barcode(text="ABC", at=999.5, keys=("KEY_A",)),
            Barcode(text="", at=999.75, keys=("KEY_F1",), problem="F1"),
        ],
        source="kbd",
        clock=clock,
    )
    assert out == [
        Scan(text="ABC", at_wall=999.5, at_mono=49.5, source="kbd"),
        UnreadableScan(reason="F1", raw="KEY_F1", at_wall=999.75, at_mono=49.75, source="kbd"),
    ]
