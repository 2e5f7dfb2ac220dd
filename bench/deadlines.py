"""One watch tick over many open orders, against a full scan of them, same process.

Fills a database with N open orders (each with its pack and ship deadline and their
two timers, none due), then times ``central.watch.tick`` with nothing due (the common
case: every 15 s) and with 100 deadlines due, and a full scan of every open deadline
(what a watch without the ``next_fire_at`` index would read each tick). Figures are
shares of ``tick_every`` (15 s); the goal is a tick with nothing due ≤ 1 % of it. Not a
test.

    .venv/bin/python bench/deadlines.py [--sizes 100000 1000000] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import open_db
from central.watch import WatchRules, tick
from central.watch.tables import deadlines, timers

TICK_EVERY = WatchRules().tick_every.total_seconds()
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PG = ("127.0.0.1", 5432)
# SQL text of the JSON columns: a small order body, no blocked reasons, no timer data.
BODY = """'{"order_no": "B' || i || '"}'"""
NO_REASONS, EMPTY = "'[]'", "'{}'"


def fill(engine: Engine, n: int) -> None:
    """N open orders paid over the last day: deadlines from 6 h to 2 days ahead of NOW,
    so nothing is due at NOW; generated in the database itself."""
    base = NOW - dt.timedelta(hours=17)
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if pg:
            series = f"SELECT g AS i FROM generate_series(0, {n - 1}) AS g"

            def at(seconds: str) -> str:
                return f"(TIMESTAMPTZ '{base.isoformat()}' + ({seconds}) * INTERVAL '1 second')"

        else:
            series = (
                f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n - 1})"
                " SELECT i FROM s"
            )

            def at(seconds: str) -> str:
                stamp = base.replace(tzinfo=None).isoformat(sep=" ")
                return f"strftime('%Y-%m-%d %H:%M:%f', '{stamp}', '+' || ({seconds}) || ' seconds')"

        paid = "mod(i, 61200)" if pg else "(i % 61200)"  # spread over 17 h

        def js(text: str) -> str:
            return f"CAST({text} AS JSON)" if pg else text

        body = js(BODY)

        conn.exec_driver_sql(
            "INSERT INTO orders (order_no, order_seq, revision, shop, order_type, status, body,"
            " blocked, blocked_reasons, created_at, updated_at, pack_by, ship_by)"
            f" SELECT 'B' || i, i + 1, 1, 'pdd-main', 'normal', 'ready',"
            f" {body}, false, {js(NO_REASONS)}, {at('0')}, {at('0')},"
            f" {at(paid + ' + 86400')}, {at(paid + ' + 172800')} FROM ({series}) AS q"
        )
        for which, within in (("pack", 86400), ("ship", 172800)):
            due = at(f"{paid} + {within}")
            warn = at(f"{paid} + {within - 21600}")
            conn.exec_driver_sql(
                "INSERT INTO deadlines (order_no, which, due_at, warn_at, state, updated_at)"
                f" SELECT 'B' || i, '{which}', {due}, {warn}, 'pending', {at('0')}"
                f" FROM ({series}) AS q"
            )
            conn.exec_driver_sql(
                "INSERT INTO timers (kind, subject, due_at, next_fire_at, rank, fired, data)"
                f" SELECT 'deadline', 'B' || i || ':{which}', {warn}, {warn}, 10, 0, {js(EMPTY)}"
                f" FROM ({series}) AS q"
            )
        conn.exec_driver_sql(f"UPDATE sequences SET value = {n} WHERE name = 'order_seq'")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def full_scan(engine: Engine, now: dt.datetime) -> int:
    """What a watch without the index does each tick: read every open deadline and
    judge it (a warning or breach due?)."""
    due = 0
    with engine.connect() as conn:
        for _order, _which, warn_at, due_at in conn.execute(
            sa.select(
                deadlines.c.order_no, deadlines.c.which, deadlines.c.warn_at, deadlines.c.due_at
            ).where(deadlines.c.state.in_(("pending", "warned")))
        ):
            if warn_at <= now or due_at <= now:
                due += 1
    return due


def timed(fn: Callable[[], object], *, rounds: int) -> float:
    """Median seconds of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'central.db'}"
        return
    name = f"bench_{uuid.uuid4().hex[:8]}"
    dsn = f"host={PG[0]} port={PG[1]} user=postgres dbname=test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{PG[0]}:{PG[1]}/test?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def run(backend: str, n: int) -> None:
    with database(backend) as url:
        engine = open_db(url)
        try:
            t0 = time.perf_counter()
            fill(engine, n)
            filled = time.perf_counter() - t0
            quiet = timed(lambda: tick(engine, now=NOW, site="bench"), rounds=20)
            scan = timed(lambda: full_scan(engine, NOW), rounds=3)
            # 100 pack warnings due: the work of a busy tick.
            soon = NOW - dt.timedelta(seconds=1)
            names = [f"B{i}" for i in range(100)]
            with engine.begin() as conn:
                conn.execute(
                    deadlines.update()
                    .where(deadlines.c.order_no.in_(names), deadlines.c.which == "pack")
                    .values(warn_at=soon)
                )
                conn.execute(
                    timers.update()
                    .where(timers.c.subject.in_([f"{n}:pack" for n in names]))
                    .values(next_fire_at=soon)
                )
            t0 = time.perf_counter()
            busy = tick(engine, now=NOW, site="bench")
            busy_s = time.perf_counter() - t0
        finally:
            engine.dispose()
    share = 100 / TICK_EVERY
    print(
        f"{backend:<9} {n:>9,} orders (filled in {filled:5.1f} s): "
        f"tick, nothing due {quiet * 1000:8.2f} ms = {quiet * share:6.3f} % of tick_every; "
        f"full scan {scan * 1000:9.1f} ms = {scan * share:6.2f} %; "
        f"scan / tick = {scan / quiet:8.0f}x; "
        f"tick with {len(busy.alerts)} due {busy_s * 1000:7.1f} ms = {busy_s * share:5.2f} %"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"],
                        choices=["sqlite", "postgres"])  # fmt: skip
    args = parser.parse_args()
    print(f"tick_every = {TICK_EVERY:g} s; goal: a tick with nothing due <= 1 % of it")
    for backend in args.backends:
        if backend == "postgres":
            try:
                socket.create_connection(PG, timeout=1).close()
            except OSError:
                print("postgres  skipped: nothing listens on 127.0.0.1:5432")
                continue
        for n in args.sizes:
            run(backend, n)


if __name__ == "__main__":
    main()
