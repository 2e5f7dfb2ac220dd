"""Initial schema: stations, events, shipments, orders, sequences.

Revision ID: 0001_initial
Revises:
Create Date: 2026-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("printer", sa.String(64), nullable=False),
        sa.Column("printer_detail", sa.String(255), nullable=False),
        sa.Column("scanner", sa.String(64), nullable=False),
        sa.Column("labels_left", sa.Integer, nullable=True),
        sa.Column("backlog", sa.Integer, nullable=False),
        sa.Column("orders_cursor", sa.BigInteger, nullable=False),
        sa.Column("last_status", sa.JSON, nullable=True),
        sa.Column("last_seen", TS, nullable=True),
        sa.Column("acked_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("station", name="pk_stations"),
    )
    op.create_index("ix_stations_site", "stations", ["site"])

    op.create_table(
        "events",
        sa.Column("id", ID, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("at_wall", sa.Float, nullable=False),
        sa.Column("at_mono", sa.Float, nullable=False),
        sa.Column("boot_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
        sa.UniqueConstraint("station", "seq", name="uq_events_station_seq"),
    )
    op.create_index("ix_events_type", "events", ["type"])

    op.create_table(
        "shipments",
        sa.Column("id", ID, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("order_no", sa.String(64), nullable=False),
        sa.Column("tracking_no", sa.String(64), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("parcel_no", sa.Integer, nullable=False),
        sa.Column("parcel_count", sa.Integer, nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("print_job_id", sa.String(64), nullable=False),
        sa.Column("print_verified", sa.Boolean, nullable=False),
        sa.Column("shipped_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shipments"),
        sa.UniqueConstraint("event_id", name="uq_shipments_event_id"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.event_id"], name="fk_shipments_event_id_events"
        ),
    )
    op.create_index("ix_shipments_station", "shipments", ["station"])
    op.create_index("ix_shipments_order_no", "shipments", ["order_no"])
    op.create_index("ix_shipments_shipped_at", "shipments", ["shipped_at"])

    op.create_table(
        "orders",
        sa.Column("order_no", sa.String(64), nullable=False),
        sa.Column("order_seq", sa.BigInteger, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("shop", sa.String(64), nullable=False),
        sa.Column("order_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("order_no", name="pk_orders"),
        sa.UniqueConstraint("order_seq", name="uq_orders_order_seq"),
    )

    sequences = op.create_table(
        "sequences",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sequences"),
    )
    op.bulk_insert(sequences, [{"name": "order_seq", "value": 0}])


def downgrade() -> None:
    op.drop_table("sequences")
    op.drop_table("orders")
    op.drop_table("shipments")
    op.drop_table("events")
    op.drop_table("stations")
