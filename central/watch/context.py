"""What every step of the watch works in: one transaction, one instant, the rules.

A :class:`Watch` is handed to each timer handler and to the functions that open
exceptions, raise conditions or queue alerts. It collects the alerts written in its
transaction (``fired``), so the tick can report them once the transaction commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.watch.rules import WatchRules

__all__ = ["Watch", "history_entries", "insert_ignoring", "iso", "upsert", "upsert_many", "when"]


@dataclasses.dataclass
class Watch:
    """A transaction (``conn``), the instant it acts at (``now``), the rules, the site.

    ``fired`` lists the alerts queued through it (``central.watch.alerts.Alert``), in
    order; they are sent once the transaction commits.
    """

    conn: Connection
    now: dt.datetime
    rules: WatchRules
    #: The site the tick serves (stations of other sites are not its business).
    site: str | None = None
    fired: list[Any] = dataclasses.field(default_factory=list)

    @property
    def postgres(self) -> bool:
        """True on PostgreSQL (row locks mean something there)."""
        return self.conn.dialect.name == "postgresql"


def _insert(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def upsert(
    conn: Connection,
    table: sa.Table,
    values: dict[str, Any],
    *,
    keys: list[str],
    update: list[str],
) -> None:
    """Insert ``values``, or update the columns ``update`` of the row with the same
    ``keys`` (one statement, safe against a concurrent insert)."""
    stmt = _insert(conn, table).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in update}
    )
    conn.execute(stmt)


def upsert_many(
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    *,
    keys: list[str],
    update: list[str],
) -> None:
    """:func:`upsert` of many rows of the same columns, in one executemany."""
    stmt = _insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in update}
    )
    conn.execute(stmt, rows)


def insert_ignoring(
    conn: Connection,
    table: sa.Table,
    values: dict[str, Any],
    *,
    keys: list[str],
    where: sa.ColumnElement[bool] | None = None,
    returning: sa.Column[Any],
) -> Any:
    """Insert ``values`` unless a row with the same ``keys`` exists (within the partial
    unique index ``where``); the new row's ``returning`` column, or None."""
    stmt = _insert(conn, table).values(values)
    stmt = stmt.on_conflict_do_nothing(index_elements=keys, index_where=where)
    return conn.execute(stmt.returning(returning)).scalar()


def when(moment: dt.datetime | None) -> str:
    """A time as alerts and history write it: ``2026-03-02 12:00 UTC``."""
    if moment is None:
        return "—"
    moment = moment.astimezone(dt.UTC)
    fmt = "%Y-%m-%d %H:%M:%S UTC" if moment.second else "%Y-%m-%d %H:%M UTC"
    return moment.strftime(fmt)


def iso(value: dt.datetime | None) -> str | None:
    """A stored time as the JSON of the CLI and API writes it (UTC, ISO 8601)."""
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def history_entries(
    conn: Connection, table: sa.Table, key: sa.Column[Any], value: int
) -> list[dict[str, Any]]:
    """The rows of an append-only history ``table`` (exceptions', tickets') whose
    ``key`` is ``value``, oldest first, as the CLI and API show them."""
    rows = conn.execute(sa.select(table).where(key == value).order_by(table.c.id)).mappings()
    return [
        {
            "at": iso(h["at"]),
            "by": h["by"],
            "entry": h["entry"],
            "state": h["state"],
            "text": h["text"],
            "data": h["data"],
        }
        for h in rows
    ]
