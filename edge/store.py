"""The station store: one SQLite file per station.

WAL mode with ``synchronous=FULL``: a power cut must not roll back a confirmed ship.
Every fact is an event with a per-station ``seq``; the state change and its outbox row
are written in ONE transaction (:meth:`StationStore.record`). An outbox row is
deleted only when central acknowledges it (:meth:`StationStore.acknowledge`), never
on the broker's PUBACK.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from edge.clock import Clock
from sync.errors import UserError
from sync.events import EventPayload, model_for, validate_payload
from sync.messages import Event, OrdersMessage, new_event_id
from sync.order import Order

__all__ = ["MIGRATIONS", "Fact", "Shipment", "StationStore", "StoreUnusable", "Writer"]

Writer = Callable[[sqlite3.Connection, Event], None]

#: A catalogued payload and the state change recorded with it (or None).
Fact = tuple[EventPayload, Writer | None]

# Named migrations, applied in order, each once; never edit a shipped one, add a new one.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE orders (
            order_no TEXT PRIMARY KEY,
            revision INTEGER NOT NULL,
            status TEXT NOT NULL,
            data TEXT NOT NULL,
            received_at REAL NOT NULL
        );
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            at_wall REAL NOT NULL,
            at_mono REAL NOT NULL,
            boot_id TEXT NOT NULL,
            payload TEXT NOT NULL
        );
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY REFERENCES events(seq));
        CREATE TABLE shipments (
            order_no TEXT NOT NULL,
            parcel_no INTEGER NOT NULL,
            parcel_count INTEGER NOT NULL,
            tracking_no TEXT NOT NULL,
            carrier TEXT NOT NULL,
            service TEXT NOT NULL,
            operator TEXT NOT NULL,
            shipped_at REAL NOT NULL,
            event_seq INTEGER NOT NULL REFERENCES events(seq),
            PRIMARY KEY (order_no, parcel_no)
        );
        CREATE TABLE prints (
            job_id TEXT PRIMARY KEY,
            order_no TEXT NOT NULL,
            kind TEXT NOT NULL,
            verified INTEGER NOT NULL,
            printed_at REAL NOT NULL,
            event_seq INTEGER NOT NULL REFERENCES events(seq)
        );
        """,
    ),
    (
        # The version of the payload's type in the catalogue (sync/events.py); events
        # recorded before the catalogue are version 1.
        "0002_event_version",
        "ALTER TABLE events ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
    ),
]


class Shipment:
    """A parcel shipped from this station (row of ``shipments``)."""

    __slots__ = ("carrier", "order_no", "parcel_count", "parcel_no", "shipped_at", "tracking_no")

    def __init__(self, row: sqlite3.Row) -> None:
        self.order_no: str = row["order_no"]
        self.parcel_no: int = row["parcel_no"]
        self.parcel_count: int = row["parcel_count"]
        self.tracking_no: str = row["tracking_no"]
        self.carrier: str = row["carrier"]
        self.shipped_at: float = row["shipped_at"]


class StoreUnusable(UserError):
    """The station store cannot be opened: its folder cannot be made, or the file is
    not a usable SQLite database. ``str()`` says which and what to do."""


