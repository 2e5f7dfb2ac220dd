"""Central storage: SQLAlchemy Core tables and :func:`open_db`.

A SQLite file by default (one command runs everything) and PostgreSQL by URL. The
schema is owned by the Alembic migrations in ``central/migrations``; :func:`open_db`
runs them to head, so a fresh or an old database is always current before use.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from sync.errors import UserError

__all__ = [
    "READ_ONLY",
    "DatabaseUnavailable",
    "UTCDateTime",
    "by_keys",
    "dead_letters",
    "each_key",
    "error_reason",
    "events",
    "metadata",
    "migrate",
    "open_db",
    "orders",
    "sequences",
    "shipments",
    "station_boots",
    "station_history",
    "station_instances",
    "stations",
    "utcnow",
]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Pass as ``conn.execution_options(**READ_ONLY)`` for a SQLite read that need not take
# the write lock (every other SQLite transaction starts with BEGIN IMMEDIATE).
READ_ONLY: dict[str, Any] = {"packline_read_only": True}

SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseUnavailable(UserError, RuntimeError):
    """The database cannot be opened or migrated; ``str()`` says why, on one line."""


def error_reason(exc: BaseException) -> str:
    """A database error's reason on one line: the driver's message, without the SQL
    and parameters SQLAlchemy appends to it."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def by_keys(
    dialect: str, select: sa.Select[Any], column: sa.ColumnElement[Any], name: str
) -> sa.Select[Any]:
    """``select`` narrowed to the rows whose ``column`` is one of the values of the list
    parameter ``name``: one index lookup per value, whatever the planner knows.

    PostgreSQL: ``unnest(:name)`` joined to ``LATERAL (select WHERE column = value
    OFFSET 0)``, one SQL text for any number of values. The ``OFFSET 0`` keeps the
    subquery from being flattened into a join; as a join, or as ``column IN (…)``, the
    plan depended on statistics — with none (a generic plan before the first ANALYZE)
    or with fresh ones on a table of some ten thousand rows, PostgreSQL hashed or
    scanned the whole table for a batch of 200 values, and ingest slowed as the tables
    grew (bench/ingest.py). A ``FOR UPDATE`` of ``select`` locks the rows of each value
    in the order of the list. SQLite: ``column IN (…)``, which it looks up by index.
    """
    if dialect != "postgresql":
        return select.where(column.in_(sa.bindparam(name, expanding=True)))
    keys = each_key(dialect, name, column.type)
    each = select.where(column == keys.c.value).offset(sa.literal_column("0")).lateral()
    return sa.select(*each.c).select_from(keys).join(each, sa.true())


