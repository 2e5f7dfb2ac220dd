"""The watch engine: deadlines, timers, escalations, exceptions and the alert outbox.

Orders get ``pack_by``, ``ship_by`` (indexed) and the deadline rule they were planned
with; orders already stored get theirs the next time they are imported. The history
of exceptions is append-only: triggers refuse UPDATE and DELETE (and, on PostgreSQL,
TRUNCATE), so a correction is always a new entry. It applies after 0004_fleet_sync:
revisions are names, their numbers are not an order.

Revision ID: 0003_watch_engine
Revises: 0004_fleet_sync
Create Date: 2026-03-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_watch_engine"
down_revision = "0004_fleet_sync"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TS = sa.DateTime(timezone=True)
APPEND_ONLY = "exception history is append-only: add a new entry instead"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("pack_by", TS, nullable=True))
        batch.add_column(sa.Column("ship_by", TS, nullable=True))
        batch.add_column(sa.Column("deadline_rule", sa.JSON, nullable=True))
    op.create_index("ix_orders_pack_by", "orders", ["pack_by"])
    op.create_index("ix_orders_ship_by", "orders", ["ship_by"])

    op.create_table(
        "timers",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("next_fire_at", TS, nullable=True),
        sa.Column("rank", sa.SmallInteger, nullable=False),
        sa.Column("fired", sa.Integer, nullable=False),
        sa.Column("last_fired_at", TS, nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
        sa.UniqueConstraint("kind", "subject", name="uq_timers_kind_subject"),
    )
    op.create_index(
        "ix_timers_next_fire_at",
        "timers",
        ["next_fire_at"],
        sqlite_where=sa.text("next_fire_at IS NOT NULL"),
        postgresql_where=sa.text("next_fire_at IS NOT NULL"),
    )

    op.create_table(
        "deadlines",
        sa.Column("order_no", sa.String(64), nullable=False),
        sa.Column("which", sa.String(8), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("warn_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("warned_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.Column("met_at", TS, nullable=True),
        sa.Column("met_station", sa.String(64), nullable=True),
        sa.Column("met_event_id", sa.String(64), nullable=True),
        sa.Column("heard_at", TS, nullable=True),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("exception_id", sa.BigInteger, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("order_no", "which", name="pk_deadlines"),
    )
    op.create_index("ix_deadlines_due_at", "deadlines", ["due_at"])
    op.create_index("ix_deadlines_state", "deadlines", ["state"])

    op.create_table(
        "escalations",
        sa.Column("id", ID, nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("dept", sa.String(48), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("order_no", sa.String(64), nullable=True),
        sa.Column("exception_id", sa.BigInteger, nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("settle_on_ack", sa.Boolean, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("acked_at", TS, nullable=True),
        sa.Column("acked_by", sa.String(64), nullable=True),
        sa.Column("settled_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
    )
    op.create_index("ix_escalations_dedup_key", "escalations", ["dedup_key"])
    op.create_index(
        "uq_escalations_active_dedup_key",
        "escalations",
        ["dedup_key"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )

    op.create_table(
        "exceptions",
        sa.Column("id", ID, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("order_no", sa.String(64), nullable=True),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("found_at", TS, nullable=False),
        sa.Column("found_by", sa.String(64), nullable=False),
        sa.Column("cause_class", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("dept", sa.String(48), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("plan_due_at", TS, nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("plan", sa.Text, nullable=True),
        sa.Column("plan_at", TS, nullable=True),
        sa.Column("plan_by", sa.String(64), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("report", sa.JSON, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("source_key", sa.String(200), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exceptions"),
        sa.UniqueConstraint("source_key", name="uq_exceptions_source_key"),
    )
    op.create_index("ix_exceptions_type", "exceptions", ["type"])
    op.create_index("ix_exceptions_order_no", "exceptions", ["order_no"])
    op.create_index("ix_exceptions_state", "exceptions", ["state"])

    op.create_table(
        "exception_history",
        sa.Column("id", ID, nullable=False),
        sa.Column("exception_id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("entry", sa.String(24), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exception_history"),
        sa.ForeignKeyConstraint(
            ["exception_id"],
            ["exceptions.id"],
            name="fk_exception_history_exception_id_exceptions",
        ),
    )
    op.create_index("ix_exception_history_exception_id", "exception_history", ["exception_id"])

    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("dept", sa.String(48), nullable=False),
        sa.Column("to", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("order_no", sa.String(64), nullable=True),
        sa.Column("exception_id", sa.BigInteger, nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("published_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("alert_id", name="uq_alerts_alert_id"),
    )
    op.create_index("ix_alerts_dedup_key", "alerts", ["dedup_key"])
    op.create_index("ix_alerts_order_no", "alerts", ["order_no"])
    op.create_index("ix_alerts_exception_id", "alerts", ["exception_id"])
    op.create_index(
        "ix_alerts_unpublished",
        "alerts",
        ["id"],
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )

    _append_only("exception_history")


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE) on ``table``, in the database itself."""
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION packline_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"RAISE EXCEPTION '{APPEND_ONLY} (%)', TG_TABLE_NAME; "
        "END $$"
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION packline_append_only()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION packline_append_only()"
    )


def downgrade() -> None:
    # Dropping the table drops its triggers; the function is shared, so it stays.
    op.drop_table("alerts")
    op.drop_table("exception_history")
    op.drop_table("exceptions")
    op.drop_table("escalations")
    op.drop_table("deadlines")
    op.drop_table("timers")
    op.drop_index("ix_orders_ship_by", table_name="orders")
    op.drop_index("ix_orders_pack_by", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("deadline_rule")
        batch.drop_column("ship_by")
        batch.drop_column("pack_by")
