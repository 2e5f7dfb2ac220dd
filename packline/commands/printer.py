"""``packline printer``: ask a printer its state, print a test label, run a fake printer."""

from __future__ import annotations

import enum
import signal
import threading
import time
import uuid
from pathlib import Path

import typer
from PIL import Image, ImageDraw, ImageFont

from drivers.errors import PrinterError
from drivers.printers import Printer, PrintJob, open_printer
from packline.commands import command_group

__all__ = ["NOT_READY", "FakeKind", "app", "test_label"]

app = command_group()

NOT_READY = 1
"""Exit code of ``status`` and ``test`` when the printer is not ready (offline too)."""


class FakeKind(enum.StrEnum):
    """Which fake printer to run."""

    ql = "ql"
    zpl = "zpl"


URL = typer.Argument(..., metavar="URL", help="Printer URL, e.g. ql+tcp://10.0.0.5:9100")


@app.command()
def status(url: str = URL) -> None:
    """Print the printer's state in words; exit 1 when it is not ready."""
    with open_printer(url) as printer:
        try:
            reading = printer.status()
        except PrinterError as exc:
            typer.echo(f"offline: {exc}")
            raise typer.Exit(NOT_READY) from None
    typer.echo(f"{reading.state.value}: {reading.detail}")
    if reading.labels_left is not None:
        typer.echo(f"labels left (estimate): {reading.labels_left}")
    if reading.page_count is not None:
        typer.echo(f"pages printed (printer's counter): {reading.page_count}")
    if not reading.ready:
        raise typer.Exit(NOT_READY)


def _test_size(printer: Printer) -> tuple[int, int]:
    from drivers.printers.ql.printer import QLPrinterBase
    from drivers.printers.ql.raster import QL_DPI
    from drivers.printers.zpl.printer import ZplPrinter

    if isinstance(printer, QLPrinterBase):
        width, length = printer.label.printable_dots
        return width, length or QL_DPI
    if isinstance(printer, ZplPrinter):
        return printer.dpi * 4, printer.dpi * 2
    return 696, 300


def test_label(*, width: int, height: int, text: str) -> Image.Image:
    """A simple black-on-white test label: a frame, the text and a bar pattern."""
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((2, 2, width - 3, height - 3), outline=0, width=4)
    font = ImageFont.load_default(size=max(12, height // 8))
    draw.text((20, 16), "packline test label", fill=0, font=font)
    draw.text((20, 16 + height // 6), text, fill=0, font=font)
    # Bars of known widths show a dead print-head dot as a white streak.
    x, top = 20, height // 2
    for n in range(min(40, (width - 40) // 12)):
        bar = 2 + n % 3 * 2
        draw.rectangle((x, top, x + bar - 1, height - 20), fill=0)
        x += bar + 6
    return image


@app.command()
def test(url: str = URL) -> None:
    """Print a test label and say whether the printer confirmed it; exit 1 when it is
    not ready."""
    with open_printer(url) as printer:
        width, height = _test_size(printer)
        stamp = time.strftime("%Y-%m-%d %H:%M")
        image = test_label(width=width, height=height, text=stamp)
        try:
            result = printer.print(PrintJob(job_id=f"test-{uuid.uuid4()}", images=[image]))
        except PrinterError as exc:
            # The same words and exit code as `status`: the printer is not ready.
            typer.echo(f"not printed: {exc}")
            raise typer.Exit(NOT_READY) from None
    word = "printed and confirmed" if result.verified else "sent, not confirmed"
    typer.echo(f"{word}: {result.detail}")


@app.command()
def fake(
    kind: FakeKind = typer.Argument(..., metavar="KIND", help="Which printer language."),
    port: int = typer.Option(9100, "--port", help="TCP port for print jobs (0 = any free)."),
    snmp_port: int = typer.Option(0, "--snmp-port", help="UDP port for SNMP (ql; 0 = free)."),
    control_port: int | None = typer.Option(
        None, "--control-port", help="JSON control port to switch faults (0 = free)."
    ),
    out: Path | None = typer.Option(
        None, "--out", metavar="DIR", help="Folder to save received jobs in."
    ),
    model: str = typer.Option("QL-820NWB", "--model", help="Brother model (ql)."),
    label: str = typer.Option("62", "--label", help="Loaded Brother label (ql)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Run a fake printer until Ctrl-C; prints its URL (and control port) first."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if kind is FakeKind.ql:
        from drivers.fakes.ql import FakeQLPrinter

        ql = FakeQLPrinter(
            host=host,
            port=port,
            snmp_port=snmp_port,
            control_port=control_port,
            out_dir=out,
            model=model,
            label=label,
        )
        url, control, shutdown = ql.url, ql.control_port, ql.stop
    else:
        from drivers.fakes.zpl import FakeZplPrinter

        zpl = FakeZplPrinter(host=host, port=port, control_port=control_port, out_dir=out)
        url, control, shutdown = zpl.url, zpl.control_port, zpl.stop
    typer.echo(url)  # first line: a test or script reads the URL from here
    if control is not None:
        typer.echo(f"control: {host}:{control}")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        shutdown()
