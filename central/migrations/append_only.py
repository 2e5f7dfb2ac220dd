"""Append-only tables, enforced by the database itself (for the migrations).

:func:`append_only` installs triggers that refuse UPDATE and DELETE on a table (and
TRUNCATE on PostgreSQL) with ``message``: history is corrected by a new entry, never by
rewriting an old one.
"""

from __future__ import annotations

from alembic import op

__all__ = ["append_only"]


def append_only(table: str, message: str) -> None:
    """Refuse UPDATE, DELETE (and TRUNCATE) on ``table`` with ``message``."""
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        return
    function = f"{table}_append_only"
    op.execute(
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )
