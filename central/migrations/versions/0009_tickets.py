"""After-sales tickets (D7) with their append-only history, and carrier scans.

``tickets`` and ``ticket_history`` (triggers refuse UPDATE and DELETE on the history,
as on ``exception_history``); ``tracking_scans``: the carriers' scans imported by
``packline central import-tracking``, one row per (tracking number, time, status).

Revision ID: 0009_tickets
Revises: 0008_floor
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from central.migrations.append_only import append_only

revision = "0009_tickets"
down_revision = "0008_floor"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", ID, primary_key=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("order_no", sa.String(64), nullable=True),
        sa.Column("customer", sa.String(128), nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("dept", sa.String(48), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False, server_default="1"),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("respond_by", TS, nullable=False),
        sa.Column("responded_at", TS, nullable=True),
        sa.Column("responded_by", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("confirmation", sa.Text, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_tickets_category", "tickets", ["category"])
    op.create_index("ix_tickets_order_no", "tickets", ["order_no"])
    op.create_index("ix_tickets_state", "tickets", ["state"])
    op.create_table(
        "ticket_history",
        sa.Column("id", ID, primary_key=True),
        sa.Column("ticket_id", ID, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("entry", sa.String(24), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.JSON, nullable=True),
    )
    op.create_index("ix_ticket_history_ticket_id", "ticket_history", ["ticket_id"])
    append_only("ticket_history", "ticket history is append-only: add a new entry instead")
    op.create_table(
        "tracking_scans",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tracking_no", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("location", sa.String(200), nullable=False, server_default=""),
        sa.Column("imported_at", TS, nullable=False),
        sa.UniqueConstraint("tracking_no", "at", "status", name="uq_tracking_scans_scan"),
    )
    op.create_index("ix_tracking_scans_tracking_no", "tracking_scans", ["tracking_no"])


def downgrade() -> None:
    op.drop_table("tracking_scans")
    op.drop_table("ticket_history")
    op.drop_table("tickets")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ticket_history_append_only()")
