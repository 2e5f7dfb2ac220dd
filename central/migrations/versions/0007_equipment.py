"""Equipment ledger (A4): maintenance entries added by hand, kept append-only.

The devices themselves (model, serial or device, station, first seen, faults) are read
from what the stations report (``station_history``, ``device.state`` events); what no
station can report — a repair, a cleaning, an install date — is a row of
``equipment_notes``. Triggers refuse UPDATE and DELETE on it (and TRUNCATE on
PostgreSQL): a correction is a new entry.

Revision ID: 0007_equipment
Revises: 0003_watch_engine
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_equipment"
down_revision = "0003_watch_engine"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TS = sa.DateTime(timezone=True)
APPEND_ONLY = "equipment notes are append-only: add a new entry instead"


def upgrade() -> None:
    op.create_table(
        "equipment_notes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("device", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_equipment_notes"),
    )
    op.create_index("ix_equipment_notes_station_device", "equipment_notes", ["station", "device"])
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER equipment_notes_no_{action.lower()} BEFORE {action} "
                f"ON equipment_notes BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION packline_equipment_append_only() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
    )
    op.execute(
        "CREATE TRIGGER equipment_notes_append_only BEFORE UPDATE OR DELETE ON equipment_notes "
        "FOR EACH ROW EXECUTE FUNCTION packline_equipment_append_only()"
    )
    op.execute(
        "CREATE TRIGGER equipment_notes_no_truncate BEFORE TRUNCATE ON equipment_notes "
        "FOR EACH STATEMENT EXECUTE FUNCTION packline_equipment_append_only()"
    )


def downgrade() -> None:
    op.drop_table("equipment_notes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS packline_equipment_append_only()")
