"""reports: public statistics aggregate (by region, category and month) and Open311 integration keys

Revision ID: 0004_reports_stats
Revises: 0003_reports
Create Date: 2026-12-01 15:02:46.974689
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0004_reports_stats"
down_revision = "0003_reports"
branch_labels = None
depends_on = None

# Months are counted in Kazakhstan's time (the platform's display zone), as the service does.
_ZONE = ZoneInfo("Asia/Almaty")


def upgrade() -> None:
    stats = op.create_table(
        "report_stats",
        sa.Column("region_code", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("region_code", "category", "month", name=op.f("pk_report_stats")),
    )
    op.create_table(
        "report_integrations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_report_integrations_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_integrations")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_report_integrations_key_hash")),
    )
    # Count the reports already filed (in Python, so one migration serves SQLite and PostgreSQL).
    reports = sa.table(
        "reports", sa.column("region_code", sa.String), sa.column("category", sa.String), sa.column("submitted_at")
    )
    counts: Counter[tuple[str, str, str]] = Counter()
    for region, category, at in op.get_bind().execute(
        sa.select(reports.c.region_code, reports.c.category, reports.c.submitted_at)
    ):
        month = datetime.fromtimestamp(at / 1000, UTC).astimezone(_ZONE).strftime("%Y-%m")
        counts[(region, category, month)] += 1
    if counts:
        op.bulk_insert(
            stats,
            [{"region_code": r, "category": c, "month": m, "count": n} for (r, c, m), n in sorted(counts.items())],
        )


def downgrade() -> None:
    op.drop_table("report_integrations")
    op.drop_table("report_stats")
