"""``packline central report weekly|monthly`` through the installed console script."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from central.db import open_db
from tests.support.reports import EXPECTED, NOW, WEEK, week_of_packing

PACKLINE = Path(sys.executable).parent / "packline"


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PACKLINE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def db_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = open_db(url)
    try:
        week_of_packing(engine)
    finally:
        engine.dispose()
    return url


def test_weekly_json_csv_and_lines_give_the_same_numbers(db_file: str, tmp_path: Path) -> None:
    now = NOW.isoformat()
    as_json = _run("central", "report", "weekly", "--week", WEEK, "--json", "--now", now,
                   "--db-url", db_file)  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert {k: report["summary"][k] for k in EXPECTED} == EXPECTED
    assert report["period"] == WEEK and report["timezone"] == "Asia/Shanghai"

    out = tmp_path / "w48.csv"
    lines = _run("central", "report", "weekly", "--week", WEEK, "--csv", out, "--now", now,
                 "--db-url", db_file)  # fmt: skip
    assert lines.returncode == 0, lines.stderr
    text = lines.stdout
    assert "weekly report 2026-W48 (2026-11-23 to 2026-11-29, Asia/Shanghai)" in text
    assert "orders shipped      4 (5 parcels)" in text
    assert "on-time rate        75.0% (3 of 4 with a deadline)" in text
    assert "timeout rate        40.0% (2 of 5 orders due)" in text
    assert "mean time to ack    30 min; to resolve 2.0 h" in text
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert ["timeout_rate", "0.4"] in rows and ["Exceptions by type"] in rows
    assert ["shipping_delay", "2", "0", "1", "1"] in rows


def test_monthly_and_csv_to_stdout(db_file: str) -> None:
    done = _run("central", "report", "monthly", "--month", "2026-11", "--csv", "-",
                "--now", NOW.isoformat(), "--db-url", db_file)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(done.stdout.splitlines()))
    assert ["Week by week (days of the month only)"] in rows
    assert ["2026-W48", "4", "0.75", "0.4", "3", "1800.0", "7200.0"] in rows


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("weekly", "--week", "2026-48"), "a week is written YYYY-Www (e.g. 2026-W48)"),
        (("weekly", "--week", "2026-W60"), "2026 has no week 60"),
        (("monthly", "--month", "2026-13"), "a month is written YYYY-MM"),
        (("weekly", "--week", WEEK, "--now", "yesterday"), "--now must be an ISO 8601 time"),
        (("weekly", "--week", WEEK, "--csv", "/no/such/dir/r.csv"), "no folder /no/such/dir"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(db_file: str, args: tuple[str, ...], words: str) -> None:
    done = _run("central", "report", *args, "--db-url", db_file)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert words in done.stderr
    assert done.stdout == ""


def test_missing_week_is_a_usage_error(db_file: str) -> None:
    done = _run("central", "report", "weekly", "--db-url", db_file)
    assert done.returncode == 2 and "--week" in done.stderr and "Traceback" not in done.stderr