class StationStore:
    """The durable state of one station. Thread-safe: one connection behind a lock.

    ``instance_id`` is the store's identity, created once with the store.
    """

    instance_id: str

    def __init__(self, path: Path, *, station: str, clock: Clock) -> None:
        self.path = path
        self.station = station
        self.clock = clock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnusable(
                f"cannot create the station's data folder {path.parent}: "
                f"{exc.strerror or exc}; set data_dir to a folder this user can write to"
            ) from None
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
            self.instance_id = self._ensure_instance_id()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._unusable(exc) from None

    def _unusable(self, exc: sqlite3.Error) -> StoreUnusable:
        # Never delete or rebuild the file here: it may hold events central lacks.
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            return StoreUnusable(
                f"the station store {self.path} is damaged ({exc}): move it aside, keeping "
                "it (it may hold records central has not received), then restore it from a "
                "backup or start with an empty one"
            )
        return StoreUnusable(
            f"cannot open the station store {self.path}: {exc}; check that data_dir is "
            "writable by this user"
        )

    # -- plumbing ---------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY)")
            done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO _migrations (name) VALUES (?)", (name,))

    def _ensure_instance_id(self) -> str:
        # The store's identity, made once when the store is made: two benches given
        # one name (a copied station.toml) differ in it, and central tells them apart.
        with self._tx() as db:
            row = db.execute("SELECT value FROM settings WHERE key = 'instance_id'").fetchone()
            if row is not None and row[0]:
                return str(row[0])
            made = str(uuid.uuid4())
            db.execute("INSERT INTO settings (key, value) VALUES ('instance_id', ?)", (made,))
            return made

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- events and outbox -------------------------------------------------------

    @overload
    def record(self, fact: EventPayload, /, *, write: Writer | None = None) -> Event: ...

    @overload
    def record(
        self, fact: str, payload: Mapping[str, Any], /, *, write: Writer | None = None
    ) -> Event: ...

    def record(
        self,
        fact: EventPayload | str,
        payload: Mapping[str, Any] | None = None,
        /,
        *,
        write: Writer | None = None,
    ) -> Event:
        """Append an event, its outbox row and ``write``'s state change atomically.

        ``fact`` is a catalogued payload (:mod:`sync.events`), or a type name and its
        payload as a mapping. A payload of a catalogued type that does not fit its model
        raises :class:`~sync.events.BadEventPayload` and records nothing: it is a
        programming error. A type outside the catalogue is recorded as given.
        ``write(connection, event)`` runs inside the same transaction; if it raises,
        nothing of the event is stored.
        """
        if isinstance(fact, str):
            if model_for(fact) is None:
                return self._append([(fact, 1, dict(payload or {}), write)])[0]
            fact = validate_payload(fact, payload or {})
        return self.record_all([(fact, write)])[0]

    def record_all(self, facts: Sequence[Fact]) -> list[Event]:
        """Record several facts, each ``(payload, write)``, in ONE transaction."""
        return self._append(
            [(p.TYPE, p.VERSION, p.model_dump(mode="json"), write) for p, write in facts]
        )

    def _append(
        self, entries: Sequence[tuple[str, int, dict[str, Any], Writer | None]]
    ) -> list[Event]:
        events: list[Event] = []
        with self._tx() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            seq = int(row[0])
            for type_name, version, payload, write in entries:
                seq += 1
                event = Event(
                    event_id=new_event_id(),
                    station=self.station,
                    seq=seq,
                    type=type_name,
                    version=version,
                    at_wall=self.clock.wall(),
                    at_mono=self.clock.mono(),
                    boot_id=self.clock.boot_id,
                    payload=payload,
                )
                db.execute(
                    "INSERT INTO events (seq, event_id, type, version, at_wall, at_mono, boot_id,"
                    " payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.seq,
                        event.event_id,
                        event.type,
                        event.version,
                        event.at_wall,
                        event.at_mono,
                        event.boot_id,
                        json.dumps(payload, ensure_ascii=False),
                    ),
                )
                db.execute("INSERT INTO outbox (seq) VALUES (?)", (event.seq,))
                if write is not None:
                    write(db, event)
                events.append(event)
        return events

    def pending(self, *, after: int = 0, limit: int = 200) -> list[Event]:
        """Unacknowledged events with ``seq > after``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.* FROM outbox o JOIN events e ON e.seq = o.seq"
                " WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [self._event(r) for r in rows]

    def _event(self, row: sqlite3.Row) -> Event:
        return Event(
            event_id=row["event_id"],
            station=self.station,
            seq=row["seq"],
            type=row["type"],
            version=row["version"],
            at_wall=row["at_wall"],
            at_mono=row["at_mono"],
            boot_id=row["boot_id"],
            payload=json.loads(row["payload"]),
        )

    def acknowledge(self, seq: int) -> int:
        """Central holds every event up to ``seq``: drop those outbox rows.

        Returns how many rows were removed. An ack beyond what the station ever
        recorded is ignored (it cannot be ours) rather than trusted.
        """
        with self._tx() as db:
            top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            if seq > top:
                return 0
            cur = db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            return cur.rowcount

    def backlog(self) -> int:
        """How many events are not yet acknowledged by central."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def oldest_pending_at(self) -> float | None:
        """The station's wall time of the oldest unacknowledged event; None when none."""
        with self._lock:
            row = self._db.execute(
                "SELECT e.at_wall FROM outbox o JOIN events e ON e.seq = o.seq"
                " ORDER BY o.seq LIMIT 1"
            ).fetchone()
        return float(row[0]) if row else None

    # -- what the running agent last knew of its link, for `packline edge status` --

    def note_uplink(self, state: Mapping[str, Any]) -> None:
        """Keep the uplink's state (broker, clock skew, name conflict) for other processes."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES ('uplink', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (json.dumps(dict(state), ensure_ascii=False),),
            )

    def uplink_state(self) -> dict[str, Any]:
        """What :meth:`note_uplink` last kept; empty when the agent never ran."""
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = 'uplink'").fetchone()
        if row is None:
            return {}
        try:
            value = json.loads(row[0])
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def events(self, *, type: str | None = None) -> list[Event]:
        """Every recorded event (optionally of one type), in seq order."""
        with self._lock:
            if type is None:
                rows = self._db.execute("SELECT * FROM events ORDER BY seq").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM events WHERE type = ? ORDER BY seq", (type,)
                ).fetchall()
        return [self._event(r) for r in rows]

    # -- orders (downlinked) -------------------------------------------------------

    def apply_orders(self, message: OrdersMessage) -> int:
        """Upsert downlinked orders; a late message never overwrites a newer revision.

        Returns how many orders changed. The orders cursor only moves forward.
        """
        changed = 0
        with self._tx() as db:
            for order in message.orders:
                cur = db.execute(
                    "INSERT INTO orders (order_no, revision, status, data, received_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT(order_no) DO UPDATE SET revision=excluded.revision,"
                    " status=excluded.status, data=excluded.data,"
                    " received_at=excluded.received_at"
                    " WHERE excluded.revision > orders.revision",
                    (
                        order.order_no,
                        order.revision,
                        order.status,
                        order.model_dump_json(),
                        self.clock.wall(),
                    ),
                )
                changed += cur.rowcount
            db.execute(
                "INSERT INTO settings (key, value) VALUES ('orders_cursor', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                " WHERE CAST(excluded.value AS INTEGER) > CAST(settings.value AS INTEGER)",
                (str(message.cursor),),
            )
        return changed

    def orders_cursor(self) -> int:
        """The highest central order seq this station holds."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM settings WHERE key = 'orders_cursor'"
            ).fetchone()
        return int(row[0]) if row else 0

    def order(self, order_no: str) -> Order | None:
        """The local copy of an order, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM orders WHERE order_no = ?", (order_no,)
            ).fetchone()
        return Order.model_validate_json(row[0]) if row else None

    def find_order(self, code: str) -> Order | None:
        """The order whose number or tracking number is ``code`` (a scanned waybill)."""
        found = self.order(code)
        if found is not None:
            return found
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM orders WHERE json_extract(data, '$.tracking_no') = ?", (code,)
            ).fetchone()
        return Order.model_validate_json(row[0]) if row else None

    def order_count(self) -> int:
        """How many orders the station holds."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    # -- shipments and prints --------------------------------------------------------

    def shipments(self, order_no: str | None = None) -> Sequence[Shipment]:
        """Parcels shipped from this station (of one order, or all)."""
        with self._lock:
            if order_no is None:
                rows = self._db.execute("SELECT * FROM shipments ORDER BY event_seq").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM shipments WHERE order_no = ? ORDER BY parcel_no", (order_no,)
                ).fetchall()
        return [Shipment(r) for r in rows]

    def printed(self, job_id: str) -> bool:
        """True when a print job with this id was recorded as printed."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM prints WHERE job_id = ?", (job_id,)).fetchone()
        return row is not None
