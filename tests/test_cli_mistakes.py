"""Mistakes a person can make that once ended in a traceback: each is now one line.

Every case runs the real console script and expects exit code 2, exactly one line on
stderr (``packline: error: ...`` naming the problem and what to do) and no traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from packline.devbroker import free_port
from tests.support.cli import REPO, run_packline

EXAMPLE = REPO / "docs" / "examples" / "order.json"


@dataclasses.dataclass(frozen=True)
class Case:
    """A command line (``{tmp}`` is the test's folder) and words its one line must hold."""

    args: tuple[str, ...]
    words: tuple[str, ...]
    setup: Callable[[Path], None] | None = None


def _station_store_is_garbage(tmp: Path) -> None:
    store = tmp / "data" / "b1.sqlite"
    store.parent.mkdir()
    store.write_bytes(random.Random(7).randbytes(8192))  # "file is not a database"
    (tmp / "station.toml").write_text(f'station = "b1"\ndata_dir = "{store.parent}"\n')


def _a_file_where_a_folder_goes(tmp: Path) -> None:
    (tmp / "plain-file").write_text("not a folder\n")


def _huge_png(tmp: Path) -> None:
    # A real 20000 x 20000 PNG (400 million pixels); blank, so it is small on disk.
    Image.new("1", (20000, 20000), 1).save(tmp / "huge.png")


def _random_bytes_script(tmp: Path) -> None:
    (tmp / "scans.txt").write_bytes(b"\xff\xfe" + random.Random(3).randbytes(4096))


def _central_table_replaced(table: str) -> Callable[[Path], None]:
    """A migrated central database whose ``table`` was replaced by one that lacks its
    columns: every statement on it fails inside the database."""

    def setup(tmp: Path) -> None:
        import sqlite3

        from central.db import open_db

        open_db(f"sqlite:///{tmp}/central.sqlite").dispose()
        with contextlib.closing(sqlite3.connect(tmp / "central.sqlite")) as conn:
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"CREATE TABLE {table} (x TEXT)")
            conn.commit()

    return setup


CENTRAL_DB = ("--db-url", "sqlite:///{tmp}/central.sqlite")


def _agent_args(*more: str) -> tuple[str, ...]:
    # A broker port where nothing listens: these runs must never reach a real broker.
    return (
        "edge", "run", "--station", "b1", "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}",
        "--scanner", "script:?scan=PDD1&interval=0", "--printer", "file://{tmp}/printed", *more,
    )  # fmt: skip


