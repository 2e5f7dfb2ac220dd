"""The watch reacts to stored events after their batch is acknowledged
(``central.watch.reactor``): ``watch_cursors`` holds, per station, the seq up to which
it has.

Every event already stored was reacted to in its batch's transaction, so each station
starts at its acknowledged seq.

Revision ID: 0011_watch_cursors
Revises: 0010_station_revision
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_watch_cursors"
down_revision = "0010_station_revision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watch_cursors",
        sa.Column("station", sa.String(64), primary_key=True),
        sa.Column("reacted_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "INSERT INTO watch_cursors (station, reacted_seq, updated_at) "
        "SELECT station, acked_seq, CURRENT_TIMESTAMP FROM stations"
    )


def downgrade() -> None:
    op.drop_table("watch_cursors")
