"""Orders keep why the bench would refuse them: ``blocked`` and ``blocked_reasons``.

An order that is valid but cannot be packed yet (no tracking number, no address, on
hold) is imported with the reasons of :func:`sync.order.packing_blockers`. Orders
already stored get them here. One whose stored body the order rules now refuse (a
file imported before the rules were one) is marked blocked with that reason, so it
shows on the page instead of silently never reaching a bench; importing it again
fixes it.

Revision ID: 0002_order_blocked_reasons
Revises: 0001_initial
Create Date: 2026-02-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync.order import InvalidOrder, packing_blockers, validate_order

revision = "0002_order_blocked_reasons"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("blocked_reasons", sa.JSON, nullable=False, server_default=sa.text("'[]'"))
        )
    op.create_index("ix_orders_blocked", "orders", ["blocked"])

    orders = sa.table(
        "orders",
        sa.column("order_no", sa.String),
        sa.column("body", sa.JSON),
        sa.column("blocked", sa.Boolean),
        sa.column("blocked_reasons", sa.JSON),
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(orders.c.order_no, orders.c.body)).all():
        try:
            reasons = packing_blockers(validate_order(row.body))
        except InvalidOrder as exc:
            reasons = [f"stored order breaks the order rules ({exc}): import it again"]
        if reasons:
            conn.execute(
                orders.update()
                .where(orders.c.order_no == row.order_no)
                .values(blocked=True, blocked_reasons=reasons)
            )


def downgrade() -> None:
    op.drop_index("ix_orders_blocked", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("blocked_reasons")
        batch.drop_column("blocked")
