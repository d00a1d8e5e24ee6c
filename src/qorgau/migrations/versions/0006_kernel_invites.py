"""kernel: invitation links for officials and onboarding

Revision ID: 0006_kernel_invites
Revises: 0005_reports_dedup
Create Date: 2026-12-01 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_kernel_invites"
down_revision = "0005_reports_dedup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table rebuild on SQLite: `users` is referenced by many foreign keys).
    op.add_column("users", sa.Column("joined_at", sa.BigInteger(), nullable=True))
    # Accounts that already have a password were set up by an operator: they count as joined at creation.
    op.execute(sa.text("UPDATE users SET joined_at = created_at WHERE password_hash IS NOT NULL"))
    op.create_table(
        "account_invites",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_account_invites_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_invites_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_invites_token_hash")),
    )
    with op.batch_alter_table("account_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_invites_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("account_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_invites_user_id"))
    op.drop_table("account_invites")
    # SQLite ≥ 3.35 drops a column in place; a batch rebuild would cascade through the foreign keys.
    op.drop_column("users", "joined_at")
