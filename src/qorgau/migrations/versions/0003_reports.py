"""reports: unit keys, reports, history, messages, attachments, reveal requests, notifications

Revision ID: 0003_reports
Revises: 0002_messenger
Create Date: 2026-12-01 14:09:21.222987
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_reports"
down_revision = "0002_messenger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_unit_keys",
        sa.Column("agency_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("private_key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_report_unit_keys_agency_id_agencies")),
        sa.PrimaryKeyConstraint("agency_id", name=op.f("pk_report_unit_keys")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("region_code", sa.String(length=32), nullable=False),
        sa.Column("unit_id", sa.String(length=32), nullable=False),
        sa.Column("routed_by_fallback", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("named", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reporter_ref", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("submitted_at", sa.BigInteger(), nullable=False),
        sa.Column("status_at", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("duplicate_of", sa.String(length=32), nullable=True),
        sa.Column("unread_reply", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("receipt_index", sa.String(length=64), nullable=True),
        sa.Column("receipt_verifier", sa.String(length=128), nullable=True),
        sa.Column("data_key_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("content_enc", sa.LargeBinary(), nullable=False),
        sa.Column("identity_enc", sa.LargeBinary(), nullable=True),
        sa.Column("public_text_enc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["duplicate_of"], ["reports.id"], name=op.f("fk_reports_duplicate_of_reports")),
        sa.ForeignKeyConstraint(["unit_id"], ["agencies.id"], name=op.f("fk_reports_unit_id_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("receipt_index", name=op.f("uq_reports_receipt_index")),
        sa.UniqueConstraint("ref", name=op.f("uq_reports_ref")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_reporter_ref"), ["reporter_ref"], unique=False)
        batch_op.create_index("ix_reports_unit_id_status", ["unit_id", "status"], unique=False)

    op.create_table(
        "report_history",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=32), nullable=True),
        sa.Column("related", sa.String(length=32), nullable=True),
        sa.Column("note_enc", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_report_history_actor_id_users")),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_history_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_history")),
    )
    with op.batch_alter_table("report_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_history_report_id"), ["report_id"], unique=False)

    op.create_table(
        "report_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=True),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("client_nonce", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_report_messages_author_id_users")),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_messages_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_messages")),
        sa.UniqueConstraint("report_id", "client_nonce", name="uq_report_messages_report_id_client_nonce"),
    )
    op.create_table(
        "report_notifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("reporter_ref", sa.String(length=64), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("read_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_notifications_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_notifications")),
    )
    with op.batch_alter_table("report_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_notifications_reporter_ref"), ["reporter_ref"], unique=False)

    op.create_table(
        "report_reveals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("justification_enc", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("decision_note_enc", sa.LargeBinary(), nullable=True),
        sa.Column("revealed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name=op.f("fk_report_reveals_decided_by_users")),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_reveals_report_id_reports")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_report_reveals_requested_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_reveals")),
    )
    with op.batch_alter_table("report_reveals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_reveals_report_id"), ["report_id"], unique=False)

    op.create_table(
        "report_attachments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("scrubbed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("data_enc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["report_messages.id"], name=op.f("fk_report_attachments_message_id_report_messages")
        ),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_attachments_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_attachments")),
    )
    with op.batch_alter_table("report_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_attachments_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_attachments_report_id"))

    op.drop_table("report_attachments")
    with op.batch_alter_table("report_reveals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_reveals_report_id"))

    op.drop_table("report_reveals")
    with op.batch_alter_table("report_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_notifications_reporter_ref"))

    op.drop_table("report_notifications")
    op.drop_table("report_messages")
    with op.batch_alter_table("report_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_history_report_id"))

    op.drop_table("report_history")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_unit_id_status")
        batch_op.drop_index(batch_op.f("ix_reports_reporter_ref"))

    op.drop_table("reports")
    op.drop_table("report_unit_keys")
