# ruff: noqa: E402
"""The web page under load: p99 of the floor page and ``/api/stations`` against
``/healthz`` on the same server in the same run, and SSE fan-out to many clients.

A database (``--backend sqlite``, a file; or ``postgres``, a schema of its own on
127.0.0.1:5432) with ``--stations`` stations (500) reporting as real benches do
(uptime, packer, label stock, a backlog and its age on most, some faults, one in ten
offline) and ``--orders`` orders (100k), the web app served by a real uvicorn in this
process, requests with an admin's API token:

- latency: ``--requests`` GETs of each of ``/healthz`` (the baseline), ``/api/stations``
  and ``/`` (the floor), interleaved; p50 and p99 of each and the ratio of p99s (goal
  ≤ 3× the baseline). ``--status-rate N`` has N station statuses a second stored
  meanwhile (500 benches every 10 s: 50), so the floor keeps changing under the reads;
- fan-out: ``--clients`` (200) open ``/events`` streams; ``--updates`` shipments are
  stored one after another; for each, the time until every client got its
  ``changed`` (all delivered? lag p50/p99 from the commit).

Not a test.

    .venv/bin/python bench/web.py [--stations 500] [--orders 100000] [--requests 300]
                                  [--clients 200] [--updates 5] [--status-rate 0]
                                  [--backend sqlite|postgres]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide
# the ``web`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

import argparse
import asyncio
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn
from sqlalchemy.engine import Engine

from central.db import open_db, utcnow
from central.ingest import record_status, record_statuses, store_batch
from central.orders import import_orders
from central.settings import CentralSettings
from central.users import add_user, issue_token
from packline.samples import sample_orders
from packline.serve import listen_http
from sync.messages import Event, EventBatch, StationStatus, new_event_id
from sync.order import Order
from tests.support.central import postgres_schema
from web.app import create_app


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _shipment(station: str, seq: int) -> EventBatch:
    payload = {
        "order_no": f"PDD{seq:08d}", "tracking_no": f"SF{seq:010d}", "carrier": "SF",
        "service": "std", "parcel_no": 1, "parcel_count": 1, "operator": "op",
        "print_job_id": f"j{seq}", "print_verified": True,
    }  # fmt: skip
    now = time.time()
    event = Event(
        event_id=new_event_id(), station=station, seq=seq, type="shipment.shipped",
        at_wall=now, at_mono=time.monotonic(), boot_id="bench", payload=payload,
    )  # fmt: skip
    return EventBatch(station=station, events=[event])


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """The URL of a fresh database: a SQLite file, or a PostgreSQL schema of its own."""
    if backend == "postgres":
        with postgres_schema() as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="packline-bench-web-") as folder:
        yield f"sqlite:///{Path(folder) / 'central.db'}"


def _status(i: int, now: float) -> StationStatus:
    """Station ``i``'s status as a real bench sends it."""
    backlog = i % 7
    return StationStatus(
        station=f"bench-{i:03d}", online=i % 10 != 0, at_wall=now,
        started_at=now - 8 * 3600 - i, operator=f"packer-{i % 60}",
        order_in_progress=f"PDD{i:08d}" if i % 3 else None,
        printer="no media" if i % 50 == 7 else "ready", scanner="ready",
        labels_left=300 - i % 300, label_size="62", backlog=backlog,
        backlog_oldest_at=now - 40 * backlog if backlog else None,
        last_scan_at=now - i % 60, disk_free_bytes=8 * 10**9, orders_held=12,
    )  # fmt: skip


