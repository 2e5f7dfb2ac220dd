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

from edge.bench.codes import gtin14
from edge.clock import Clock
from sync.errors import UserError
from sync.events import EventPayload, model_for, validate_payload
from sync.messages import Event, OrdersMessage, new_event_id
from sync.order import Order

__all__ = [
    "MIGRATIONS",
    "WRITERS",
    "Fact",
    "ScreenReader",
    "Shipment",
    "StationStore",
    "StoreUnusable",
    "Writer",
]

Writer = Callable[[sqlite3.Connection, Event], None]

#: A catalogued payload and the state change recorded with it (or None).
Fact = tuple[EventPayload, Writer | None]

Migration = str | Callable[[sqlite3.Connection], None]

# Named migrations, applied in order, each once; never edit a shipped one, add a new one.
# A migration is SQL, or a function of the connection (inside the same transaction).
MIGRATIONS: list[tuple[str, Migration]] = [
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
    (
        # The bench workflow (issue 9): its durable state, per-parcel records, the codes
        # a scan can name, deadlines for "next to pack", and the PII purge (C1).
        "0003_bench",
        """
        CREATE TABLE bench_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            state TEXT NOT NULL,
            saved_at REAL NOT NULL
        );
        ALTER TABLE shipments ADD COLUMN contents TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE shipments ADD COLUMN confirm TEXT NOT NULL DEFAULT 'auto';
        ALTER TABLE shipments ADD COLUMN print_job_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE prints ADD COLUMN parcel_no INTEGER;
        ALTER TABLE prints ADD COLUMN reprint INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE prints ADD COLUMN voided_at REAL;
        ALTER TABLE orders ADD COLUMN parcel_count INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE orders ADD COLUMN deadline REAL;
        ALTER TABLE orders ADD COLUMN pii_purged_at REAL;
        CREATE INDEX ix_orders_next ON orders (status, deadline);
        CREATE INDEX ix_prints_order ON prints (order_no);
        CREATE TABLE order_codes (
            code TEXT NOT NULL,
            order_no TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (code, order_no, kind)
        );
        CREATE INDEX ix_order_codes_order ON order_codes (order_no)
        """,
    ),
    ("0003_bench_codes", lambda db: _index_all_orders(db)),
    (
        # The packer's screen reads "next to pack" at every change and every few seconds,
        # with thousands of orders held and more shipped every hour: keep each order's
        # shipped parcels beside it (counted when a parcel ships, in the same
        # transaction) so the waiting orders are a range of one partial index, read in
        # deadline order and stopped at the list's length, instead of counting every
        # shipment and sorting every ready order.
        "0004_waiting_orders",
        """
        ALTER TABLE orders ADD COLUMN shipped_parcels INTEGER NOT NULL DEFAULT 0;
        UPDATE orders SET shipped_parcels =
            (SELECT COUNT(*) FROM shipments s WHERE s.order_no = orders.order_no);
        CREATE INDEX ix_orders_waiting
            ON orders (deadline IS NULL, deadline, received_at, order_no)
            WHERE status = 'ready' AND shipped_parcels < parcel_count
        """,
    ),
]


def _deadline(order: Order) -> float | None:
    """The earliest of the order's pack-by and ship-by, as epoch seconds."""
    times = [t.timestamp() for t in (order.pack_by, order.ship_by) if t is not None]
    return min(times) if times else None


def _codes(order: Order) -> list[tuple[str, str, str, str]]:
    """(code, order_no, kind, name): what a scan of this order's labels and items names."""
    rows = [(order.order_no, order.order_no, "order", "")]
    for n in range(1, order.parcel_count + 1):
        tracking = order.parcel_tracking(n)
        if tracking:
            rows.append((tracking, order.order_no, "tracking", ""))
    for line in order.lines:
        code = gtin14(line.scan_code) or line.scan_code
        rows.append((code, order.order_no, "item", line.name or line.sku))
    return list(dict.fromkeys(rows))


def _index_order(db: sqlite3.Connection, order: Order) -> None:
    db.execute("DELETE FROM order_codes WHERE order_no = ?", (order.order_no,))
    db.executemany(
        "INSERT OR IGNORE INTO order_codes (code, order_no, kind, name) VALUES (?, ?, ?, ?)",
        _codes(order),
    )
    db.execute(
        "UPDATE orders SET parcel_count = ?, deadline = ? WHERE order_no = ?",
        (order.parcel_count, _deadline(order), order.order_no),
    )


