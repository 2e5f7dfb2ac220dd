"""Serial scanners through real pyserial on real pseudo-terminals."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.errors import BadDeviceURL, ScannerGone
from drivers.scanners import Scan, Scanner, ScannerState, UnreadableScan, open_scanner
from drivers.scanners.serial import LineAssembler

WAIT = 20.0  # generous bound for waits on a shared machine; never a speed limit


class Collector:
    """Reads a scanner on its own thread, as the station agent does."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.scans: list[Scan] = []
        self._cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="scanner-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                scan = self.scanner.read(timeout=0.5)
            except ScannerGone:
                return
            if scan is not None:
                with self._cond:
                    self.scans.append(scan)
                    self._cond.notify_all()

    def texts(self, count: int) -> list[str]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.scans) >= count, WAIT)
            assert ok, f"only {[s.text for s in self.scans]} arrived"
            return [s.text for s in self.scans]


@pytest.fixture
def scanners() -> Iterator[list[Scanner]]:
    opened: list[Scanner] = []
    yield opened
    for s in opened:
        s.close()


def _open(scanners: list[Scanner], url: str, **kw: Any) -> Scanner:
    scanner = open_scanner(url, **kw)
    scanners.append(scanner)
    return scanner


def test_reads_a_scan_with_the_time_of_its_first_byte(pty_device: Any, scanners: Any) -> None:
    scanner = _open(scanners, f"serial://{pty_device.url_path}?baud=9600&terminator=cr")
    assert scanner.state is ScannerState.READY
    before_wall, before_mono = time.time(), time.monotonic()
    pty_device.write(b"4006381333931\r")
    scan = scanner.read(timeout=WAIT)
    assert scan is not None
    assert scan.text == "4006381333931"
    assert scan.source == pty_device.url_path
    assert before_wall <= scan.at_wall <= time.time()
    assert before_mono <= scan.at_mono <= time.monotonic()


@pytest.mark.parametrize("name,end", [("cr", b"\r"), ("lf", b"\n"), ("crlf", b"\r\n")])
def test_terminators_byte_by_byte(pty_device: Any, scanners: Any, name: str, end: bytes) -> None:
    scanner = _open(scanners, f"serial://{pty_device.url_path}?terminator={name}")
    for code in (b"ABC-1", b"]C1010\x1d21XYZ"):
        for byte in code + end:
            pty_device.write(bytes([byte]))
    first, second = scanner.read(timeout=WAIT), scanner.read(timeout=WAIT)
    assert first is not None and second is not None
    assert [first.text, second.text] == ["ABC-1", "]C1010\x1d21XYZ"]


def test_timeout_returns_none(pty_device: Any, scanners: Any) -> None:
    scanner = _open(scanners, f"serial://{pty_device.url_path}")
    pty_device.write(b"PARTIAL")  # no terminator: not a scan yet
    assert scanner.read(timeout=0.05) is None


def test_unreadable_lines_are_dropped_logged_and_reported(
    pty_device: Any, scanners: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dropped: list[UnreadableScan] = []
    scanner = _open(scanners, f"serial://{pty_device.url_path}", on_unreadable=dropped.append)
    with caplog.at_level(logging.WARNING, logger="drivers.scanners"):
        pty_device.write(b"\xff\xfeAB\rA\x07B\rGOOD-1\r")
        scan = scanner.read(timeout=WAIT)
    assert scan is not None and scan.text == "GOOD-1"
    assert [d.raw for d in dropped] == [repr(b"\xff\xfeAB"), repr(b"A\x07B")]
    assert "not utf-8" in dropped[0].reason
    assert "control" in dropped[1].reason
    assert sum("unreadable" in r.getMessage() for r in caplog.records) == 2


def test_close_unblocks_a_blocked_read(pty_device: Any, wait_until_blocked: Any) -> None:
    scanner = open_scanner(f"serial://{pty_device.url_path}")
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(scanner.read()))
    reader.start()
    wait_until_blocked(reader, on="select.select(")
    scanner.close()
    reader.join(WAIT)
    assert not reader.is_alive()
    assert result == [None]
    assert scanner.state is ScannerState.CLOSED
    with pytest.raises(ScannerGone):
        scanner.read(timeout=0)


