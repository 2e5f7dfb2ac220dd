"""The file:// virtual printer and open_printer's URL handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from drivers.errors import BadDeviceURL
from drivers.fakes.ql import decode_pages
from drivers.printers import PrintJob, open_printer
from drivers.printers.zpl.graphics import decode_graphic_fields

IMAGE = Image.new("L", (696, 300), 255)


def test_writes_png_and_bin_atomically(tmp_path: Path) -> None:
    printer = open_printer(tmp_path.as_uri())
    assert printer.status().ready
    result = printer.print(PrintJob(job_id="f-1", images=[IMAGE]))
    assert not result.verified and result.detail == "written, printer cannot confirm"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["f-1.bin", "f-1.png"]  # no temporary files left behind
    assert (tmp_path / "f-1.bin").read_bytes().startswith(b"\x89PNG")
    printer.print(PrintJob(job_id="f-2", images=[IMAGE, IMAGE]))
    assert (tmp_path / "f-2-1.png").exists() and (tmp_path / "f-2-2.png").exists()
    printer.print(PrintJob(job_id="f-3", raw=b"^XA^XZ"))
    assert (tmp_path / "f-3.bin").read_bytes() == b"^XA^XZ"


def test_idempotent_across_a_restart(tmp_path: Path) -> None:
    open_printer(tmp_path.as_uri()).print(PrintJob(job_id="f-4", images=[IMAGE]))
    (tmp_path / "f-4.png").unlink()
    again = open_printer(tmp_path.as_uri()).print(PrintJob(job_id="f-4", images=[IMAGE]))
    assert again.duplicate and not (tmp_path / "f-4.png").exists()
    reprint = open_printer(tmp_path.as_uri()).print(
        PrintJob(job_id="f-4", images=[IMAGE], reprint=True)
    )
    assert not reprint.duplicate and (tmp_path / "f-4.png").exists()


def test_a_half_written_job_does_not_count(tmp_path: Path) -> None:
    (tmp_path / ".f-5.bin.tmp").write_bytes(b"half")
    result = open_printer(tmp_path.as_uri()).print(PrintJob(job_id="f-5", images=[IMAGE]))
    assert not result.duplicate


def test_job_ids_cannot_escape_the_directory(tmp_path: Path) -> None:
    open_printer(tmp_path.as_uri()).print(PrintJob(job_id="../evil", images=[IMAGE]))
    assert not (tmp_path.parent / "evil.bin").exists()
    assert len(list(tmp_path.glob("*.bin"))) == 1


def test_encode_options(tmp_path: Path) -> None:
    open_printer(tmp_path.as_uri(), encode="ql", label="62").print(
        PrintJob(job_id="q", images=[IMAGE])
    )
    assert len(decode_pages((tmp_path / "q.bin").read_bytes())) == 1
    open_printer(tmp_path.as_uri(), encode="zpl").print(PrintJob(job_id="z", images=[IMAGE]))
    assert len(decode_graphic_fields((tmp_path / "z.bin").read_bytes())) == 1


def test_labels_left(tmp_path: Path) -> None:
    printer = open_printer(f"{tmp_path.as_uri()}?roll_labels=3&ledger={tmp_path}/l.jsonl")
    printer.print(PrintJob(job_id="a", images=[IMAGE], copies=2))
    assert printer.status().labels_left == 1
    restarted = open_printer(f"{tmp_path.as_uri()}?roll_labels=3&ledger={tmp_path}/l.jsonl")
    assert restarted.status().labels_left == 1


@pytest.mark.parametrize(
    "url",
    [
        "bogus:///x",
        "file:///tmp/x?lable=62",
        "file:///tmp/x?roll_labels=lots",
        "file:///tmp/x?encode=pdf",
        "ql+tcp://:9100",
        "ql+tcp://host:9100?snmp_version=3",
        "ql+tcp://host:9100?model=QL-9",
        "ql+tcp://host:9100?label=63",
        "ql+usb://brother",
        "zpl+tcp://host:9100?baud=9600",
        "zpl+serial://",
        "no scheme",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(BadDeviceURL):
        open_printer(url)


def test_keyword_options_override_the_query(tmp_path: Path) -> None:
    printer = open_printer(f"{tmp_path.as_uri()}?roll_labels=5", roll_labels=9)
    assert printer.status().labels_left == 9
