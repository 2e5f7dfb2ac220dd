"""The watch across real processes: two ticking at once on PostgreSQL, ``serve`` plus a
manual tick, a publisher killed with SIGKILL, and one order end to end through a real
Mosquitto (warning → opened → repeat → escalated → resolved, nothing after the ack)."""

from __future__ import annotations

import collections
import datetime as dt
import json
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, open_db, utcnow
from central.watch.tables import alerts, exceptions
from packline.devbroker import MosquittoBroker, free_port, stop_process
from sync.messages import Ack
from tests.support.central import FakeStation, event, postgres_reachable, postgres_schema
from tests.support.cli import PACKLINE, REPO, run_packline
from tests.support.waiting import wait_for
from tests.support.watch import AlertListener, H, M, make_order, put_orders

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def tick(now: dt.datetime, *, db: str, broker: str, site: str) -> subprocess.Popen[str]:
    """``packline central tick --now NOW`` as a process of its own."""
    return subprocess.Popen(
        [*PACKLINE, "central", "tick", "--now", now.isoformat(), "--db-url", db,
         "--mqtt-url", broker, "--site", site],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> list[str]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out.splitlines()


class Serve:
    """``packline central serve`` with a config file, on free ports."""

    def __init__(self, *, tmp: Path, db: str, broker: str, site: str, config: str) -> None:
        self.port = free_port()
        self.log = tmp / f"serve-{self.port}.log"
        (tmp / "central.toml").write_text(config)
        self.args = [*PACKLINE, "central", "serve", "--config", str(tmp / "central.toml"),
                     "--db-url", db, "--mqtt-url", broker, "--site", site,
                     "--http-port", str(self.port)]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Serve:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log, cwd=REPO)
        wait_for(self._healthy, what="central serve", timeout=90)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(self.log.read_text()[-3000:])
        try:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, timeout=20)  # type: ignore[arg-type]


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with postgres_schema() as url:
        yield url


def outbox(engine: Engine) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(alerts).order_by(alerts.c.id)).mappings())


def no_alert_twice(rows: list[sa.RowMapping]) -> collections.Counter[str]:
    """Each step of each alarm is in the outbox once; the kinds counted. (A timer fired
    twice would write the same alert twice: same key, kind, level, instant and words.)"""
    steps = collections.Counter(
        (r["dedup_key"], r["kind"], r["level"], r["at"], r["message"]) for r in rows
    )
    twice = [step for step, n in steps.items() if n > 1]
    assert not twice, twice[:5]
    return collections.Counter(r["kind"] for r in rows)


@pytest.mark.postgres
def test_two_processes_ticking_at_once_fire_each_alert_once(
    pg_url: str, broker: MosquittoBroker
) -> None:
    site = f"two-{uuid.uuid4().hex[:6]}"
    start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    engine = open_db(pg_url)
    listener = AlertListener(url=broker.url, site=site)
    try:
        late = [make_order(f"L{i}", paid_at=start - 24 * H) for i in range(300)]
        soon = [make_order(f"S{i}", paid_at=start - 18 * H) for i in range(300)]
        put_orders(engine, *late, *soon)
        printed: list[str] = []
        for now in (start, start + 15 * M, start + H):
            pair = [tick(now, db=pg_url, broker=broker.url, site=site) for _ in range(2)]
            outputs = [finish(p) for p in pair]
            printed += outputs[0] + outputs[1]
        kinds = no_alert_twice(outbox(engine))
        # 300 warnings and 300 breaches; 300 repeats at +15 min; at +1 h one repeat
        # (the one due at +30 min) and one escalation each.
        assert kinds == {"warning": 300, "opened": 300, "repeat": 600, "escalated": 300}
        assert len(printed) == 1500  # each alert printed by the one process that fired it
        got = listener.wait_for(1500, timeout=120)
        ids = [a["alert_id"] for a in got]
        assert len(ids) == len(set(ids)) == 1500
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(exceptions)).scalar() == 300
            assert (
                conn.execute(
                    sa.select(sa.func.count()).where(alerts.c.published_at.is_(None))
                ).scalar()
                == 0
            )
    finally:
        listener.close()
        engine.dispose()


@pytest.mark.postgres
def test_serve_and_a_manual_tick_together_fire_each_alert_once(
    pg_url: str, broker: MosquittoBroker, tmp_path: Path
) -> None:
    site = f"both-{uuid.uuid4().hex[:6]}"
    engine = open_db(pg_url)
    listener = AlertListener(url=broker.url, site=site)
    try:
        # Paid 30 h ago by the real clock: every pack deadline is past, no ship warning yet.
        put_orders(engine, *(make_order(f"O{i}", paid_at=utcnow() - 30 * H) for i in range(200)))
        with Serve(tmp=tmp_path, db=pg_url, broker=broker.url, site=site,
                   config="tick_every = 1\n"):  # fmt: skip
            manual = [run_packline("central", "tick", "--db-url", pg_url, "--mqtt-url",
                                   broker.url, "--site", site) for _ in range(2)]  # fmt: skip
            assert all(m.returncode == 0 for m in manual), [m.stderr for m in manual]
            got = listener.wait_for(200, timeout=120)
        assert sorted(a["order_no"] for a in got) == sorted(f"O{i}" for i in range(200))
        assert no_alert_twice(outbox(engine)) == {"opened": 200}
        assert len({a["alert_id"] for a in got}) == len(got) == 200
    finally:
        listener.close()
        engine.dispose()