def _keep_reporting(
    engine: Engine, rate: float, stations: int, stop: threading.Event, site: str
) -> None:
    """``rate`` statuses a second, round the stations, stored in bursts of 0.2 s as
    central's status thread does."""
    i = 0
    while not stop.wait(0.2):
        burst = max(1, round(rate * 0.2))
        now = time.time()
        record_statuses(
            engine, [(_status((i + k) % stations, now), utcnow()) for k in range(burst)], site=site
        )
        i += burst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=500)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument("--status-rate", type=float, default=0.0)
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()
    with database(args.backend) as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    settings = CentralSettings(db_url=url, site="bench")
    engine = open_db(settings.db_url)
    started = time.perf_counter()
    for i in range(args.stations):
        record_status(engine, _status(i, time.time()), site="bench")
    for start in range(0, args.orders, 10_000):
        chunk = sample_orders(min(10_000, args.orders - start), seed=start)
        for n, o in enumerate(chunk):
            o["order_no"] = f"PDD{start + n:08d}"
        import_orders(
            engine, [Order.model_validate(o) for o in chunk], deadlines=settings.deadlines
        )
    add_user(engine, "bench", role="admin", password="bench-password")
    token = issue_token(engine, "bench")
    print(
        f"loaded {args.stations} stations and {args.orders} orders ({args.backend}) "
        f"in {time.perf_counter() - started:.1f} s"
    )

    app = create_app(engine=engine, settings=settings, version="bench", poll_interval=0.25)
    sock = listen_http("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    headers = {"Authorization": f"Bearer {token}"}

    paths = ["/healthz", "/api/stations", "/"]
    took: dict[str, list[float]] = {p: [] for p in paths}
    stop = threading.Event()
    reporter = threading.Thread(
        target=_keep_reporting,
        args=(engine, args.status_rate, args.stations, stop, "bench"),
        daemon=True,
    )
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for p in paths:
            client.get(p).raise_for_status()  # warm
        if args.status_rate > 0:
            reporter.start()
        for _ in range(args.requests):
            for p in paths:
                t0 = time.perf_counter()
                client.get(p).raise_for_status()
                took[p].append(time.perf_counter() - t0)
    stop.set()
    if reporter.is_alive():
        reporter.join()
    base_p99 = _pct(took["/healthz"], 0.99)
    during = f", {args.status_rate:g} statuses/s stored meanwhile" if args.status_rate else ""
    print(f"latency over {args.requests} requests each{during} (ms):")
    for p in paths:
        p50, p99 = _pct(took[p], 0.5) * 1000, _pct(took[p], 0.99) * 1000
        print(
            f"  {p:<14} p50 {p50:8.1f}  p99 {p99:8.1f}  p99/healthz {p99 / 1000 / base_p99:6.1f}x"
        )

    async def fan_out() -> tuple[int, list[float]]:
        got: list[list[float]] = [[] for _ in range(args.clients)]
        ready = asyncio.Event()
        hellos = 0

        async def listen(i: int, client: httpx.AsyncClient) -> None:
            nonlocal hellos
            async with client.stream("GET", "/events") as resp:
                async for line in resp.aiter_lines():
                    if line == "event: hello":
                        hellos += 1
                        if hellos == args.clients:
                            ready.set()
                    elif line == "event: changed":
                        got[i].append(time.perf_counter())

        limits = httpx.Limits(max_connections=args.clients + 10)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=None, limits=limits
        ) as client:
            tasks = [asyncio.create_task(listen(i, client)) for i in range(args.clients)]
            await asyncio.wait_for(ready.wait(), 120)
            lags: list[float] = []
            delivered = 0
            for u in range(args.updates):
                before = [len(g) for g in got]
                await asyncio.to_thread(store_batch, engine, _shipment("bench-001", u + 1))
                committed = time.perf_counter()
                deadline = committed + 30
                while time.perf_counter() < deadline:
                    if all(len(g) > b for g, b in zip(got, before, strict=True)):
                        break
                    await asyncio.sleep(0.01)
                for g, b in zip(got, before, strict=True):
                    if len(g) > b:
                        delivered += 1
                        lags.append(g[b] - committed)
                await asyncio.sleep(0.6)  # one poll apart, so each update is its own
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return delivered, lags

    delivered, lags = asyncio.run(fan_out())
    want = args.clients * args.updates
    print(
        f"SSE fan-out: {args.clients} clients × {args.updates} updates: "
        f"{delivered}/{want} delivered; lag p50 {_pct(lags, 0.5) * 1000:.0f} ms, "
        f"p99 {_pct(lags, 0.99) * 1000:.0f} ms (the stream polls every 0.25 s)"
    )
    server.should_exit = True
    engine.dispose()


if __name__ == "__main__":
    main()