def _index_all_orders(db: sqlite3.Connection) -> None:
    for (data,) in db.execute("SELECT data FROM orders").fetchall():
        _index_order(db, Order.model_validate_json(data))


class Shipment:
    """A parcel shipped from this station (row of ``shipments``)."""

    __slots__ = (
        "carrier",
        "confirm",
        "contents",
        "operator",
        "order_no",
        "parcel_count",
        "parcel_no",
        "print_job_id",
        "shipped_at",
        "tracking_no",
    )

    def __init__(self, row: sqlite3.Row) -> None:
        self.order_no: str = row["order_no"]
        self.parcel_no: int = row["parcel_no"]
        self.parcel_count: int = row["parcel_count"]
        self.tracking_no: str = row["tracking_no"]
        self.carrier: str = row["carrier"]
        self.operator: str = row["operator"]
        self.shipped_at: float = row["shipped_at"]
        self.print_job_id: str = row["print_job_id"]
        self.confirm: str = row["confirm"]
        #: SKU → quantity in this parcel.
        self.contents: dict[str, int] = {
            item["sku"]: item["qty"] for item in json.loads(row["contents"])
        }


class StoreUnusable(UserError):
    """The station store cannot be opened: its folder cannot be made, or the file is
    not a usable SQLite database. ``str()`` says which and what to do."""


