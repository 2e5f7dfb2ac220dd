"""ZPL over real TCP against the fake ZPL printer; ~HS parsing byte for byte."""

from __future__ import annotations

import pytest
import zxingcpp

from drivers.errors import CoverOpen, NoMedia, PrinterBusy, PrinterOffline
from drivers.fakes.zpl import FakeZplPrinter
from drivers.printers import PrinterState, PrintJob, open_printer
from drivers.printers.zpl.status import HostStatusError, parse_host_status

from .helpers import code128_label

HS_IDLE = (
    b"\x02030,0,0,1218,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02001,0,0,0,0,2,6,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)


def test_parse_host_status() -> None:
    status = parse_host_status(HS_IDLE)
    assert status.faults == () and not status.busy_with_job
    assert status["label_length_dots"] == 1218
    busy = parse_host_status(
        HS_IDLE.replace(b"00000000", b"00000003").replace(b"000,0,0,0", b"002,0,0,0", 1)
    )
    assert busy["labels_remaining"] == 3 and busy["formats_in_buffer"] == 2
    faults = parse_host_status(
        HS_IDLE.replace(b"030,0,0", b"030,1,1").replace(b"001,0,0", b"001,0,1")
    )
    assert [f.name for f in faults.faults] == ["head open", "paper out", "paused"]


@pytest.mark.parametrize("data", [b"", HS_IDLE[:40], b"\x02a,b\x03\x02c\x03\x02d\x03"])
def test_bad_host_status(data: bytes) -> None:
    with pytest.raises(HostStatusError):
        parse_host_status(data)


def test_job_verified_and_not_printed_twice(fake_zpl: FakeZplPrinter) -> None:
    printer = open_printer(fake_zpl.url, poll_interval=0.02, roll_labels=50)
    assert printer.status().ready
    label = code128_label("ZT424242", width=800, module=2)
    result = printer.print(PrintJob(job_id="z-1", images=[label], copies=2))
    assert result.verified
    assert printer.print(PrintJob(job_id="z-1", images=[label])).duplicate
    assert len(fake_zpl.formats) == 1 and fake_zpl.formats[0].printed == 2
    [image] = fake_zpl.formats[0].images
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == ["ZT424242"]
    assert printer.status().labels_left == 48


def test_raw_zpl_passes_through(fake_zpl: FakeZplPrinter) -> None:
    raw = b"^XA^FO50,50^BCN,100,Y,N,N^FDSF123^FS^XZ"
    open_printer(fake_zpl.url, poll_interval=0.02).print(PrintJob(job_id="z-2", raw=raw))
    assert fake_zpl.formats[0].data == raw


@pytest.mark.parametrize(
    ("fault", "error", "state"),
    [
        ("paper_out", NoMedia, PrinterState.NO_MEDIA),
        ("head_up", CoverOpen, PrinterState.COVER_OPEN),
        ("ribbon_out", NoMedia, PrinterState.NO_MEDIA),
        ("paused", PrinterBusy, PrinterState.BUSY),
    ],
)
def test_faults(
    fake_zpl: FakeZplPrinter, fault: str, error: type[Exception], state: PrinterState
) -> None:
    printer = open_printer(fake_zpl.url, poll_interval=0.02)
    fake_zpl.set(**{fault: True})
    assert printer.status().state is state
    with pytest.raises(error):
        printer.print(PrintJob(job_id="z-3", raw=b"^XA^XZ"))
    assert fake_zpl.formats == []


def test_offline(fake_zpl: FakeZplPrinter) -> None:
    fake_zpl.set(offline=True)
    with pytest.raises(PrinterOffline):
        open_printer(fake_zpl.url, timeout=0.5).status()


def test_slow_printer_times_out_unverified(fake_zpl: FakeZplPrinter) -> None:
    fake_zpl.set(slow=60)
    printer = open_printer(fake_zpl.url, poll_interval=0.02, confirm_timeout=0.3)
    result = printer.print(PrintJob(job_id="z-4", raw=b"^XA^XZ"))
    assert not result.verified and "still printing" in result.detail
