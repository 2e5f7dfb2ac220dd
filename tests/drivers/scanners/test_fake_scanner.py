"""The scripted scanner shipped in drivers/fakes."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import BadDeviceURL, ScannerError, ScannerGone
from drivers.fakes.scanner import ScriptedScanner
from drivers.scanners import GS, ScannerState, UnreadableScan, open_scanner

WAIT = 20.0


def test_script_file_with_gs_comments_and_an_unreadable_scan(tmp_path: Path) -> None:
    script = tmp_path / "scans.txt"
    script.write_text("# a shift's first order\nORDER-1001\n\n<UNREADABLE>\n01012345<GS>10AB\n")
    dropped: list[UnreadableScan] = []
    states: list[ScannerState] = []
    url = f"script://{script}?interval=0"
    with open_scanner(
        url, on_state=lambda s, _d: states.append(s), on_unreadable=dropped.append
    ) as scanner:
        texts = [scanner.read(timeout=WAIT) for _ in range(2)]
        assert [s.text for s in texts if s] == ["ORDER-1001", f"01012345{GS}10AB"]
        assert texts[0] is not None and texts[0].source == str(script)
        assert [d.raw for d in dropped] == ["<UNREADABLE>"]
        assert scanner.read(timeout=0.05) is None  # used up: idle, still ready
        assert scanner.state is ScannerState.READY
    assert states == [ScannerState.OPENING, ScannerState.READY, ScannerState.CLOSED]


def test_scans_in_the_url_loop_and_keep_their_interval() -> None:
    with open_scanner("script:?scan=A&scan=B&interval=0.05&loop=true") as scanner:
        scans = [scanner.read(timeout=WAIT) for _ in range(5)]
    assert [s.text for s in scans if s] == ["A", "B", "A", "B", "A"]
    monos = [s.at_mono for s in scans if s]
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(monos))


def test_push_wakes_a_blocked_read_and_close_ends_it(wait_until_blocked: Any) -> None:
    scanner = ScriptedScanner()
    got: list[object] = []
    first_read = threading.Event()

    def read_twice() -> None:
        got.append(scanner.read())
        first_read.set()
        got.append(scanner.read())

    reader = threading.Thread(target=read_twice)
    reader.start()
    wait_until_blocked(reader, on="self._cond.wait(")
    scanner.push("PUSHED")
    assert first_read.wait(WAIT)
    wait_until_blocked(reader, on="self._cond.wait(")
    scanner.close()
    reader.join(WAIT)
    assert [getattr(g, "text", g) for g in got] == ["PUSHED", None]
    with pytest.raises(ScannerGone):
        scanner.read(timeout=0)


@pytest.mark.parametrize(
    "url,error,words",
    [
        ("script:", BadDeviceURL, "give a script file path or scan="),
        ("script:?scan=A&interval=soon", BadDeviceURL, "bad value for 'interval'"),
        ("script:?scan=A&interval=1&interval=2", BadDeviceURL, "more than once"),
        ("script:///no/such/scans.txt", ScannerError, "cannot read scan script"),
    ],
)
def test_bad_scripts(url: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        open_scanner(url)