def test_a_publisher_killed_at_any_point_loses_no_alert_and_doubles_none(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    site = f"kill-{uuid.uuid4().hex[:6]}"
    db = f"sqlite:///{tmp_path / 'central.db'}"
    engine = open_db(db)
    listener = AlertListener(url=broker.url, site=site)
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    total = 400
    try:
        put_orders(engine, *(make_order(f"K{i}", paid_at=now - 25 * H) for i in range(total)))

        def state() -> tuple[int, int, int]:
            with engine.connect().execution_options(**READ_ONLY) as conn:
                written, claimed, sent = conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.count(alerts.c.claimed_until),
                        sa.func.count(alerts.c.published_at),
                    )
                ).one()
            return int(written), int(claimed), int(sent)

        # Kill it while it writes, then while it sends (leased, not yet marked sent).
        kills = [
            lambda s: 0 < s[0] < total,
            lambda s: s[1] > s[2],
        ]
        for moment in kills:
            proc = tick(now, db=db, broker=broker.url, site=site)
            seen = wait_for(lambda m=moment, p=proc: m(state()) or p.poll() is not None,  # type: ignore[misc]
                            what="the moment to kill", timeout=120, interval=0.005)  # fmt: skip
            assert seen and proc.poll() is None, "the tick ended before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        # Run again until everything is out: what the dead ones leased goes again after
        # the lease.
        deadline = time.monotonic() + 180
        while state()[2] < total:
            assert time.monotonic() < deadline, state()
            finish(tick(now, db=db, broker=broker.url, site=site))
            time.sleep(1)
        rows = outbox(engine)
        assert no_alert_twice(rows) == {"opened": total}
        got = listener.wait_for(total)
        by_id: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for a in got:
            by_id[a["alert_id"]].append(a)
        assert set(by_id) == {r["alert_id"] for r in rows}  # none lost
        for copies in by_id.values():  # a repeat after a crash is the same alert
            assert all(c == copies[0] for c in copies)
    finally:
        listener.close()
        engine.dispose()


def test_one_order_end_to_end_through_a_real_broker(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    site = f"e2e-{uuid.uuid4().hex[:6]}"
    db = f"sqlite:///{tmp_path / 'central.db'}"
    paid = utcnow().replace(microsecond=0) - 17 * H
    orders = tmp_path / "orders.json"
    order = make_order("PDD-9", paid_at=paid).model_dump(mode="json", exclude={"revision"})
    orders.write_text(json.dumps([order]))
    assert run_packline("central", "import-orders", orders, "--db-url", db).returncode == 0
    listener = AlertListener(url=broker.url, site=site)
    station = FakeStation(url=broker.url, site=site, name="bench-02")
    engine = open_db(db)

    def at(hours: dt.timedelta) -> None:
        finish(tick(paid + hours, db=db, broker=broker.url, site=site))

    try:
        # Serve ingests, publishes and takes acks; its own ticking is off (tick_every 0):
        # the ticks come from `central tick --now` processes walking through the day.
        with Serve(tmp=tmp_path, db=db, broker=broker.url, site=site, config="tick_every = 0\n"):
            station.status(online=True)  # the bench is up, as far as central knows
            at(18 * H)
            at(24 * H)
            at(24 * H + 15 * M)
            at(25 * H)
            listener.wait_for(5)
            # The bench was offline; it shipped at +23 h by its clock, in time.
            shipped = event("bench-02", 1, order_no="PDD-9", tracking_no="SF9")
            station.send(shipped.model_copy(update={"at_wall": (paid + 23 * H).timestamp()}))
            station.next("ack", Ack)
            at(25 * H + 10 * M)
            listener.wait_for(6)
            done = run_packline("alerts", "ack", "--exception", "1", "--by", "sup-li",
                                "--mqtt-url", broker.url, "--site", site)  # fmt: skip
            assert done.returncode == 0, done.stderr

            def acked() -> bool:
                with engine.connect() as conn:
                    who = conn.execute(sa.select(exceptions.c.acknowledged_by)).scalar()
                return who == "sup-li"

            wait_for(acked, what="serve to take the acknowledgement over MQTT")
            for later in (26 * H, 30 * H, 50 * H):
                at(later)
        kinds = [a["kind"] for a in listener.alerts()]
        assert kinds == ["warning", "opened", "repeat", "repeat", "escalated", "resolved"]
        assert {a["order_no"] for a in listener.alerts()} == {"PDD-9"}
        resolved = listener.alerts()[-1]
        assert "false alarm" in resolved["message"] and "bench-02" in resolved["message"]
        with engine.connect() as conn:
            state = conn.execute(sa.select(exceptions.c.state)).scalar()
        assert state == "resolved"  # the acknowledgement did not undo it
    finally:
        station.close()
        listener.close()
        engine.dispose()
