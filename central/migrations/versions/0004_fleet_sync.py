"""Fleet sync: corrected times, station health history, name claims, dead letters.

- ``events`` keep the payload's ``version`` (events held back by a gap used to be
  decoded as version 1), the ``instance_id`` of the store that recorded them and
  ``at_corrected``, the true time when the station's clock is known (C2);
- ``shipments`` keep the station's claim (``shipped_at``) and gain
  ``shipped_at_corrected``, ``skew_s`` and ``skewed``; rows already stored keep their
  claim as the best known time;
- ``stations`` gain the owning ``instance_id``, ``status_at``,
  ``backlog_oldest_age_s``, ``clock_skew_s`` and ``name_conflict``;
- new tables ``station_boots``, ``station_instances``, ``station_history`` and
  ``dead_letters``.

Revision ID: 0004_fleet_sync
Revises: 0002_order_blocked_reasons
Create Date: 2026-02-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_fleet_sync"
down_revision = "0002_order_blocked_reasons"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("instance_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("at_corrected", TS, nullable=True))
    op.create_index("ix_events_station_boot_id", "events", ["station", "boot_id"])

    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("shipped_at_corrected", TS, nullable=True))
        batch.add_column(sa.Column("skew_s", sa.Float, nullable=True))
        batch.add_column(sa.Column("skewed", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute("UPDATE shipments SET shipped_at_corrected = shipped_at")
    with op.batch_alter_table("shipments") as batch:
        batch.alter_column("shipped_at_corrected", existing_type=TS, nullable=False)
    op.create_index("ix_shipments_shipped_at_corrected", "shipments", ["shipped_at_corrected"])

    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("instance_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("status_at", TS, nullable=True))
        batch.add_column(sa.Column("backlog_oldest_age_s", sa.Float, nullable=True))
        batch.add_column(sa.Column("clock_skew_s", sa.Float, nullable=True))
        batch.add_column(sa.Column("name_conflict", sa.String(255), nullable=True))

    op.create_table(
        "station_boots",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("boot_id", sa.String(64), nullable=False),
        sa.Column("mono_offset", sa.Float, nullable=False),
        sa.Column("wall_skew_s", sa.Float, nullable=True),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("station", "boot_id", name="pk_station_boots"),
    )
    op.create_table(
        "station_instances",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("refused", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("station", "instance_id", name="pk_station_instances"),
    )
    op.create_table(
        "station_history",
        sa.Column("id", ID, nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("old_value", sa.String(255), nullable=True),
        sa.Column("new_value", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_station_history"),
    )
    op.create_index("ix_station_history_station_at", "station_history", ["station", "at"])
    op.create_table(
        "dead_letters",
        sa.Column("id", ID, nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("instance_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sample", sa.Text, nullable=False),
        sa.Column("repeats", sa.BigInteger, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    for column in ("last_at", "station", "reason", "key"):
        op.create_index(f"ix_dead_letters_{column}", "dead_letters", [column])


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("station_history")
    op.drop_table("station_instances")
    op.drop_table("station_boots")
    with op.batch_alter_table("stations") as batch:
        for column in (
            "name_conflict",
            "clock_skew_s",
            "backlog_oldest_age_s",
            "status_at",
            "instance_id",
        ):
            batch.drop_column(column)
    op.drop_index("ix_shipments_shipped_at_corrected", table_name="shipments")
    with op.batch_alter_table("shipments") as batch:
        for column in ("skewed", "skew_s", "shipped_at_corrected"):
            batch.drop_column(column)
    op.drop_index("ix_events_station_boot_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        for column in ("at_corrected", "instance_id", "version"):
            batch.drop_column(column)
