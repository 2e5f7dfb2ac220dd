"""The Brother status request and 32-byte status block, byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CoverOpen, NoMedia, PrinterBusy, PrinterError, WrongMedia
from drivers.printers.base import PrinterState
from drivers.printers.ql.status import (
    ERROR_BITS,
    INVALIDATE,
    STATUS_REQUEST,
    MediaKind,
    QLStatus,
    StatusBlockError,
    StatusType,
    build_status_block,
    check_ready,
    parse_status,
    split_status_blocks,
    to_printer_status,
)

# A QL-820NWB with 62 mm endless, as the raster command reference lays it out.
READY_62 = bytes.fromhex(
    "80 20 42 34 41 30 00 00"  # head mark, size, 'B', series, model 0x41, '0', 0, 0
    "00 00 3e 4a 00 00 00 00"  # error 1, error 2, width 62, continuous (0x4A), ...
    "00 00 00 00 00 00 00 00"  # byte 17 length 0, 18 status type 0, 19 phase waiting
    "00 00 00 00 00 00 00 00"
)


def test_status_request_bytes() -> None:
    assert STATUS_REQUEST == b"\x1b\x40\x1b\x69\x53"
    assert INVALIDATE == b"\x00" * 400


def test_parse_a_documented_block() -> None:
    status = parse_status(READY_62)
    assert status.model == "QL-820NWB"
    assert status.media_width_mm == 62 and status.media_length_mm == 0
    assert status.media_kind is MediaKind.ENDLESS
    assert status.errors == () and not status.phase_printing
    assert status.status_words == "reply to status request"
    assert to_printer_status(status, expected=(62, 0)).state is PrinterState.READY


def test_builder_matches_the_documented_block() -> None:
    assert build_status_block() == READY_62


def test_printing_completed_die_cut() -> None:
    block = bytearray(READY_62)
    block[11], block[17], block[18], block[19] = 0x4B, 100, 0x01, 0x01
    status = parse_status(bytes(block))
    assert status.media_kind is MediaKind.DIE_CUT and status.media_length_mm == 100
    assert status.status_type == StatusType.PRINTING_COMPLETED and status.phase_printing
    assert status.media_words == "62x100 mm die-cut"


@pytest.mark.parametrize(
    ("byte", "bit", "error", "state"),
    [
        (8, 0, NoMedia, PrinterState.NO_MEDIA),
        (8, 1, NoMedia, PrinterState.NO_MEDIA),
        (8, 2, PrinterError, PrinterState.ERROR),
        (9, 4, CoverOpen, PrinterState.COVER_OPEN),
        (9, 0, WrongMedia, PrinterState.WRONG_MEDIA),
        (9, 5, PrinterBusy, PrinterState.BUSY),
        (8, 7, PrinterError, PrinterState.ERROR),
    ],
)
def test_each_error_bit(byte: int, bit: int, error: type[Exception], state: PrinterState) -> None:
    block = bytearray(READY_62)
    block[byte] |= 1 << bit
    status = parse_status(bytes(block))
    with pytest.raises(error):
        check_ready(status, expected=(62, 0))
    assert to_printer_status(status, expected=(62, 0)).state is state


def test_every_error_bit_is_in_the_table_once() -> None:
    positions = [(e.byte, e.bit) for e in ERROR_BITS]
    assert len(positions) == len(set(positions)) == 16


def test_cover_open_wins_over_no_media() -> None:
    status = parse_status(build_status_block(errors=("no media", "cover open")))
    with pytest.raises(CoverOpen):
        check_ready(status, expected=(62, 0))


def test_packer_words() -> None:
    status = parse_status(build_status_block(errors=("no media",)))
    with pytest.raises(NoMedia, match="Printer out of labels — load a new 62 mm roll"):
        check_ready(status, expected=(62, 0))
    status = parse_status(build_status_block(media_width_mm=29))
    with pytest.raises(WrongMedia, match=r"29 mm endless.*load the 62x100 mm roll"):
        check_ready(status, expected=(62, 100))


def test_no_roll_without_error_bits_is_no_media() -> None:
    status = parse_status(build_status_block(media_kind=MediaKind.NONE))
    with pytest.raises(NoMedia):
        check_ready(status, expected=(62, 0))


@pytest.mark.parametrize("data", [b"", READY_62[:31], READY_62 + b"\x00", b"\x81" + READY_62[1:]])
def test_not_a_block(data: bytes) -> None:
    with pytest.raises(StatusBlockError):
        parse_status(data)


def test_split_blocks_skips_noise_and_keeps_a_partial_block() -> None:
    buffer = bytearray(b"\x00\x17" + READY_62 + READY_62[:10])
    assert [b.media_width_mm for b in split_status_blocks(buffer)] == [62]
    assert bytes(buffer) == READY_62[:10]
    buffer += READY_62[10:]
    assert len(split_status_blocks(buffer)) == 1 and not buffer


@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_parse_or_fail_clearly(data: bytes) -> None:
    try:
        status = parse_status(data)
    except StatusBlockError:
        assert not data.startswith(b"\x80\x20\x42")
        return
    assert isinstance(status, QLStatus)
    reading = to_printer_status(status, expected=(62, 0))
    assert reading.state in PrinterState and reading.detail


@given(st.binary(min_size=29, max_size=29), st.binary(max_size=80))
def test_any_block_with_header_parses_and_noise_never_crashes(tail: bytes, noise: bytes) -> None:
    status = parse_status(b"\x80\x20\x42" + tail)
    to_printer_status(status, expected=None)
    split_status_blocks(bytearray(noise + b"\x80\x20\x42" + tail + noise))
