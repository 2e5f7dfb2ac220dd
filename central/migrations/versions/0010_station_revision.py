"""The floor's cache (docs/web.md): ``stations.revision``, one more on every change.

Every UPDATE of a station's row adds one to it, so the sum over the stations tells
any process whether the floor changed since it last read it, whichever process wrote.

Revision ID: 0010_station_revision
Revises: 0009_tickets
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_station_revision"
down_revision = "0009_tickets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("revision")