CASES: dict[str, Case] = {
    "data-dir-cannot-be-created": Case(
        _agent_args("--data-dir", "{tmp}/plain-file/station"),
        ("cannot create the station's data folder", "plain-file", "data_dir"),
        _a_file_where_a_folder_goes,
    ),
    "corrupt-store-edge-run": Case(
        _agent_args("--config", "{tmp}/station.toml"),
        ("b1.sqlite", "is damaged", "file is not a database", "move it aside"),
        _station_store_is_garbage,
    ),
    "corrupt-store-edge-status": Case(
        ("edge", "status", "--config", "{tmp}/station.toml"),
        ("b1.sqlite", "is damaged", "move it aside"),
        _station_store_is_garbage,
    ),
    "edge-status-without-a-store": Case(
        ("edge", "status", "--station", "b1", "--data-dir", "{tmp}"),
        ("no station store at", "b1.sqlite", "packline edge run"),
    ),
    "central-config-is-a-folder": Case(
        ("central", "serve", "--config", "{tmp}"), ("is a folder", "give the TOML file")
    ),
    "import-config-is-a-folder": Case(
        ("central", "import-orders", str(EXAMPLE), "--config", "{tmp}"), ("is a folder",)
    ),
    "decompression-bomb-document": Case(
        ("label", "render", "--document", "{tmp}/huge.png", "--out", "{tmp}/w.png"),
        ("huge.png", "too large an image", "export it at label size"),
        _huge_png,
    ),
    "random-bytes-through-a-script-scanner": Case(
        ("scanner", "listen", "script://{tmp}/scans.txt?interval=0"),
        ("scans.txt", "not UTF-8 text", "one scan per line"),
        _random_bytes_script,
    ),
    "fake-printer-out-unwritable": Case(
        ("printer", "fake", "zpl", "--port", "0", "--out", "{tmp}/plain-file/jobs"),
        ("cannot keep received jobs in", "a folder this user can write to"),
        _a_file_where_a_folder_goes,
    ),
    "fake-printer-host-unknown": Case(
        ("printer", "fake", "zpl", "--port", "0", "--host", "nosuch.invalid"),
        ("cannot listen on nosuch.invalid", "an address of this machine"),
    ),
    "fake-printer-host-not-this-machine": Case(
        ("printer", "fake", "ql", "--port", "0", "--host", "192.0.2.1"),
        ("cannot listen on 192.0.2.1", "an address of this machine"),
    ),
    "fake-printer-port-negative": Case(
        ("printer", "fake", "zpl", "--port", "-1"), ("port -1", "out of range", "0 for any")
    ),
    "fake-printer-snmp-port-too-high": Case(
        ("printer", "fake", "ql", "--port", "0", "--snmp-port", "70000"),
        ("port 70000 for SNMP", "out of range"),
    ),
    "fake-ql-unknown-model": Case(
        ("printer", "fake", "ql", "--port", "0", "--model", "FOO"),
        ("unknown Brother QL model 'FOO'", "QL-820NWB"),
    ),
    "dpi-zero": Case(
        ("label", "render", "--order", str(EXAMPLE), "--dpi", "0", "--out", "{tmp}/w.png"),
        ("dpi must be between 100 and 1200, not 0",),
    ),
    "dpi-negative": Case(
        ("label", "render", "--order", str(EXAMPLE), "--dpi", "-5", "--out", "{tmp}/w.png"),
        ("dpi must be between 100 and 1200, not -5",),
    ),
    "printer-port-out-of-range": Case(
        ("printer", "status", "zpl+tcp://127.0.0.1:99999"), ("port 99999 is out of range",)
    ),
    "printer-port-not-a-number": Case(
        ("printer", "test", "zpl+tcp://127.0.0.1:nine"), ("the port must be a number",)
    ),
    "station-name-missing": Case(
        ("edge", "run", "--data-dir", "{tmp}"), ("missing setting station", "PACKLINE_STATION")
    ),
    "station-name-with-a-space": Case(
        _agent_args("--data-dir", "{tmp}", "--station", "bench 1"),
        ("invalid setting station", "letters, digits", "'bench 1'"),
    ),
    "unknown-label-size-in-the-config": Case(
        _agent_args("--config", "{tmp}/station.toml"),
        ("invalid setting label_size", "unknown label size '9x9'", "100x180"),
        lambda tmp: (tmp / "station.toml").write_text('station = "b1"\nlabel_size = "9x9"\n'),
    ),
    "central-site-with-a-slash": Case(
        ("central", "serve", "--site", "wh/1"), ("invalid setting site", "'/'", "'wh/1'")
    ),
    "pdf-that-is-not-a-pdf": Case(
        ("label", "render", "--document", "{tmp}/w.pdf", "--out", "{tmp}/w.png"),
        ("w.pdf", "the PDF cannot be read"),
        lambda tmp: (tmp / "w.pdf").write_bytes(b"%PDF-1.4 then nothing"),
    ),
    "demo-folder-cannot-be-created": Case(
        ("demo", "--workdir", "{tmp}/plain-file/demo", "--http-port", str(free_port())),
        ("cannot create the demo's folder", "--workdir"),
        _a_file_where_a_folder_goes,
    ),
    "demo-broker-url-not-mqtt": Case(
        ("demo", "--mqtt-url", "http://central:1883"), ("--mqtt-url", "mqtt://")
    ),
    "misspelt-key-in-station-toml": Case(
        _agent_args("--config", "{tmp}/station.toml"),
        ("unknown setting printr", "station.toml", "did you mean printer?"),
        lambda tmp: (tmp / "station.toml").write_text('station = "b1"\nprintr = "file:///x"\n'),
    ),
    "unknown-key-in-station-toml-edge-check": Case(
        ("edge", "check", "--config", "{tmp}/station.toml"),
        ("unknown setting colour", "known:", "printer"),
        lambda tmp: (tmp / "station.toml").write_text('station = "b1"\ncolour = "red"\n'),
    ),
    "a4-label-size": Case(
        _agent_args("--config", "{tmp}/station.toml"),
        ("invalid setting label_size", "unknown label size 'A4'"),
        lambda tmp: (tmp / "station.toml").write_text('station = "b1"\nlabel_size = "A4"\n'),
    ),
    "station-toml-not-toml": Case(
        _agent_args("--config", "{tmp}/station.toml"),
        ("station.toml is not valid TOML",),
        lambda tmp: (tmp / "station.toml").write_bytes(b'station = "b1\nprinter = [\xff'),
    ),
    "confirm-neither-auto-nor-scan": Case(
        _agent_args("--config", "{tmp}/station.toml"),
        ("invalid setting confirm", "'auto' or 'scan'"),
        lambda tmp: (tmp / "station.toml").write_text('station = "b1"\nconfirm = "maybe"\n'),
    ),
    "qc-rate-above-one": Case(
        _agent_args("--config", "{tmp}/station.toml"),
        ("invalid setting qc_rate", "1"),
        lambda tmp: (tmp / "station.toml").write_text('station = "b1"\nqc_rate = 5\n'),
    ),
    "ql-on-62mm-with-a-100x180-label": Case(
        _agent_args(
            "--data-dir",
            "{tmp}",
            "--printer",
            "ql+tcp://127.0.0.1:9?label=62",
            "--config",
            "{tmp}/station.toml",
        ),
        ("label_size 100x180 cannot be printed", "label=62", 'label_size = "62"'),
        lambda tmp: (tmp / "station.toml").write_text('label_size = "100x180"\n'),
    ),
    "ql-at-300-dpi-told-203": Case(
        _agent_args(
            "--data-dir",
            "{tmp}",
            "--printer",
            "ql+tcp://127.0.0.1:9?label=62",
            "--config",
            "{tmp}/station.toml",
        ),
        ("label_dpi 203 is not the printer's resolution (300 dpi)", "68%"),
        lambda tmp: (tmp / "station.toml").write_text("label_dpi = 203\n"),
    ),
    "zpl-told-300-dpi": Case(
        _agent_args(
            "--data-dir",
            "{tmp}",
            "--printer",
            "zpl+tcp://127.0.0.1:9",
            "--config",
            "{tmp}/station.toml",
        ),
        ("label_dpi 300 is not the printer's resolution (203 dpi)",),
        lambda tmp: (tmp / "station.toml").write_text("label_dpi = 300\n"),
    ),
    "edge-events-without-a-store": Case(
        ("edge", "events", "--station", "b1", "--data-dir", "{tmp}"),
        ("no station store at", "b1.sqlite"),
    ),
    "edge-orders-import-bad-file": Case(
        ("edge", "orders", "import", "{tmp}/o.json", "--station", "b1", "--data-dir", "{tmp}"),
        ("o.json: record 1 (X1): lines[0].qty: must be a whole number",),
        lambda tmp: (tmp / "o.json").write_text(
            '[{"order_no": "X1", "lines": [{"sku": "A", "qty": "many"}]}]'
        ),
    ),
    "edge-orders-import-missing-file": Case(
        ("edge", "orders", "import", "{tmp}/none.csv", "--station", "b1", "--data-dir", "{tmp}"),
        ("none.csv: no such file",),
    ),
    "label-commands-to-a-txt": Case(
        ("label", "commands", "--out", "{tmp}/sheet.txt"), ("must end in .pdf or .png",)
    ),
    "central-import-database-error": Case(
        ("central", "import-orders", str(EXAMPLE), *CENTRAL_DB),
        ("nothing imported from", "order.json: database error: no such column: orders."),
        _central_table_replaced("orders"),
    ),
    "central-user-list-database-error": Case(
        ("central", "user", "list", *CENTRAL_DB),
        ("database error: no such column: users.",),
        _central_table_replaced("users"),
    ),
    "central-report-database-error": Case(
        ("central", "report", "weekly", "--week", "2026-W48", *CENTRAL_DB),
        ("database error: no such column: shipments.",),
        _central_table_replaced("shipments"),
    ),
    "central-equipment-note-database-error": Case(
        (
            "central",
            "equipment",
            "note",
            "bench-01",
            "--device",
            "printer",
            "--text",
            "t",
            "--by",
            "amy",
            "--device-id",
            "X",
            *CENTRAL_DB,
        ),
        ("nothing recorded: database error: no such column: equipment_notes.",),
        _central_table_replaced("equipment_notes"),
    ),
    "broker-port-out-of-range": Case(
        _agent_args("--data-dir", "{tmp}", "--mqtt-url", "mqtt://127.0.0.1:99999"),
        ("port 99999 is out of range",),
    ),
}


