"""Fault injection across real processes: brokers with tuned settings, several central
workers, stations with a prepared backlog, a watcher of acks, and the final count.

Used by ``tests/test_faults.py`` and ``bench/chaos_sync.py``. Everything runs on free
ports with its own Mosquitto; every process is ended by its pid.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa

from edge.clock import SystemClock
from edge.store import StationStore
from packline.devbroker import MosquittoBroker, free_port, stop_process
from sync import topics
from sync.events import OperatorLogin, ShipmentShipped
from sync.messages import Ack, decode
from sync.mqtt import make_client
from tests.support.processes import query
from tests.support.waiting import wait_for

PACKLINE = [sys.executable, "-m", "packline"]

__all__ = [
    "AckWatcher",
    "Delivery",
    "TunedBroker",
    "Worker",
    "check_delivered",
    "seed",
]


class TunedBroker(MosquittoBroker):
    """:class:`MosquittoBroker` with some settings changed (``{"autosave_interval":
    "1", "max_inflight_messages": "5"}``); :meth:`forget` deletes its saved state."""

    def __init__(self, *, workdir: Path, settings: dict[str, str] | None = None) -> None:
        super().__init__(workdir=workdir)
        # Started as root, Mosquitto becomes user "mosquitto", who cannot write its
        # state into a private temporary folder: it stays the user who started it.
        self.settings = {"user": pwd.getpwuid(os.getuid()).pw_name, **(settings or {})}

    def _write_config(self) -> None:
        super()._write_config()
        lines = self.config.read_text().splitlines()
        kept = [line for line in lines if line.split(" ", 1)[0] not in self.settings]
        extra = [f"{key} {value}" for key, value in self.settings.items()]
        self.config.write_text("\n".join([*kept, *extra, ""]))

    @property
    def state_file(self) -> Path:
        """Where Mosquitto saves its in-memory state."""
        return self.workdir / "mosquitto.db"

    def forget(self) -> None:
        """Delete the saved state (call while stopped): a restart comes up empty."""
        self.state_file.unlink(missing_ok=True)


class Worker:
    """``packline central serve`` as one of several workers on a database.

    ``web=False`` runs it with ``--no-web``; ``name`` is its ``--worker`` name.
    """

    def __init__(
        self,
        *,
        workdir: Path,
        name: str,
        db_url: str,
        mqtt_url: str,
        site: str,
        web: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.db_url = db_url
        self.mqtt_url = mqtt_url
        self.site = site
        self.web = web
        self.port = free_port()
        self.log = workdir / f"central-{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_from = 0

    def start(self, *, wait: bool = True) -> Worker:
        self.starts += 1
        # Where this start's log begins: a start killed before it said it was up
        # leaves no start-up line, so lines are not counted across starts.
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        args = [
            *PACKLINE,
            "central",
            "serve",
            "--db-url",
            self.db_url,
            "--mqtt-url",
            self.mqtt_url,
            "--site",
            self.site,
            "--worker",
            self.name,
        ]
        args += ["--http-port", str(self.port)] if self.web else ["--no-web"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=self.env
            )
        if wait:
            self.ready()
        return self

    def said(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def said_since_start(self) -> str:
        """The log of the latest start only."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(self.log_from)
            return f.read().decode(errors="replace")

    def ready(self, *, timeout: float = 60.0) -> Worker:
        """Wait for this start's start-up line (every check has passed by then)."""

        def started() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited: {self.said()[-2000:]}")
            return f"central worker {self.name} for site" in self.said_since_start()

        wait_for(started, what=f"worker {self.name} to start", timeout=timeout)
        return self

    def leads(self) -> bool:
        """Whether the log's last word on leading says this worker leads."""
        text = self.said()
        won = text.rfind(f"worker {self.name} leads")
        lost = text.rfind(f"worker {self.name} no longer leads")
        return won > lost and self.alive()

    def healthz(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as resp:
            return int(resp.status)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash in the middle of whatever it was doing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.proc = None


def seed(db: Path, *, station: str, count: int, kind: str = "shipment") -> list[str]:
    """Record ``count`` events in a station's store (created if need be), as the bench
    would have while offline; returns their event ids. ``kind`` is ``shipment`` (each
    projected centrally as one shipment) or ``login`` (stored only)."""
    store = StationStore(db, station=station, clock=SystemClock())
    try:
        ids: list[str] = []
        chunk = 500
        for first in range(0, count, chunk):
            facts: list[Any] = []
            for i in range(first, min(count, first + chunk)):
                tag = uuid.uuid4().hex[:10]
                if kind == "shipment":
                    facts.append(
                        (
                            ShipmentShipped(
                                order_no=f"FT-{station}-{tag}",
                                tracking_no=f"SF{tag}",
                                carrier="SF Express",
                                parcel_no=1,
                                parcel_count=1,
                                operator="op-7",
                                print_job_id=f"job-{tag}",
                                print_verified=True,
                            ),
                            None,
                        )
                    )
                else:
                    facts.append((OperatorLogin(operator=f"op-{i}"), None))
            ids += [e.event_id for e in store.record_all(facts)]
        return ids
    finally:
        store.close()


class AckWatcher:
    """Every ack central sends to the stations of ``site``, in the order the broker
    delivers them (a subscriber like the stations, on its own client)."""

    def __init__(self, *, url: str, site: str) -> None:
        self.site = site
        self.acks: list[Ack] = []
        self._after: list[float] = []
        self._lock = threading.Lock()
        self._restarts: list[float] = []
        self._subscribed = threading.Event()
        self.client = make_client(
            client_id=f"test-acks-{uuid.uuid4().hex[:6]}", url=url, session_expiry=3600
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.loop_start()
        if not self._subscribed.wait(20):
            raise AssertionError("the ack watcher could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(topics.subscription(self.site, "ack"), qos=1)

    def _on_message(self, _client: mqtt.Client, _ud: object, msg: mqtt.MQTTMessage) -> None:
        ack = decode(Ack, bytes(msg.payload))
        with self._lock:
            self.acks.append(ack)
            self._after.append(self._restarts[-1] if self._restarts else 0.0)

    def broker_restarted(self) -> None:
        """Note that the broker was started again (call right after it is up)."""
        with self._lock:
            self._restarts.append(time.time())

    def backwards(self) -> list[str]:
        """Each ack lower than one delivered before it for the same station and bench.

        A broker restarted after a crash delivers what was published before it: from
        its saved state, and what publishers resend of their unanswered messages. An
        ack sent before the last restart and delivered after it is that replay, not a
        new ack, and is left out; so is one seen before (same seq, same send time).
        """
        top: dict[tuple[str, str | None], int] = {}
        found = []
        seen: set[tuple[str, str | None, int, float | None]] = set()
        with self._lock:
            acks = list(zip(self.acks, self._after, strict=True))
        # In the order central made them (their send time): two workers' connections
        # may deliver interleaved, and a lower ack arriving late deletes nothing.
        acks.sort(key=lambda pair: pair[0].at if pair[0].at is not None else 0.0)
        for ack, restarted in acks:
            sent = (ack.station, ack.instance_id, ack.seq, ack.at)
            if sent in seen or (ack.at is not None and ack.at < restarted):
                continue
            seen.add(sent)
            key = (ack.station, ack.instance_id)
            if ack.seq < top.get(key, 0):
                found.append(f"{ack.station}: ack {ack.seq} after ack {top[key]}")
            top[key] = max(top.get(key, 0), ack.seq)
        return found

    def dump(self, path: Path) -> None:
        """Write what was received, one ack a line, for a person to read."""
        with self._lock:
            lines = [
                f"{a.station} {a.seq} {a.at} {a.instance_id} {a.name_conflict}" for a in self.acks
            ]
        path.write_text("\n".join(lines) + "\n")

    def count(self) -> int:
        with self._lock:
            return len(self.acks)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclasses.dataclass
class Delivery:
    """What the stations recorded against what central holds."""

    recorded: int = 0
    stored: int = 0
    missing: int = 0
    duplicated: int = 0
    shipments: int = 0
    shipments_twice: int = 0
    out_of_order: int = 0
    outbox_left: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def central_rows(db_url: str, sql: str) -> list[Any]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def check_delivered(db_url: str, station_dbs: Iterable[tuple[str, Path]]) -> Delivery:
    """Compare every station's store with central's database.

    Central's distinct events must equal the events recorded at the stations (none
    missing, none extra), no event stored or projected twice, each station's events
    projected in seq order (shipment rows are numbered as they are projected) and the
    contiguous mark at the top, and every outbox empty.
    """
    result = Delivery()
    held = central_rows(db_url, "SELECT station, seq, event_id, type FROM events")
    by_station: dict[str, dict[str, int]] = collections.defaultdict(dict)
    seen: collections.Counter[str] = collections.Counter()
    for station, seq, event_id, _type in held:
        by_station[station][event_id] = seq
        seen[event_id] += 1
    result.stored = len(seen)
    result.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    shipped = central_rows(
        db_url,
        "SELECT s.event_id, e.station, e.seq, s.id FROM shipments s "
        "JOIN events e ON e.event_id = s.event_id ORDER BY s.id",
    )
    counted: collections.Counter[str] = collections.Counter(r[0] for r in shipped)
    result.shipments = len(counted)
    result.shipments_twice = sum(n - 1 for n in counted.values() if n > 1)
    last_seq: dict[str, int] = {}
    for _event_id, station, seq, _id in shipped:
        if seq < last_seq.get(station, 0):
            result.out_of_order += 1
        last_seq[station] = seq
    marks = dict(central_rows(db_url, "SELECT station, acked_seq FROM stations"))
    names = set()
    for name, db in station_dbs:
        names.add(name)
        recorded = {r[1]: r[0] for r in query(db, "SELECT seq, event_id, type FROM events")}
        shipment_ids = {
            r[0] for r in query(db, "SELECT event_id FROM events WHERE type = 'shipment.shipped'")
        }
        result.recorded += len(recorded)
        central = by_station.get(name, {})
        missing = set(recorded) - set(central)
        extra = set(central) - set(recorded)
        result.missing += len(missing)
        if missing:
            result.problems.append(f"{name}: {len(missing)} events recorded, not at central")
        if extra:
            result.problems.append(f"{name}: {len(extra)} events at central it never recorded")
        wrong_seq = [e for e, s in recorded.items() if e in central and central[e] != s]
        if wrong_seq:
            result.problems.append(f"{name}: {len(wrong_seq)} events at another seq")
        not_projected = shipment_ids - set(counted)
        if not_projected:
            result.problems.append(f"{name}: {len(not_projected)} shipments not projected")
        top = max(recorded.values(), default=0)
        if marks.get(name, 0) != top:
            result.problems.append(f"{name}: central's mark {marks.get(name)} != top seq {top}")
        left = query(db, "SELECT COUNT(*) FROM outbox")
        outbox = int(left[0][0]) if left else -1
        result.outbox_left += outbox
        if outbox:
            result.problems.append(f"{name}: {outbox} rows left in the outbox")
    if result.duplicated:
        result.problems.append(f"{result.duplicated} events stored twice")
    if result.shipments_twice:
        result.problems.append(f"{result.shipments_twice} shipments counted twice")
    if result.out_of_order:
        result.problems.append(f"{result.out_of_order} shipments projected out of seq order")
    others = set(by_station) - names
    if others:
        result.problems.append(f"events of stations no test ran: {sorted(others)}")
    return result
