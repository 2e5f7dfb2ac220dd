"""The floor (docs/web.md): retiring a station, and when each went online or offline.

- ``stations.retired_at``: set when an admin retires a station that no longer exists;
  it leaves the floor and the offline alerts until it is heard from again;
- an index on ``station_history (field, station, at)``, so "online since" is read from
  the ``online`` rows alone, not from every label count ever reported.

Revision ID: 0008_floor
Revises: 0005_users
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_floor"
down_revision = "0005_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_station_history_field_station_at", "station_history", ["field", "station", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_station_history_field_station_at", "station_history")
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("retired_at")
