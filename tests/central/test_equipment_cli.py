"""``packline central equipment list|note`` through the installed console script."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from central.db import open_db
from central.ingest import record_status
from sync.messages import StationStatus

PACKLINE = Path(sys.executable).parent / "packline"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PACKLINE), *map(str, args)], capture_output=True, text=True, timeout=120,
        env=dict(os.environ), stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = open_db(url)
    status = StationStatus(
        station="bench-01", online=True, printer="ready", printer_model="QL-820NWB",
        printer_serial="tcp://10.0.0.5:9100", scanner="ready", scanner_device="/dev/ttyACM0",
        labels_left=12,
    )  # fmt: skip
    record_status(engine, status, site="wh1", received_at=dt.datetime.now(dt.UTC))
    engine.dispose()
    return url


def test_note_then_list(db_url: str) -> None:
    done = _run("central", "equipment", "note", "bench-01", "--device", "printer",
                "--text", "replaced the cutter", "--by", "admin.wu", "--kind", "repair",
                "--at", "2026-11-20T09:30:00+08:00", "--db-url", db_url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "entry #1 recorded: bench-01 printer tcp://10.0.0.5:9100: repair by admin.wu" in (
        done.stdout
    )
    lines = _run("central", "equipment", "list", "--db-url", db_url)
    assert lines.returncode == 0, lines.stderr
    assert "QL-820NWB" in lines.stdout and "labels 12/50 LOW" in lines.stdout
    listed = json.loads(_run("central", "equipment", "list", "--json", "--db-url", db_url).stdout)
    (printer,) = [d for d in listed if d["device"] == "printer"]
    assert printer["notes"][0]["at"] == "2026-11-20T01:30:00+00:00"
    assert printer["notes"][0]["text"] == "replaced the cutter"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("bench-09", "--device", "printer"), "no printer known at station 'bench-09'"),
        (("bench-01", "--device", "toaster"), "device must be printer or scanner"),
        (("bench-01", "--device", "printer", "--kind", "x"), "kind must be one of"),
        (("bench-01", "--device", "printer", "--at", "monday"), "--at must be an ISO 8601 time"),
    ],
)
def test_mistakes_are_one_line_exit_2(db_url: str, args: tuple[str, ...], words: str) -> None:
    done = _run("central", "equipment", "note", *args, "--text", "t", "--by", "me",
                "--db-url", db_url)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
