"""The USB/lp code path (ESC i S + automatic replies) against the fake USB-style QL.

pyusb's ``UsbStream`` itself needs hardware; everything above it runs here, over a
socketpair and over a raw pseudo-terminal opened as ``ql+file://``.
"""

from __future__ import annotations

import pytest

from drivers.errors import CoverOpen, NoMedia, PrinterOffline
from drivers.fakes.ql import FakeQLUsb
from drivers.printers import PrintJob, open_printer
from drivers.printers.ql.printer import stream_printer
from drivers.printers.ql.status import INVALIDATE, STATUS_REQUEST

from .helpers import code128_label

LABEL = code128_label("YT5550001", width=696)


def test_status_request_on_the_wire() -> None:
    with FakeQLUsb() as fake:
        printer = stream_printer(fake.stream, poll_interval=0.02)  # type: ignore[arg-type]
        assert printer.status().ready
        assert fake.engine._pending.startswith(INVALIDATE + STATUS_REQUEST)


def test_job_confirmed_by_printing_completed() -> None:
    with FakeQLUsb() as fake:
        printer = stream_printer(fake.stream)  # type: ignore[arg-type]
        result = printer.print(PrintJob(job_id="u-1", images=[LABEL, LABEL]))
        assert result.verified and "printing completed" in result.detail
        assert result.status is not None and result.status.ready
        assert printer.print(PrintJob(job_id="u-1", images=[LABEL])).duplicate
        assert len(fake.jobs) == 1 and fake.jobs[0].printed == 2


@pytest.mark.parametrize(
    ("fault", "error"), [({"no_media": True}, NoMedia), ({"cover_open": True}, CoverOpen)]
)
def test_faults(fault: dict[str, object], error: type[Exception]) -> None:
    with FakeQLUsb() as fake:
        printer = stream_printer(fake.stream)  # type: ignore[arg-type]
        fake.set(**fault)
        with pytest.raises(error):
            printer.print(PrintJob(job_id="u-2", images=[LABEL]))
        assert fake.jobs == []


def test_error_occurred_mid_job() -> None:
    with FakeQLUsb(slow=30) as fake:
        printer = stream_printer(fake.stream, confirm_timeout=60)  # type: ignore[arg-type]
        import threading

        threading.Timer(0.3, lambda: fake.set(errors=("cutter jam",))).start()
        with pytest.raises(Exception, match="cutter"):
            printer.print(PrintJob(job_id="u-3", images=[LABEL]))
        assert printer.ledger.get("u-3") is None


def test_unplugged_is_offline() -> None:
    fake = FakeQLUsb()
    printer = stream_printer(fake.stream, timeout=1)  # type: ignore[arg-type]
    fake.unplug()
    with pytest.raises(PrinterOffline):
        printer.status()


def test_ql_file_url_on_a_pty() -> None:
    with FakeQLUsb(pty=True) as fake:
        printer = open_printer(f"ql+file://{fake.path}?label=62")
        assert printer.status().ready
        assert printer.print(PrintJob(job_id="u-4", images=[LABEL])).verified
        printer.close()


def test_missing_device_is_offline() -> None:
    with pytest.raises(PrinterOffline, match="/dev/usb/lp77"):
        open_printer("ql+file:///dev/usb/lp77").status()
