"""Device health: the printer is read at the configured interval of the injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.fakes.ql import FakeQLPrinter
from drivers.fakes.scanner import ScriptedScanner
from drivers.printers import open_printer
from edge.health import DeviceHealth


class ManualClock:
    """A clock the test moves by hand."""

    boot_id = "boot-health"

    def __init__(self) -> None:
        self.now = 1000.0

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def mono(self) -> float:
        return self.now


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeQLPrinter]:
    with FakeQLPrinter(out_dir=tmp_path / "fake-ql", label="62") as printer:
        yield printer


def test_the_printer_is_read_at_the_interval_not_before(fake: FakeQLPrinter) -> None:
    clock = ManualClock()
    printer = open_printer(fake.url)
    devices = DeviceHealth(
        printer=printer, scanner=ScriptedScanner(scans=[]), clock=clock, interval=15.0
    )
    try:
        assert devices.report()["printer"] == "unknown"
        assert devices.poll()  # the first poll reads at once
        assert devices.report()["printer"] == "ready"
        assert devices.report()["scanner"] == "ready"  # the scanner's own state

        fake.set(no_media=True)  # the roll runs out between orders
        clock.now += 14.9
        assert not devices.poll()
        assert devices.report()["printer"] == "ready"  # not read yet
        clock.now += 0.1
        assert devices.poll()
        assert devices.report()["printer"] == "no media"
        assert not devices.poll()  # the interval starts again from this reading

        fake.stop()  # switched off
        clock.now += 15.0
        assert devices.poll()
        assert devices.report()["printer"] == "offline"
    finally:
        printer.close()


def test_the_interval_must_be_positive(fake: FakeQLPrinter) -> None:
    printer = open_printer(fake.url)
    try:
        with pytest.raises(ValueError, match="positive"):
            DeviceHealth(
                printer=printer, scanner=ScriptedScanner(scans=[]), clock=ManualClock(), interval=0
            )
    finally:
        printer.close()