def _backlog(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def _backlog_oldest_at(db: sqlite3.Connection) -> float | None:
    row = db.execute(
        "SELECT at_wall FROM events WHERE seq = (SELECT MIN(seq) FROM outbox)"
    ).fetchone()
    return None if row is None else float(row[0])


#: The waiting orders, soonest deadline first: the WHERE and ORDER BY are those of the
#: partial index ``ix_orders_waiting`` word for word, so SQLite walks the index and
#: stops at LIMIT. INDEXED BY because, without statistics, the planner prefers the
#: equality on ``status`` and then sorts every ready order; and a query that could no
#: longer use the index fails outright instead of going slow unnoticed.
NEXT_TO_PACK_SQL = (
    "SELECT data FROM orders INDEXED BY ix_orders_waiting"
    " WHERE status = 'ready' AND shipped_parcels < parcel_count AND order_no IS NOT ?"
    " ORDER BY deadline IS NULL, deadline, received_at, order_no LIMIT ?"
)


def _next_to_pack(db: sqlite3.Connection, *, limit: int, exclude: str | None) -> list[Order]:
    rows = db.execute(NEXT_TO_PACK_SQL, (exclude, limit)).fetchall()
    return [Order.model_validate_json(r[0]) for r in rows]


class ScreenReader:
    """What the packer's screen reads from the station store, on a connection of its own.

    The screen is drawn on another thread than the bench's; with its own read-only
    connection (WAL: readers never wait for the writer, nor it for them) drawing the
    screen never holds the lock the bench records under, so a scan never waits for
    the page. Thread-safe. Open it with :meth:`StationStore.screen_reader`.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA query_only=ON")
        self._db.execute("PRAGMA busy_timeout=5000")

    def backlog(self) -> int:
        """How many events are not yet acknowledged by central."""
        with self._lock:
            return _backlog(self._db)

    def backlog_oldest_at(self) -> float | None:
        """Wall time of the oldest event central has not acknowledged; None when none."""
        with self._lock:
            return _backlog_oldest_at(self._db)

    def next_to_pack(self, *, limit: int = 10, exclude: str | None = None) -> list[Order]:
        """As :meth:`StationStore.next_to_pack`."""
        with self._lock:
            return _next_to_pack(self._db, limit=limit, exclude=exclude)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


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
            for name, migration in MIGRATIONS:
                if name in done:
                    continue
                if callable(migration):
                    migration(db)
                else:
                    for statement in migration.split(";"):
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

    def screen_reader(self) -> ScreenReader:
        """A reader of what the packer's screen shows, on its own connection (close it)."""
        return ScreenReader(self.path)

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

    def record_all(self, facts: Sequence[Fact], *, bench_state: str | None = None) -> list[Event]:
        """Record several facts, each ``(payload, write)``, in ONE transaction.

        ``bench_state`` (the bench's state as JSON) is saved in the same transaction,
        so the state and the events it caused are never apart (docs/station.md).
        """
        return self._append(
            [(p.TYPE, p.VERSION, p.model_dump(mode="json"), write) for p, write in facts],
            bench_state=bench_state,
        )

    def _append(
        self,
        entries: Sequence[tuple[str, int, dict[str, Any], Writer | None]],
        *,
        bench_state: str | None = None,
    ) -> list[Event]:
        events: list[Event] = []
        with self._tx() as db:
            if bench_state is not None:
                db.execute(
                    "INSERT INTO bench_state (id, state, saved_at) VALUES (1, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET state = excluded.state,"
                    " saved_at = excluded.saved_at",
                    (bench_state, self.clock.wall()),
                )
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
            return _backlog(self._db)

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

    def backlog_oldest_at(self) -> float | None:
        """Wall time of the oldest event central has not acknowledged; None when none."""
        with self._lock:
            return _backlog_oldest_at(self._db)

    def events(
        self, *, type: str | None = None, prefix: str | None = None, last: int | None = None
    ) -> list[Event]:
        """Recorded events in seq order: all, of one ``type``, or whose type starts with
        ``prefix`` (``"label."``); ``last`` keeps only the newest n."""
        where: str = ""
        args: list[object] = []
        if type is not None:
            where, args = "WHERE type = ?", [type]
        elif prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where, args = "WHERE type LIKE ? ESCAPE '\\'", [escaped + "%"]
        sql = f"SELECT * FROM events {where} ORDER BY seq"
        if last is not None:
            newest = f"SELECT * FROM events {where} ORDER BY seq DESC LIMIT ?"
            sql = f"SELECT * FROM ({newest}) ORDER BY seq"
            args.append(last)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._event(r) for r in rows]

    # -- the bench's state -----------------------------------------------------------------

    def bench_state(self) -> str | None:
        """The bench's saved state (JSON), or None before the first step."""
        with self._lock:
            row = self._db.execute("SELECT state FROM bench_state WHERE id = 1").fetchone()
        return None if row is None else str(row[0])

    # -- orders (downlinked) -------------------------------------------------------

    def apply_orders(self, message: OrdersMessage) -> int:
        """Upsert downlinked orders; a late message never overwrites a newer revision.

        Returns how many orders changed. The orders cursor only moves forward.
        """
        with self._tx() as db:
            changed = self._upsert(db, message.orders)
            db.execute(
                "INSERT INTO settings (key, value) VALUES ('orders_cursor', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                " WHERE CAST(excluded.value AS INTEGER) > CAST(settings.value AS INTEGER)",
                (str(message.cursor),),
            )
        return len(changed)

    def import_orders(self, orders: Sequence[Order]) -> list[str]:
        """Load orders from a file at the station (no central): new ones, and newer
        revisions of held ones. Returns the order numbers that were added or changed;
        the central orders cursor is left alone."""
        with self._tx() as db:
            return self._upsert(db, orders)

    def _upsert(self, db: sqlite3.Connection, orders: Sequence[Order]) -> list[str]:
        changed: list[str] = []
        for order in orders:
            cur = db.execute(
                "INSERT INTO orders (order_no, revision, status, data, received_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(order_no) DO UPDATE SET revision=excluded.revision,"
                " status=excluded.status, data=excluded.data,"
                " received_at=excluded.received_at, pii_purged_at=NULL"
                " WHERE excluded.revision > orders.revision",
                (
                    order.order_no,
                    order.revision,
                    order.status,
                    order.model_dump_json(),
                    self.clock.wall(),
                ),
            )
            if cur.rowcount:
                _index_order(db, order)
                changed.append(order.order_no)
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
        """The order whose number or a parcel's tracking number is ``code`` (a scanned
        order number or waybill); by order number first."""
        found = self.order(code)
        if found is not None:
            return found
        with self._lock:
            row = self._db.execute(
                "SELECT o.data FROM order_codes c JOIN orders o ON o.order_no = c.order_no"
                " WHERE c.code = ? AND c.kind IN ('order', 'tracking')"
                " ORDER BY o.received_at DESC LIMIT 1",
                (code,),
            ).fetchone()
        return Order.model_validate_json(row[0]) if row else None

    def product_name(self, codes: Sequence[str]) -> str | None:
        """The name of the product one of ``codes`` is (an item of any held order)."""
        if not codes:
            return None
        marks = ", ".join("?" for _ in codes)
        with self._lock:
            row = self._db.execute(
                f"SELECT name FROM order_codes WHERE kind = 'item' AND code IN ({marks}) LIMIT 1",
                list(codes),
            ).fetchone()
        return None if row is None else str(row[0])

    def printed_jobs(self, order_no: str) -> list[str]:
        """The print job ids recorded for ``order_no``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id FROM prints WHERE order_no = ? ORDER BY event_seq", (order_no,)
            ).fetchall()
        return [r[0] for r in rows]

    def next_to_pack(self, *, limit: int = 10, exclude: str | None = None) -> list[Order]:
        """Orders ready to pack and not yet shipped, soonest deadline first (no deadline
        last, then in the order they arrived)."""
        with self._lock:
            return _next_to_pack(self._db, limit=limit, exclude=exclude)

    # -- customer data (C1) ----------------------------------------------------------------

    def purge_pii(self, *, older_than: float) -> int:
        """Erase recipient name, phone and address of every order whose last parcel
        shipped before ``older_than`` (wall time); records ``pii.purged``. Returns how
        many orders were purged."""
        from sync.events import PiiPurged

        with self._lock:
            rows = self._db.execute(
                "SELECT o.order_no, o.data FROM orders o JOIN (SELECT order_no, COUNT(*) AS n,"
                " MAX(shipped_at) AS last FROM shipments GROUP BY order_no) s"
                " ON s.order_no = o.order_no"
                " WHERE o.pii_purged_at IS NULL AND s.n >= o.parcel_count AND s.last < ?",
                (older_than,),
            ).fetchall()
        if not rows:
            return 0
        erased = {"name": "", "phone": "", "address": "", "postcode": ""}
        updates = []
        for order_no, data in rows:
            order = Order.model_validate_json(data)
            clean = order.model_copy(
                update={"recipient": order.recipient.model_copy(update=erased)}
            )
            updates.append((clean.model_dump_json(), order_no))

        def purge(db: sqlite3.Connection, event: Event) -> None:
            db.executemany(
                f"UPDATE orders SET data = ?, pii_purged_at = {event.at_wall!r} WHERE order_no = ?",
                updates,
            )

        self.record_all([(PiiPurged(orders=len(updates)), purge)])
        return len(updates)

    def order_count(self) -> int:
        """How many orders the station holds."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    # -- shipments and prints --------------------------------------------------------

    def shipped_parcels(self, order_no: str) -> int:
        """How many parcels of ``order_no`` shipped from this station."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM shipments WHERE order_no = ?", (order_no,)
            ).fetchone()
        return int(row[0])

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


# -- state changes recorded with their events -------------------------------------------
# The rows are the events' payloads: what central receives is what was stored.


def _add_print(db: sqlite3.Connection, event: Event) -> None:
    payload = event.payload
    db.execute(
        "INSERT OR IGNORE INTO prints (job_id, order_no, kind, verified, printed_at, event_seq,"
        " parcel_no, reprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            payload["job_id"],
            payload["order_no"],
            payload["kind"],
            payload["verified"],
            event.at_wall,
            event.seq,
            payload.get("parcel_no"),
            payload.get("reprint", False),
        ),
    )


def _void_print(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        "UPDATE prints SET voided_at = ? WHERE job_id = ?", (event.at_wall, event.payload["job_id"])
    )


def _add_shipment(db: sqlite3.Connection, event: Event) -> None:
    payload = event.payload
    db.execute(
        "INSERT INTO shipments (order_no, parcel_no, parcel_count, tracking_no, carrier,"
        " service, operator, shipped_at, event_seq, contents, confirm, print_job_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            payload["order_no"],
            payload["parcel_no"],
            payload["parcel_count"],
            payload["tracking_no"],
            payload["carrier"],
            payload["service"],
            payload["operator"],
            event.at_wall,
            event.seq,
            json.dumps(payload.get("contents", []), ensure_ascii=False),
            payload.get("confirm", "auto"),
            payload.get("print_job_id", ""),
        ),
    )
    db.execute(
        "UPDATE orders SET shipped_parcels = shipped_parcels + 1 WHERE order_no = ?",
        (payload["order_no"],),
    )


#: Event type → the state change recorded in the same transaction (docs/station.md).
WRITERS: dict[str, Writer] = {
    "label.printed": _add_print,
    "label.voided": _void_print,
    "shipment.shipped": _add_shipment,
}
