"""messenger: official letters, government notices, legal hold of rooms

Revision ID: 0007_messenger_letters
Revises: 0006_kernel_invites
Create Date: 2026-12-01 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_messenger_letters"
down_revision = "0006_kernel_invites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messenger_media_rooms",
        sa.Column("media_id", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"], ["messenger_media.media_id"], name=op.f("fk_messenger_media_rooms_media_id_messenger_media")
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["messenger_rooms.room_id"], name=op.f("fk_messenger_media_rooms_room_id_messenger_rooms")
        ),
        sa.PrimaryKeyConstraint("media_id", "room_id", name=op.f("pk_messenger_media_rooms")),
    )
    op.create_index(op.f("ix_messenger_media_rooms_room_id"), "messenger_media_rooms", ["room_id"], unique=False)
    # Files shared before this revision keep only their uploader's access (their events are sealed,
    # and a migration holds no keys to read them); no deployment predates it.
    with op.batch_alter_table("messenger_rooms") as batch:
        batch.add_column(sa.Column("legal_hold", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("legal_hold_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("legal_hold_since", sa.BigInteger(), nullable=True))
    op.create_table(
        "messenger_letter_registers",
        sa.Column("agency_id", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("last_number", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_messenger_letter_registers_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("agency_id", "year", name=op.f("pk_messenger_letter_registers")),
    )
    op.create_table(
        "messenger_letters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("agency_id", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("reg_number", sa.String(length=40), nullable=False),
        sa.Column("sender_account_id", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("dsp", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.Column("in_reply_to", sa.String(length=32), nullable=True),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_messenger_letters_agency_id_agencies")),
        sa.ForeignKeyConstraint(
            ["in_reply_to"], ["messenger_letters.id"], name=op.f("fk_messenger_letters_in_reply_to_messenger_letters")
        ),
        sa.ForeignKeyConstraint(
            ["sender_account_id"], ["users.id"], name=op.f("fk_messenger_letters_sender_account_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messenger_letters")),
        sa.UniqueConstraint("agency_id", "year", "number", name="uq_messenger_letters_number"),
    )
    op.create_index(op.f("ix_messenger_letters_agency_id"), "messenger_letters", ["agency_id"], unique=False)
    op.create_index(op.f("ix_messenger_letters_in_reply_to"), "messenger_letters", ["in_reply_to"], unique=False)
    op.create_index(op.f("ix_messenger_letters_registered_at"), "messenger_letters", ["registered_at"], unique=False)
    op.create_table(
        "messenger_notices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sender_account_id", sa.String(length=32), nullable=False),
        sa.Column("sender_agency_id", sa.String(length=32), nullable=True),
        sa.Column("title", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_account_id"], ["users.id"], name=op.f("fk_messenger_notices_sender_account_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["sender_agency_id"], ["agencies.id"], name=op.f("fk_messenger_notices_sender_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messenger_notices")),
    )
    op.create_index(op.f("ix_messenger_notices_created_at"), "messenger_notices", ["created_at"], unique=False)
    op.create_index(
        op.f("ix_messenger_notices_sender_account_id"), "messenger_notices", ["sender_account_id"], unique=False
    )
    op.create_index(
        op.f("ix_messenger_notices_sender_agency_id"), "messenger_notices", ["sender_agency_id"], unique=False
    )
    op.create_table(
        "messenger_letter_addressees",
        sa.Column("letter_id", sa.String(length=32), nullable=False),
        sa.Column("agency_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("read_at", sa.BigInteger(), nullable=True),
        sa.Column("read_by", sa.String(length=32), nullable=True),
        sa.Column("answered_at", sa.BigInteger(), nullable=True),
        sa.Column("answer_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_messenger_letter_addressees_account_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_messenger_letter_addressees_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["messenger_letters.id"],
            name=op.f("fk_messenger_letter_addressees_answer_id_messenger_letters"),
        ),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["messenger_letters.id"],
            name=op.f("fk_messenger_letter_addressees_letter_id_messenger_letters"),
        ),
        sa.ForeignKeyConstraint(["read_by"], ["users.id"], name=op.f("fk_messenger_letter_addressees_read_by_users")),
        sa.PrimaryKeyConstraint("letter_id", "agency_id", name=op.f("pk_messenger_letter_addressees")),
    )
    op.create_index(
        "ix_messenger_letter_addressees_agency_state",
        "messenger_letter_addressees",
        ["agency_id", "state"],
        unique=False,
    )
    op.create_table(
        "messenger_letter_attachments",
        sa.Column("letter_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["messenger_letters.id"],
            name=op.f("fk_messenger_letter_attachments_letter_id_messenger_letters"),
        ),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["messenger_media.media_id"],
            name=op.f("fk_messenger_letter_attachments_media_id_messenger_media"),
        ),
        sa.PrimaryKeyConstraint("letter_id", "position", name=op.f("pk_messenger_letter_attachments")),
    )
    op.create_table(
        "messenger_notice_recipients",
        sa.Column("notice_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("agency_id", sa.String(length=32), nullable=True),
        sa.Column("confirmed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["users.id"],
            name=op.f("fk_messenger_notice_recipients_account_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["messenger_notices.id"],
            name=op.f("fk_messenger_notice_recipients_notice_id_messenger_notices"),
        ),
        sa.PrimaryKeyConstraint("notice_id", "account_id", name=op.f("pk_messenger_notice_recipients")),
    )
    op.create_index(
        "ix_messenger_notice_recipients_account",
        "messenger_notice_recipients",
        ["account_id", "confirmed_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_messenger_notice_recipients_account", table_name="messenger_notice_recipients")
    op.drop_table("messenger_notice_recipients")
    op.drop_table("messenger_letter_attachments")
    op.drop_index("ix_messenger_letter_addressees_agency_state", table_name="messenger_letter_addressees")
    op.drop_table("messenger_letter_addressees")
    op.drop_index(op.f("ix_messenger_notices_sender_agency_id"), table_name="messenger_notices")
    op.drop_index(op.f("ix_messenger_notices_sender_account_id"), table_name="messenger_notices")
    op.drop_index(op.f("ix_messenger_notices_created_at"), table_name="messenger_notices")
    op.drop_table("messenger_notices")
    op.drop_index(op.f("ix_messenger_letters_registered_at"), table_name="messenger_letters")
    op.drop_index(op.f("ix_messenger_letters_in_reply_to"), table_name="messenger_letters")
    op.drop_index(op.f("ix_messenger_letters_agency_id"), table_name="messenger_letters")
    op.drop_table("messenger_letters")
    op.drop_table("messenger_letter_registers")
    with op.batch_alter_table("messenger_rooms") as batch:
        batch.drop_column("legal_hold_since")
        batch.drop_column("legal_hold_reason")
        batch.drop_column("legal_hold")
    op.drop_index(op.f("ix_messenger_media_rooms_room_id"), table_name="messenger_media_rooms")
    op.drop_table("messenger_media_rooms")
