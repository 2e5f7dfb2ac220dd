"""Alembic environment: runs on the connection :func:`central.db.migrate` passes in.

No alembic.ini and no logging set-up here: the service owns both.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from central.db import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the central migrations through central.db.open_db(url)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
