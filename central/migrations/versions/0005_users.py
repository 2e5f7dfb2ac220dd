"""Users of the web page and API (docs/web.md): roles, argon2 password hashes, browser
sessions and API tokens (both kept as SHA-256 hashes of the secret only).

Revision ID: 0005_users
Revises: 0007_equipment
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_users"
down_revision = "0007_equipment"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("dept", sa.String(48), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    session_columns = [
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    ]
    token_columns = [
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
    ]
    for table, extra in (("web_sessions", session_columns), ("api_tokens", token_columns)):
        op.create_table(
            table,
            sa.Column("token_hash", sa.String(64), nullable=False),
            sa.Column("user_name", sa.String(64), nullable=False),
            *extra,
            sa.PrimaryKeyConstraint("token_hash", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["user_name"],
                ["users.name"],
                name=f"fk_{table}_user_name_users",
                ondelete="CASCADE",
            ),
        )
        op.create_index(f"ix_{table}_user_name", table, ["user_name"])


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("web_sessions")
    op.drop_table("users")
