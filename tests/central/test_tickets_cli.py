"""``central tickets …`` and ``central import-tracking`` as a person runs them: the real
console script on a real SQLite file, mistakes as one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from central.db import open_db
from central.watch.exceptions import list_exceptions
from central.watch.tables import timers
from central.watch.tracking import FIRST
from tests.support.cli import run_packline
from tests.support.watch import make_order, put_orders


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = open_db(url)
    put_orders(engine, make_order("PDD-1"))
    engine.dispose()
    return url


def test_a_ticket_from_open_to_closed(db: str) -> None:
    opened = run_packline(
        "central", "tickets", "open", "--category", "complaint", "--order", "PDD-1",
        "--description", "box crushed", "--by", "cs.li", "--db-url", db,
    )  # fmt: skip
    assert (opened.returncode, opened.stdout) == (0, "ticket #1 opened\n"), opened.stderr
    listed = run_packline("central", "tickets", "list", "--open", "--json", "--db-url", db)
    (t,) = json.loads(listed.stdout)
    assert (t["id"], t["category"], t["state"]) == (1, "complaint", "open")
    assert t["dept"] == "customer_service"
    one_line_error(
        run_packline("central", "tickets", "close", "1", "--by", "cs.li", "--db-url", db),
        "customer's confirmation",
    )
    for step in (("respond", "1", "--text", "replacement sent"),
                 ("follow-up", "1", "--text", "delivered"),
                 ("close", "1", "--confirmation", "buyer confirmed by phone")):  # fmt: skip
        done = run_packline("central", "tickets", *step, "--by", "cs.li", "--db-url", db)
        assert done.returncode == 0, done.stderr
    shown = run_packline("central", "tickets", "show", "1", "--db-url", db)
    assert "confirmation:    buyer confirmed by phone" in shown.stdout
    assert [line.split()[1] for line in shown.stdout.split("history:\n")[1].splitlines()] == [
        "opened", "response", "follow_up", "closed",
    ]  # fmt: skip


def test_ticket_mistakes_are_one_line(db: str) -> None:
    base = ("--by", "x", "--db-url", db)
    for args, words in (
        (("open", "--category", "refund", "--description", "x", *base), "unknown ticket category"),
        (("open", "--category", "return", "--order", "NOPE", "--description", "x", *base),
         "no order 'NOPE'"),
        (("respond", "7", "--text", "x", *base), "no ticket #7"),
    ):  # fmt: skip
        one_line_error(run_packline("central", "tickets", *args), words)
    usage = run_packline("central", "tickets", "show", "seven", "--db-url", db)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert "Invalid value for 'ID'" in usage.stderr


def test_import_tracking_keeps_good_rows_and_names_the_bad(db: str, tmp_path: Path) -> None:
    path = tmp_path / "scans.csv"
    path.write_text(
        "tracking_no,at,status,location\n"
        "SF1,2026-03-02T10:00:00+08:00,picked up,Shenzhen\n"
        "SF1,2026-03-02T10:00:00+08:00,picked up,Shenzhen\n"
        "SF2,soon,in transit,\n"
    )
    done = run_packline("central", "import-tracking", str(path), "--db-url", db)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 carrier scans stored, 1 known already, 1 rows refused\n"
    assert "scans.csv line 4: at 'soon' is not an ISO 8601 time" in done.stderr
    for bad, words in (
        ("[1, 2", "is not valid JSON"),
        ("a,b\n1,2\n", "needs a header row"),
    ):
        broken = tmp_path / ("bad.json" if bad.startswith("[") else "bad.csv")
        broken.write_text(bad)
        one_line_error(run_packline("central", "import-tracking", str(broken), "--db-url", db),
                       words)  # fmt: skip
    one_line_error(
        run_packline("central", "import-tracking", str(tmp_path / "none.csv"), "--db-url", db),
        "cannot read",
    )
    engine = open_db(db)
    try:
        assert list_exceptions(engine) == []
        with engine.connect() as conn:
            assert conn.execute(timers.select().where(timers.c.kind == FIRST)).all() == []
    finally:
        engine.dispose()