def test_unplug_is_a_state_and_no_complete_scan_is_lost(
    pty_device: Any, scanners: Any, states: Any
) -> None:
    url = f"serial://{pty_device.url_path}?reconnect_min=0.01&reconnect_max=0.2"
    scanner = _open(scanners, url, on_state=states)
    states.wait_for(ScannerState.READY)
    collector = Collector(scanner)
    pty_device.write(b"ONE\r")
    assert collector.texts(1) == ["ONE"]
    # Two complete scans and a partial one land in one chunk; then the cable goes.
    pty_device.write(b"TWO\rTHREE\rPAR")
    assert collector.texts(3) == ["ONE", "TWO", "THREE"]
    pty_device.unplug()
    states.wait_for(ScannerState.GONE)
    assert scanner.state is ScannerState.GONE
    pty_device.plug()
    states.wait_for(ScannerState.READY, count=2)
    pty_device.write(b"FOUR\r")
    assert collector.texts(4) == ["ONE", "TWO", "THREE", "FOUR"]
    assert states.states[:4] == [
        ScannerState.OPENING,
        ScannerState.READY,
        ScannerState.GONE,
        ScannerState.READY,
    ]
    scanner.close()
    collector.thread.join(WAIT)
    assert states.states[-1] is ScannerState.CLOSED


def test_a_missing_device_is_gone_not_an_error(tmp_path: Any, scanners: Any, states: Any) -> None:
    url = f"serial://{tmp_path}/nothing-here?reconnect_min=0.01&reconnect_max=0.05"
    scanner = _open(scanners, url, on_state=states)
    assert scanner.state is ScannerState.GONE
    assert scanner.read(timeout=0.2) is None
    assert states.states == [ScannerState.OPENING, ScannerState.GONE]  # reported once
    assert "No such file" in states.changes[-1][1]


@pytest.mark.parametrize(
    "url,words",
    [
        ("bluetooth:///dev/rfcomm0", "unknown scanner type 'bluetooth'"),
        ("/dev/ttyACM0", "unknown scanner type '(none)'"),
        ("serial:///dev/ttyACM0?baud=fast", "bad value for 'baud'"),
        ("serial:///dev/ttyACM0?terminator=nul", "bad value for 'terminator'"),
        ("serial:///dev/ttyACM0?terminater=lf", "unknown option 'terminater'"),
        ("serial://host/dev/ttyACM0", "three slashes"),
        ("serial://", "no device path"),
        ("serial:///x?reconnect_min=3&reconnect_max=1", "minimum <= maximum"),
    ],
)
def test_bad_urls_are_refused_in_words(url: str, words: str) -> None:
    with pytest.raises(BadDeviceURL, match=words.replace("(", r"\(").replace(")", r"\)")):
        open_scanner(url)


def test_line_assembler_guards_against_endless_lines() -> None:
    assembler = LineAssembler(max_length=8)
    out = assembler.feed(b"0123456789", at_wall=1.0, at_mono=2.0)
    assert len(out) == 1 and isinstance(out[0], UnreadableScan)
    out = assembler.feed(b"OK\r", at_wall=3.0, at_mono=4.0)
    assert out == [Scan(text="OK", at_wall=3.0, at_mono=4.0, source="")]


def test_line_assembler_strips_prefix_suffix_and_stray_line_ends() -> None:
    assembler = LineAssembler(terminator=b"\r", prefix="]C1", suffix="#")
    out = assembler.feed(b"]C1ABC#\r\n\r\nXYZ\r", at_wall=1.0, at_mono=1.0)
    assert [s.text for s in out if isinstance(s, Scan)] == ["ABC", "XYZ"]
