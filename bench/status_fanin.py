"""Station status fan-in: 500 simulated stations publishing their status every 10 s;
central's CPU share and the lag from publish to the ``stations`` row, same run.

A private Mosquitto on a free port, a real ``packline central serve`` process on a
SQLite file (its rows are watched by reading that file), and the stations simulated
by this process: each station's retained QoS 1 status on its own topic, as the uplink sends it (a
healthy bench: printer ready, labels counting down, a small backlog now and then),
spread evenly over the period, through ``--connections`` MQTT connections. Two
phases: the real period (10 s), and time compressed ``--compress`` times (the same
statuses, period 10 s / N) to see the headroom. Measured per phase:

- central's CPU share: its process's CPU time (``/proc``) over the phase's wall time,
  in % of one core;
- lag: from the publish (``at_wall`` in the status) to the moment the status is seen
  committed in the ``stations`` row (polled every ``--poll`` s; the poll adds up to
  that much), p50 and p95;
- the baseline: the same statuses' lag to a bare paho subscriber on the same broker
  (publish to delivery, nothing stored).

Not a test.

    .venv/bin/python bench/status_fanin.py [--stations 500] [--period 10] [--seconds 30]
                                           [--compress 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_drain import CentralProcess

from packline.devbroker import MosquittoBroker
from sync import topics
from sync.messages import StationStatus, encode

SITE = "fanin"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stations:
    """``count`` stations publishing their status through a few connections."""

    def __init__(self, broker: MosquittoBroker, *, count: int, connections: int) -> None:
        self.count = count
        self.names = [f"bench-{i:03d}" for i in range(count)]
        self.boot = {n: str(uuid.uuid4()) for n in self.names}
        self.instance = {n: uuid.uuid4().hex for n in self.names}
        self.started = time.time()
        self.rounds = 0
        self.clients: list[mqtt.Client] = []
        for i in range(connections):
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=f"fanin-stations-{os.getpid()}-{i}",
                protocol=mqtt.MQTTv5,
            )
            client.max_inflight_messages_set(100)
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            self.clients.append(client)

    def status(self, i: int, name: str) -> bytes:
        backlog = (self.rounds + i) % 7 == 0
        now = time.time()
        return encode(
            StationStatus(
                station=name,
                online=True,
                at_wall=now,
                at_mono=time.monotonic(),
                boot_id=self.boot[name],
                version="1.0.0",
                instance_id=self.instance[name],
                started_at=self.started,
                operator="OP-0042",
                printer="ready",
                printer_detail="ready",
                printer_model="QL-820NWB",
                scanner="connected",
                labels_left=max(0, 500 - self.rounds),
                label_size="62x100",
                backlog=3 if backlog else 0,
                backlog_oldest_at=now - 2 if backlog else None,
                orders_held=120,
                orders_cursor=0,
                disk_free_bytes=10_000_000_000,
                broker_state="connected to the broker",
            )
        )

    def run(self, *, period: float, seconds: float) -> None:
        """Each station once per ``period``, evenly spread, for ``seconds``."""
        gap = period / self.count
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < seconds:
            i = k % self.count
            if i == 0 and k:
                self.rounds += 1
            due = t0 + k * gap
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            name = self.names[i]
            client = self.clients[i % len(self.clients)]
            client.publish(topics.status(SITE, name), self.status(i, name), qos=1, retain=True)
            k += 1

    def close(self) -> None:
        for client in self.clients:
            client.loop_stop()
            client.disconnect()


class BareSubscriber:
    """The baseline: the lag from publish to delivery at a plain paho subscriber."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.lags: list[float] = []
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"fanin-bare-{os.getpid()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topics.subscription(SITE, "status"), qos=1)
        self.client.loop_start()
        self.recording = False

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self.recording and not msg.retain:
            self.lags.append(time.time() - json.loads(msg.payload)["at_wall"])

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class RowWatcher(threading.Thread):
    """Polls the stations table; notes when each published status is first seen there."""

    def __init__(self, db: Path, *, every: float) -> None:
        super().__init__(name="row-watcher", daemon=True)
        self.db = db
        self.every = every
        self.seen: dict[tuple[str, float], float] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
                rows = conn.execute(
                    "SELECT station, json_extract(last_status, '$.at_wall') FROM stations"
                ).fetchall()
            except sqlite3.Error:
                rows = []
            now = time.time()
            for station, at in rows:
                if at is not None:
                    self.seen.setdefault((station, float(at)), now)
            self.halt.wait(self.every)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def phase(
    *,
    stations: Stations,
    bare: BareSubscriber,
    watcher: RowWatcher,
    central: CentralProcess,
    period: float,
    seconds: float,
) -> dict[str, float]:
    watcher.seen.clear()
    bare.lags.clear()
    bare.recording = True
    cpu0, t0 = cpu_seconds(central.proc.pid), time.monotonic()
    wall0 = time.time()
    stations.run(period=period, seconds=seconds)
    cpu1, t1 = cpu_seconds(central.proc.pid), time.monotonic()
    time.sleep(max(2.0, period))  # the last statuses reach the table
    bare.recording = False
    lags = [seen - at for (_, at), seen in watcher.seen.items() if at >= wall0]
    return {
        "published": stations.count * seconds / period,
        "stored": len(lags),
        "cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "p50": pct(lags, 50),
        "p95": pct(lags, 95),
        "bare_p50": pct(bare.lags, 50),
        "bare_p95": pct(bare.lags, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--period", type=float, default=10.0, help="seconds between statuses")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--compress", type=float, default=10.0, help="time compression")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between reads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="packline-fanin-") as name:
        tmp = Path(name)
        db = tmp / "central.db"
        with MosquittoBroker(workdir=tmp / "mosquitto") as broker:
            central = CentralProcess(
                db_url=f"sqlite:///{db}", mqtt_url=broker.url, site=SITE, log=tmp / "central.log"
            )
            stations = Stations(broker, count=args.stations, connections=args.connections)
            bare = BareSubscriber(broker)
            watcher = RowWatcher(db, every=args.poll)
            watcher.start()
            try:
                # Every station comes online once (its first status) before measuring.
                stations.run(period=min(args.period, 5.0), seconds=min(args.period, 5.0))
                time.sleep(3.0)
                results = []
                for period in (args.period, args.period / args.compress):
                    results.append(
                        (
                            period,
                            phase(
                                stations=stations,
                                bare=bare,
                                watcher=watcher,
                                central=central,
                                period=period,
                                seconds=args.seconds,
                            ),
                        )
                    )
            finally:
                watcher.halt.set()
                stations.close()
                bare.close()
                central.stop()
    print(
        f"status fan-in: {args.stations} stations, {args.connections} connections, central on "
        f"SQLite, {args.seconds:g} s per phase, rows polled every {args.poll * 1000:g} ms"
    )
    print(
        f"{'period':>8}{'statuses/s':>12}{'stored':>8}{'central CPU':>13}"
        f"{'lag p50':>10}{'lag p95':>10}{'bare p50':>10}{'bare p95':>10}"
    )
    for period, r in results:
        rate = args.stations / period
        print(
            f"{period:>7g}s{rate:>12,.0f}{r['stored']:>8,.0f}{r['cpu']:>12.1f}%"
            f"{r['p50'] * 1000:>8.0f}ms{r['p95'] * 1000:>8.0f}ms"
            f"{r['bare_p50'] * 1000:>8.1f}ms{r['bare_p95'] * 1000:>8.1f}ms"
        )
    base = results[0][1]
    print(
        f"at the real rate central uses {base['cpu']:.1f}% of one core; lag p95 "
        f"{base['p95'] * 1000:.0f} ms against {base['bare_p95'] * 1000:.1f} ms to a bare subscriber"
    )


if __name__ == "__main__":
    main()
