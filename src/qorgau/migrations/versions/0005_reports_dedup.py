"""reports: duplicate detection (keyed place cells) and retention purge

Revision ID: 0005_reports_dedup
Revises: 0004_reports_stats
Create Date: 2026-12-01 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_reports_dedup"
down_revision = "0004_reports_stats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reports filed before this revision have no place key (their place is encrypted): they are simply
    # not suggested as duplicates.
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("place_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("purged_at", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_reports_place_key"), ["place_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_place_key"))
        batch_op.drop_column("purged_at")
        batch_op.drop_column("place_key")
