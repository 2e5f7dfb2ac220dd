"""``packline printer``: a fake run as a subprocess, faults flipped over its control port."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.errors import NoMedia, PrinterOffline
from drivers.fakes.control import FakeControl
from drivers.printers import PrintJob, open_printer
from drivers.printers.base import PrintResult
from packline.cli import main

from .helpers import code128_label

LABEL = code128_label("SF777", width=696)


@pytest.fixture
def fake_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, FakeControl]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "packline", "printer", "fake", "ql", "--port", "0",
         "--snmp-port", "0", "--control-port", "0", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        control = proc.stdout.readline().strip().split(":")[-1]
        yield proc, url, FakeControl(port=int(control))
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_fake_subprocess_status_faults_and_job(
    fake_process: tuple[subprocess.Popen[str], str, FakeControl],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, url, control = fake_process
    assert url.startswith("ql+tcp://127.0.0.1:")
    assert main(["printer", "status", url]) == 0
    assert capsys.readouterr().out.startswith("ready")
    control.set(no_media=True)
    assert main(["printer", "status", url]) == 1
    assert "out of labels" in capsys.readouterr().out
    printer = open_printer(url, poll_interval=0.02)
    with pytest.raises(NoMedia):
        printer.print(PrintJob(job_id="c-1", images=[LABEL]))
    control.set(no_media=False)
    assert printer.print(PrintJob(job_id="c-1", images=[LABEL])).verified
    assert printer.print(PrintJob(job_id="c-1", images=[LABEL])).duplicate
    assert control.state()["jobs"] == 1
    assert main(["printer", "test", url]) == 0
    assert "printed and confirmed" in capsys.readouterr().out
    assert (tmp_path / "out" / "job0001-1.png").exists()


def test_fake_subprocess_killed_mid_job(
    fake_process: tuple[subprocess.Popen[str], str, FakeControl],
) -> None:
    proc, url, control = fake_process
    control.set(slow=600)
    printer = open_printer(url, poll_interval=0.02, timeout=0.5)
    outcome: list[PrintResult | Exception] = []

    def run() -> None:
        try:
            outcome.append(printer.print(PrintJob(job_id="c-2", images=[LABEL])))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    import time

    deadline = time.monotonic() + 60
    while not control.state()["printing"] and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    thread.join(timeout=60)
    assert isinstance(outcome[0], PrinterOffline)
    assert "does not answer" in str(outcome[0])


def test_status_of_an_unreachable_printer_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["printer", "status", "zpl+tcp://127.0.0.1:1?timeout=0.5"]) == 1
    assert capsys.readouterr().out.startswith("offline:")


def test_bad_url_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["printer", "status", "ql+tcp://host?lable=62"]) == 2
    assert "unknown printer option lable" in capsys.readouterr().err


def test_status_of_a_networked_ql_whose_print_port_is_closed_is_not_ready(
    fake_process: tuple[subprocess.Popen[str], str, FakeControl],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from packline.devbroker import free_port

    _, url, _ = fake_process
    port = url.split("?")[0].rsplit(":", 1)[1]
    closed = url.replace(f":{port}?", f":{free_port()}?")
    assert main(["printer", "status", closed]) == 1
    out = capsys.readouterr().out
    assert out.startswith("offline:") and "does not take print jobs" in out
    assert main(["printer", "status", url]) == 0