@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("packline: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("name", CASES)
def test_mistake_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    if case.setup is not None:
        case.setup(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    # Never the default screen port: a mistake must be found whatever else runs here.
    kiosk = {"PACKLINE_KIOSK_LISTEN": f"127.0.0.1:{free_port()}"}
    line = _one_line(run_packline(*args, timeout=60, env=kiosk))
    for word in case.words:
        assert word in line, line


@pytest.mark.parametrize("kind", ["ql", "zpl"])
def test_fake_printer_on_a_port_in_use(kind: str, port_in_use: int) -> None:
    line = _one_line(run_packline("printer", "fake", kind, "--port", str(port_in_use)))
    assert f"cannot listen on 127.0.0.1:{port_in_use} for print jobs" in line
    assert "choose another port, or 0 for any free one" in line


def test_demo_on_a_status_page_port_in_use(port_in_use: int, tmp_path: Path) -> None:
    # Refused before the demo starts its broker or imports anything.
    line = _one_line(run_packline("demo", "--http-port", str(port_in_use), "--workdir", tmp_path))
    assert f"127.0.0.1:{port_in_use}" in line and "choose another --http-port" in line
    assert list(tmp_path.iterdir()) == []


def test_edge_run_on_a_kiosk_port_in_use(port_in_use: int, tmp_path: Path) -> None:
    # A second agent for the same bench stops before it opens the scanner or the store.
    args = _agent_args("--data-dir", str(tmp_path / "data"))
    env = {"PACKLINE_KIOSK_LISTEN": f"127.0.0.1:{port_in_use}"}
    line = _one_line(run_packline(*(a.replace("{tmp}", str(tmp_path)) for a in args), env=env))
    assert f"cannot serve the packer's screen on http://127.0.0.1:{port_in_use}/" in line
    assert "the port is in use" in line and "set kiosk_listen" in line
    assert not (tmp_path / "data").exists()


def test_fake_printer_control_port_in_use(port_in_use: int) -> None:
    args = ("printer", "fake", "zpl", "--port", "0", "--control-port", str(port_in_use))
    assert "for control requests" in _one_line(run_packline(*args))


def test_a_damaged_store_is_left_as_it_was(tmp_path: Path) -> None:
    # The message says to keep the file: nothing may have rewritten or removed it.
    _station_store_is_garbage(tmp_path)
    store = tmp_path / "data" / "b1.sqlite"
    before = store.read_bytes()
    _one_line(run_packline("edge", "status", "--config", tmp_path / "station.toml"))
    assert store.read_bytes() == before
    assert sorted(p.name for p in store.parent.iterdir()) == ["b1.sqlite"]


def test_printer_test_and_status_share_the_not_ready_exit_code(tmp_path: Path) -> None:
    from drivers.fakes.zpl import FakeZplPrinter

    fake = FakeZplPrinter(port=0)
    try:
        fake.set(paper_out=True)
        status = run_packline("printer", "status", fake.url)
        test = run_packline("printer", "test", fake.url)
    finally:
        fake.stop()
    assert status.returncode == test.returncode == 1, (status.stdout, test.stdout)
    assert "out of labels" in status.stdout
    assert test.stdout == "not printed: Printer out of labels — load a new roll\n"
    assert not fake.formats  # nothing printed while out of paper
    gone = f"zpl+tcp://127.0.0.1:{free_port()}?timeout=0.5"  # offline: also not ready
    assert run_packline("printer", "status", gone).returncode == 1
    assert run_packline("printer", "test", gone).returncode == 1


def test_a_multi_page_pdf_to_png_names_every_file(tmp_path: Path) -> None:
    pages = [Image.new("L", (400, 600), 255) for _ in range(3)]
    pdf = tmp_path / "carrier.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:])
    out = tmp_path / "waybill.png"
    done = run_packline("label", "render", "--document", pdf, "--out", out)
    assert done.returncode == 0, done.stderr
    written = [tmp_path / name for name in ("waybill.png", "waybill-2.png", "waybill-3.png")]
    assert done.stdout.splitlines() == [f"wrote {path}" for path in written]
    assert all(path.exists() for path in written)