def each_key(dialect: str, name: str, type_: Any) -> sa.TableValuedAlias:
    """The values of the list parameter ``name`` as a table of one column, ``value``,
    one SQL text for any number of values: PostgreSQL ``unnest(:name)``, SQLite
    ``json_each(:name)``. A correlated scalar subquery per value (``SELECT value,
    (SELECT … WHERE key = value)``) is one index lookup each on both."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        values = sa.func.unnest(sa.bindparam(name, type_=postgresql.ARRAY(type_)))
        return values.table_valued("value").render_derived()
    return sa.func.json_each(sa.bindparam(name, type_=sa.JSON)).table_valued("value")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so the value is stored
    as naive UTC text and the zone is put back on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime given for a UTC column: {value!r}")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

stations = sa.Table(
    "stations",
    metadata,
    sa.Column("station", sa.String(64), primary_key=True),
    sa.Column("site", sa.String(64), nullable=False, index=True),
    sa.Column("online", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.String(64), nullable=False, default=""),
    sa.Column("printer", sa.String(64), nullable=False, default="unknown"),
    sa.Column("printer_detail", sa.String(255), nullable=False, default=""),
    sa.Column("scanner", sa.String(64), nullable=False, default="unknown"),
    sa.Column("labels_left", sa.Integer, nullable=True),
    sa.Column("backlog", sa.Integer, nullable=False, default=0),
    sa.Column("orders_cursor", sa.BigInteger, nullable=False, default=0),
    # The last status message as received, for fields not (yet) given a column.
    sa.Column("last_status", sa.JSON, nullable=True),
    # Central's clock: when central last heard from the station itself.
    sa.Column("last_seen", UTCDateTime, nullable=True),
    # Highest seq held with no gap below it: what central acknowledges, and how far
    # the projections have been applied.
    sa.Column("acked_seq", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The station store that owns the name (the first seen); another one claiming the
    # name is refused (station_instances, name_conflict).
    sa.Column("instance_id", sa.String(64), nullable=True),
    # Central's clock when the last online status arrived, and how old the station's
    # oldest unsent event was then (by the station's own clock, so skew cancels out).
    sa.Column("status_at", UTCDateTime, nullable=True),
    sa.Column("backlog_oldest_age_s", sa.Float, nullable=True),
    # The station's wall clock minus true time, as central measured it.
    sa.Column("clock_skew_s", sa.Float, nullable=True),
    # In words, while another bench claims this station's name.
    sa.Column("name_conflict", sa.String(255), nullable=True),
    # When an admin retired it (central.floor.retire_station); a station heard from
    # after that (last_seen later) is back.
    sa.Column("retired_at", UTCDateTime, nullable=True),
    # One more on every UPDATE of the row (SQLAlchemy adds it to each statement), so
    # the sum over the stations moves with any change a process commits: the floor's
    # cache and the page's change signal compare it (central.views.floor_version).
    sa.Column(
        "revision",
        sa.BigInteger,
        nullable=False,
        default=0,
        server_default="0",
        onupdate=sa.literal_column("revision") + 1,
    ),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("station", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(64), nullable=False, index=True),
    sa.Column("at_wall", sa.Float, nullable=False),
    sa.Column("at_mono", sa.Float, nullable=False),
    sa.Column("boot_id", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    # The payload's version of its type in the catalogue (sync/events.py).
    sa.Column("version", sa.Integer, nullable=False, default=1),
    # The station store that recorded it (null from stations older than instance ids).
    sa.Column("instance_id", sa.String(64), nullable=True),
    # When it happened by true time (central.timefix); null while the station's clock
    # of that boot is not known yet: at_wall is then the best there is.
    sa.Column("at_corrected", UTCDateTime, nullable=True),
    sa.UniqueConstraint("station", "seq"),
    sa.Index("ix_events_station_boot_id", "station", "boot_id"),
)

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "event_id",
        sa.String(64),
        sa.ForeignKey("events.event_id"),
        nullable=False,
        unique=True,
    ),
    sa.Column("station", sa.String(64), nullable=False, index=True),
    sa.Column("order_no", sa.String(64), nullable=False, index=True),
    sa.Column("tracking_no", sa.String(64), nullable=False, default=""),
    sa.Column("carrier", sa.String(64), nullable=False, default=""),
    sa.Column("service", sa.String(64), nullable=False, default=""),
    sa.Column("parcel_no", sa.Integer, nullable=False, default=1),
    sa.Column("parcel_count", sa.Integer, nullable=False, default=1),
    sa.Column("operator", sa.String(64), nullable=False, default=""),
    sa.Column("print_job_id", sa.String(64), nullable=False, default=""),
    sa.Column("print_verified", sa.Boolean, nullable=False, default=False),
    # The station's clock (may be skewed) and central's clock.
    sa.Column("shipped_at", UTCDateTime, nullable=False, index=True),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    # The best known true time (central.timefix): shipped_at corrected for the
    # station's clock, or shipped_at itself while that clock is not known. skew_s is
    # shipped_at minus it (null while unknown); skewed is true when that is more than
    # skew_tolerance either way.
    sa.Column("shipped_at_corrected", UTCDateTime, nullable=False, index=True),
    sa.Column("skew_s", sa.Float, nullable=True),
    sa.Column("skewed", sa.Boolean, nullable=False, default=False),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_no", sa.String(64), primary_key=True),
    # Global, increasing on every insert or change: stations hold a cursor into it.
    sa.Column("order_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("shop", sa.String(64), nullable=False, default=""),
    sa.Column("order_type", sa.String(32), nullable=False, default="normal"),
    sa.Column("status", sa.String(32), nullable=False, default="ready"),
    # The whole order as sync.order.Order JSON (without revision).
    sa.Column("body", sa.JSON, nullable=False),
    # Why the bench would refuse the order now (sync.order.packing_blockers), in the
    # packer's words; ``blocked`` is true when there is any, for an indexed lookup.
    sa.Column("blocked", sa.Boolean, nullable=False, default=False, index=True),
    sa.Column("blocked_reasons", sa.JSON, nullable=False, default=list),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Computed at import from the deadline rules (D1) and kept with the rule they came
    # from (its version included): a rule changed later applies to later orders only.
    sa.Column("pack_by", UTCDateTime, nullable=True, index=True),
    sa.Column("ship_by", UTCDateTime, nullable=True, index=True),
    sa.Column("deadline_rule", sa.JSON, nullable=True),
)

# Named counters. ``order_seq`` is taken with UPDATE ... RETURNING inside the import
# transaction: the row lock makes concurrent imports commit in seq order, so a station
# cursor never skips an order committed late with a lower seq.
sequences = sa.Table(
    "sequences",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)


# How each boot of each station's monotonic clock relates to true time: an event's true
# time is at_mono + mono_offset. Kept at the smallest offset seen, because a message's
# delivery only ever adds delay (central.timefix).
station_boots = sa.Table(
    "station_boots",
    metadata,
    sa.Column("station", sa.String(64), primary_key=True),
    sa.Column("boot_id", sa.String(64), primary_key=True),
    sa.Column("mono_offset", sa.Float, nullable=False),
    # The station's wall clock minus true time during this boot (at the best sample).
    sa.Column("wall_skew_s", sa.Float, nullable=True),
    sa.Column("samples", sa.BigInteger, nullable=False, default=0),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Every station store seen under each station name; more than one live is two benches
# with one name.
station_instances = sa.Table(
    "station_instances",
    metadata,
    sa.Column("station", sa.String(64), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    # Messages of this instance refused because another one owns the name.
    sa.Column("refused", sa.BigInteger, nullable=False, default=0),
)

# One row per change of a station's reported health (printer, scanner, labels,
# version, online, ...): the equipment ledger and reports read it.
station_history = sa.Table(
    "station_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("station", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("old_value", sa.String(255), nullable=True),
    sa.Column("new_value", sa.String(255), nullable=True),
    sa.Index("ix_station_history_station_at", "station", "at"),
    sa.Index("ix_station_history_field_station_at", "field", "station", "at"),
)

# Messages central could not take (central.deadletters): kept, counted, never in the
# way of the next message. A message that comes again (a station resending) adds to
# ``repeats`` of its row instead of a new row.
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("first_at", UTCDateTime, nullable=False),
    sa.Column("last_at", UTCDateTime, nullable=False, index=True),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("station", sa.String(64), nullable=True, index=True),
    sa.Column("instance_id", sa.String(64), nullable=True),
    sa.Column("reason", sa.String(32), nullable=False, index=True),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sample", sa.Text, nullable=False),
    sa.Column("repeats", sa.BigInteger, nullable=False, default=1),
    sa.Column("key", sa.String(128), nullable=False, index=True),
)


def _sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's begin event emit BEGIN itself (pysqlite's own is deferred).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # A committed ack must survive a power cut: the station deletes what we ack.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another process wrote in between; taking the write lock up front
    # makes writers queue on the busy timeout instead. Reads opt out.
    if conn.get_execution_options().get("packline_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _create_engine(url: str) -> Engine:
    try:
        parsed: URL = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseUnavailable(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create the database folder {folder}: {exc.strerror}"
                ) from None
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    raise DatabaseUnavailable(
        f"unsupported database {parsed.get_backend_name()!r} in {parsed!r}: "
        "use sqlite:///PATH or postgresql+psycopg://..."
    )


#: Key of the transaction-level advisory lock that serialises migrations ("PKLM").
MIGRATION_LOCK = 0x504B4C4D


def migrate(engine: Engine) -> None:
    """Run the Alembic migrations to head on ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several central processes may start at once on one database: the first
            # migrates, the others wait here and then find nothing to do.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:c, 0)"), {"c": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_db(url: str) -> Engine:
    """An engine for ``url`` with the schema migrated to head.

    ``sqlite:///PATH`` (the parent folder is created; WAL, busy timeout) or
    ``postgresql+psycopg://user@host/db``. Raises :class:`DatabaseUnavailable` with a
    one-line reason when the database cannot be reached or migrated.
    """
    engine = _create_engine(url)
    try:
        migrate(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        reason = error_reason(exc)
        raise DatabaseUnavailable(
            f"cannot open database {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from None
    except OSError as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"cannot open database {engine.url!r}: {exc}") from None
    return engine
