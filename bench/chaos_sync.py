"""Kill -9 the broker, central workers and station agents 100+ times while events flow;
count what was lost and what was counted twice.

Everything is real and on free ports: a private Mosquitto (saving its state every
second), two ``packline central serve`` workers on one PostgreSQL database (one with
the page, one ``--no-web``; with ``--sqlite``, or without PostgreSQL, one central on
a SQLite file), and three ``packline edge run`` agents whose stores a feeder keeps
recording events in, as benches at work would. Each round SIGKILLs one process at
random — the broker (restarted with its saved state, or every fifth time without
it), a worker, or an agent — and starts it again. After the rounds everything runs
undisturbed until every outbox is empty; then the stations' stores are compared with
central's database (tests/support/fleet.py): events lost, stored twice, shipments
counted twice, projected out of seq order, left in an outbox.
``tests/test_faults.py`` holds the short versions. Not a test: it prints the counts
and exits 1 on any problem.

    .venv/bin/python bench/chaos_sync.py [--kills 120] [--seed 1] [--sqlite]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from central.db import open_db
from central.watch.reactor import waiting
from tests.support.central import postgres_reachable, postgres_schema
from tests.support.fleet import TunedBroker, Worker, check_delivered, seed
from tests.support.processes import Station
from tests.support.waiting import wait_for

SITE = "chaos"


class Feeder(threading.Thread):
    """Records events at each station, a few at a time, until stopped."""

    def __init__(self, stations: list[Station], *, rng: random.Random) -> None:
        super().__init__(name="feeder", daemon=True)
        self.stations = stations
        self.rng = rng
        self.halt = threading.Event()
        self.recorded = 0

    def run(self) -> None:
        while not self.halt.wait(0.2):
            station = self.rng.choice(self.stations)
            kind = "shipment" if self.rng.random() < 0.5 else "login"
            count = self.rng.randint(1, 12)
            seed(station.db, station=station.name, count=count, kind=kind)
            self.recorded += count


@contextlib.contextmanager
def database(sqlite: bool, workdir: Path) -> Iterator[str]:
    if sqlite:
        yield f"sqlite:///{workdir / 'central.db'}"
        return
    with postgres_schema() as url:
        yield url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sqlite", action="store_true", help="one central on SQLite")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sqlite = args.sqlite or not postgres_reachable()
    started = time.monotonic()
    kills: collections.Counter[str] = collections.Counter()
    emptied = 0
    with tempfile.TemporaryDirectory(prefix="packline-chaos-sync-") as tmp:
        workdir = Path(tmp)
        broker = TunedBroker(workdir=workdir / "mosquitto", settings={"autosave_interval": "1"})
        broker.start()
        with database(sqlite, workdir) as db_url:
            names = ["w1"] if sqlite else ["w1", "w2"]
            workers = [
                Worker(
                    workdir=workdir,
                    name=name,
                    db_url=db_url,
                    mqtt_url=broker.url,
                    site=SITE,
                    web=(name == "w1"),
                )
                for name in names
            ]
            for w in workers:
                w.start()
            stations = [
                Station(workdir=workdir, name=f"s{i}", mqtt_url=broker.url, site=SITE)
                for i in (1, 2, 3)
            ]
            for s in stations:
                seed(s.db, station=s.name, count=200)
                s.start()
            feeder = Feeder(stations, rng=rng)
            feeder.start()
            try:
                while sum(kills.values()) < args.kills:
                    time.sleep(rng.uniform(0.3, 2.0))
                    victim = rng.choice(["broker", "worker", "worker", "agent", "agent"])
                    if victim == "broker":
                        broker.kill()
                        if kills["broker"] % 5 == 4:
                            broker.forget()
                            emptied += 1
                        time.sleep(rng.uniform(0.0, 2.0))
                        broker.start()
                        kills["broker"] += 1
                    elif victim == "worker":
                        worker = rng.choice(workers)
                        worker.kill()
                        time.sleep(rng.uniform(0.0, 1.0))
                        worker.start(wait=False)
                        kills[f"central worker {worker.name}"] += 1
                    else:
                        station = rng.choice(stations)
                        station.kill()
                        time.sleep(rng.uniform(0.0, 1.0))
                        station.start()
                        kills[f"station agent {station.name}"] += 1
                    done = sum(kills.values())
                    if done % 20 == 0:
                        print(f"  {done} kills ...", flush=True)
                feeder.halt.set()
                feeder.join()
                for w in workers:
                    w.ready(timeout=120)
                wait_for(
                    lambda: all(s.backlog() == 0 for s in stations),
                    what="every outbox to drain",
                    timeout=900,
                )
                result = check_delivered(db_url, [(s.name, s.db) for s in stations])
                # The workers' reactors react to every stored event once it is acked.
                engine = open_db(db_url)
                try:
                    wait_for(
                        lambda: not waiting(engine),
                        what="the watch to react to every stored event",
                        timeout=300,
                    )
                    unreacted = sum(waiting(engine).values())
                finally:
                    engine.dispose()
            except Exception:
                for log in sorted(workdir.rglob("*.log")):
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    print(f"--- {log.relative_to(workdir)} (last lines)", *tail, sep="\n")
                raise
            finally:
                feeder.halt.set()
                for s in stations:
                    s.close()
                for w in workers:
                    w.stop()
                broker.kill()
    seconds = time.monotonic() - started
    setup = "SQLite, one central" if sqlite else "PostgreSQL, two workers"
    print(f"set-up:                                {setup}, 3 station agents, Mosquitto")
    print(f"kills (SIGKILL):                       {sum(kills.values())}")
    for what, count in sorted(kills.items()):
        print(f"  {what + ':':<37}{count}")
    print(f"  broker restarted without its state:  {emptied}")
    print(f"events recorded at the stations:       {result.recorded}")
    print(f"events at central (distinct):          {result.stored}")
    print(f"lost (recorded, not at central):       {result.missing}")
    print(f"duplicated (stored twice):             {result.duplicated}")
    print(f"shipments counted twice:               {result.shipments_twice}")
    print(f"shipments projected out of seq order:  {result.out_of_order}")
    print(f"rows left in outboxes:                 {result.outbox_left}")
    print(f"events the watch has not reacted to:   {unreacted}")
    print(f"problems:                              {len(result.problems)}")
    for problem in result.problems:
        print(f"  - {problem}")
    print(f"took {seconds:.0f} s")
    return 0 if result.ok and result.recorded == result.stored and not unreacted else 1


if __name__ == "__main__":
    sys.exit(main())
