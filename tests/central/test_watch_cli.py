"""The watch's commands as a person runs them: ``central tick``, ``central exceptions``,
``alerts watch`` — the real console script, a real broker, a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from central.db import open_db
from central.watch.alerts import recent_alerts, unpublished_count
from packline.devbroker import MosquittoBroker, free_port
from tests.support.cli import PACKLINE, REPO, run_packline
from tests.support.watch import PAID, AlertListener, H, make_order, put_orders

pytestmark = pytest.mark.mqtt


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = open_db(url)
    put_orders(engine, make_order("PDD-1"), make_order("PDD-2", status="held",
               hold_reason="buyer moved"))  # fmt: skip
    engine.dispose()
    return url


def test_tick_prints_and_publishes_what_fires_once(db: str, broker: MosquittoBroker) -> None:
    site = f"cli-{uuid.uuid4().hex[:6]}"
    listener = AlertListener(url=broker.url, site=site)
    try:
        args = ("central", "tick", "--db-url", db, "--mqtt-url", broker.url, "--site", site)
        warn = (PAID + 18 * H).isoformat()
        done = run_packline(*args, "--now", warn)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 2 and all(" warning " in line for line in lines)
        assert "PDD-1 must be packed by 2026-03-03 00:00 UTC, in 6 h" in lines[0]
        assert "order is on hold: buyer moved" in lines[1]
        again = run_packline(*args, "--now", warn)  # the same instant: nothing more
        assert (again.returncode, again.stdout) == (0, "")
        got = listener.wait_for(2)
        assert [a["kind"] for a in got] == ["warning", "warning"]
        assert {a["order_no"] for a in got} == {"PDD-1", "PDD-2"}
        assert listener.topics[0] == f"packline/v1/{site}/alerts/warehouse/general"
        fields = {"alert_id", "dedup_key", "kind", "level", "dept", "severity", "order_no",
                  "exception_id", "due_at", "at", "message"}  # fmt: skip
        assert fields <= set(got[0]) and got[0]["due_at"] == "2026-03-03T00:00:00+00:00"
        engine = open_db(db)
        try:
            assert recent_alerts(engine) == [  # two alerts in all, both sent
                {**a, "published_at": recent_alerts(engine)[i]["published_at"]}
                for i, a in enumerate(reversed(got))
            ]
        finally:
            engine.dispose()
    finally:
        listener.close()


def test_tick_mistakes_are_one_line_and_nothing_is_lost(db: str, broker: MosquittoBroker) -> None:
    site = f"cli-{uuid.uuid4().hex[:6]}"
    done = run_packline("central", "tick", "--now", "tomorrow", "--db-url", db,
                        "--mqtt-url", broker.url)  # fmt: skip
    one_line_error(done, "--now must be an ISO 8601 time with its zone", "'tomorrow'")
    done = run_packline("central", "tick", "--now", "2026-03-03T00:00:00", "--db-url", db,
                        "--mqtt-url", broker.url)  # fmt: skip
    one_line_error(done, "with its zone")
    gone = f"mqtt://127.0.0.1:{free_port()}"
    breach = (PAID + 25 * H).isoformat()
    done = run_packline("central", "tick", "--now", breach, "--db-url", db, "--mqtt-url", gone,
                        "--site", site)  # fmt: skip
    one_line_error(done, "cannot reach the MQTT broker", "2 alerts wait in the outbox")
    assert len(done.stdout.splitlines()) == 2  # fired and kept, though not sent yet
    assert all(" opened " in line for line in done.stdout.splitlines())
    engine = open_db(db)
    try:
        assert unpublished_count(engine) == 2
        listener = AlertListener(url=broker.url, site=site)
        try:
            # The next tick (a moment later, nothing new due) sends what waited.
            done = run_packline("central", "tick", "--now", breach, "--db-url", db,
                                "--mqtt-url", broker.url, "--site", site)  # fmt: skip
            assert (done.returncode, done.stdout) == (0, "")
            assert [a["kind"] for a in listener.wait_for(2)] == ["opened", "opened"]
        finally:
            listener.close()
        assert unpublished_count(engine) == 0
    finally:
        engine.dispose()


def test_the_exceptions_commands(db: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_packline("central", "exceptions", *args, "--db-url", db)

    done = cli("open", "--type", "damaged", "--order", "PDD-1", "--description",
               "carton crushed in the lift", "--by", "li.wei")  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "exception #1 opened\n"), done.stderr
    listed = json.loads(cli("list", "--json").stdout)
    assert [{k: x[k] for k in ("id", "type", "order_no", "state", "severity", "dept", "level")}
            for x in listed] == [{"id": 1, "type": "damaged", "order_no": "PDD-1",
                                  "state": "open", "severity": "general",
                                  "dept": "warehouse", "level": 1}]  # fmt: skip
    assert listed[0]["opened_at"].endswith("+00:00")
    assert cli("ack", "1", "--by", "li.wei").returncode == 0
    one_line_error(cli("ack", "1", "--by", "li.wei"), "acknowledged already by li.wei")
    assert cli("plan", "1", "--text", "repack from stock", "--by", "li.wei").returncode == 0
    one_line_error(cli("resolve", "1", "--cause", "lift door", "--by", "li.wei"),
                   "needs cause, action and outcome", "action, outcome missing")  # fmt: skip
    one_line_error(cli("close", "1", "--by", "li.wei"), "resolve it first")
    done = cli("resolve", "1", "--cause", "lift door", "--action", "repacked",
               "--outcome", "shipped next morning", "--by", "li.wei")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert cli("close", "1", "--by", "zhang.min").returncode == 0
    assert cli("list", "--open").stdout == ""
    shown = cli("show", "1").stdout
    for words in ("customer:        张* 138****5678", "outcome:         shipped next morning",
                  "acknowledged", "plan", "resolved", "closed       zhang.min"):  # fmt: skip
        assert words in shown, shown
    one_line_error(cli("show", "7"), "no exception #7")
    one_line_error(cli("ack", "7", "--by", "x"), "no exception #7")
    one_line_error(cli("open", "--type", "lost", "--description", "x", "--by", "li"),
                   "unknown exception type 'lost'")  # fmt: skip
    one_line_error(cli("open", "--type", "damaged", "--order", "NOPE", "--description", "x",
                       "--by", "li"), "no order 'NOPE'")  # fmt: skip


def test_alerts_watch_prints_alerts_live(db: str, broker: MosquittoBroker) -> None:
    site = f"cli-{uuid.uuid4().hex[:6]}"
    watcher = subprocess.Popen(
        [*PACKLINE, "alerts", "watch", "--mqtt-url", broker.url, "--site", site,
         "--severity", "general"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert watcher.stderr is not None and watcher.stdout is not None
        assert "watching packline/v1/" in watcher.stderr.readline()
        done = run_packline("central", "tick", "--now", (PAID + 18 * H).isoformat(),
                            "--db-url", db, "--mqtt-url", broker.url, "--site", site)  # fmt: skip
        assert done.returncode == 0
        first = watcher.stdout.readline()
        assert " warning " in first and "PDD-1 must be packed by" in first
        assert " warning " in watcher.stdout.readline()
    finally:
        watcher.terminate()
        assert watcher.wait(timeout=15) == 0  # Ctrl-C / SIGTERM is a clean end


def test_alerts_watch_mistakes(broker: MosquittoBroker) -> None:
    gone = f"mqtt://127.0.0.1:{free_port()}"
    one_line_error(run_packline("alerts", "watch", "--mqtt-url", gone),
                   "cannot reach the MQTT broker")  # fmt: skip
    one_line_error(run_packline("alerts", "watch", "--dept", "a/b", "--mqtt-url", broker.url),
                   "--dept must be one word")  # fmt: skip
    one_line_error(run_packline("alerts", "ack", "--by", "li", "--mqtt-url", broker.url),
                   "give either --dedup-key or --exception")  # fmt: skip
