"""messenger: rooms, events, state, devices, keys, media

Revision ID: 0002_messenger
Revises: 0001_kernel
Create Date: 2026-12-01 14:10:31.109089
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_messenger"
down_revision = "0001_kernel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messenger_account_data",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messenger_account_data")),
        sa.UniqueConstraint("user_id", "room_id", "type", name="uq_messenger_account_data_user_id"),
    )
    with op.batch_alter_table("messenger_account_data", schema=None) as batch_op:
        batch_op.create_index("ix_messenger_account_data_user_stream", ["user_id", "stream_id"], unique=False)

    op.create_table(
        "messenger_device_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("keys_json", sa.Text(), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id", name=op.f("pk_messenger_device_keys")),
    )
    op.create_table(
        "messenger_fallback_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=255), nullable=False),
        sa.Column("key_json", sa.Text(), nullable=False),
        sa.Column("used", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id", "algorithm", name=op.f("pk_messenger_fallback_keys")),
    )
    op.create_table(
        "messenger_filters",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("filter_id", sa.String(length=32), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "filter_id", name=op.f("pk_messenger_filters")),
    )
    op.create_table(
        "messenger_key_changes",
        sa.Column(
            "stream_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_messenger_key_changes")),
    )
    with op.batch_alter_table("messenger_key_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messenger_key_changes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "messenger_media",
        sa.Column("media_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("dsp", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("filename", sa.LargeBinary(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_messenger_media")),
    )
    with op.batch_alter_table("messenger_media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messenger_media_account_id"), ["account_id"], unique=False)

    op.create_table(
        "messenger_one_time_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.String(length=255), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("key_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id", "key_id", name=op.f("pk_messenger_one_time_keys")),
    )
    with op.batch_alter_table("messenger_one_time_keys", schema=None) as batch_op:
        batch_op.create_index("ix_messenger_one_time_keys_device", ["user_id", "device_id", "algorithm"], unique=False)

    op.create_table(
        "messenger_profiles",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("displayname", sa.String(length=255), nullable=True),
        sa.Column("avatar_url", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_messenger_profiles")),
    )
    op.create_table(
        "messenger_rooms",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("creator", sa.String(length=255), nullable=False),
        sa.Column("agency_id", sa.String(length=32), nullable=True),
        sa.Column("room_version", sa.String(length=16), nullable=False),
        sa.Column("is_direct", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("dsp", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("join_rule", sa.String(length=16), server_default="invite", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_messenger_rooms")),
    )
    with op.batch_alter_table("messenger_rooms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messenger_rooms_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "messenger_to_device",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("txn_device", sa.String(length=32), nullable=True),
        sa.Column("txn_id", sa.String(length=255), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messenger_to_device")),
    )
    with op.batch_alter_table("messenger_to_device", schema=None) as batch_op:
        batch_op.create_index("ix_messenger_to_device_inbox", ["user_id", "device_id", "stream_id"], unique=False)
        batch_op.create_index("ix_messenger_to_device_txn", ["txn_device", "txn_id"], unique=False)

    op.create_table(
        "messenger_aliases",
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("creator", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["messenger_rooms.room_id"], name=op.f("fk_messenger_aliases_room_id_messenger_rooms")
        ),
        sa.PrimaryKeyConstraint("alias", name=op.f("pk_messenger_aliases")),
    )
    with op.batch_alter_table("messenger_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messenger_aliases_room_id"), ["room_id"], unique=False)

    op.create_table(
        "messenger_events",
        sa.Column(
            "stream_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("state_key", sa.String(length=255), nullable=True),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("origin_server_ts", sa.BigInteger(), nullable=False),
        sa.Column("membership", sa.String(length=8), nullable=True),
        sa.Column("prev_membership", sa.String(length=8), nullable=True),
        sa.Column("redacts", sa.String(length=64), nullable=True),
        sa.Column("redacted_by", sa.String(length=64), nullable=True),
        sa.Column("txn_device", sa.String(length=32), nullable=True),
        sa.Column("txn_id", sa.String(length=255), nullable=True),
        sa.Column("dsp", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["messenger_rooms.room_id"], name=op.f("fk_messenger_events_room_id_messenger_rooms")
        ),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_messenger_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_messenger_events_event_id")),
        sa.UniqueConstraint("txn_device", "txn_id", name="uq_messenger_events_txn"),
    )
    with op.batch_alter_table("messenger_events", schema=None) as batch_op:
        batch_op.create_index("ix_messenger_events_member", ["state_key", "type", "stream_id"], unique=False)
        batch_op.create_index("ix_messenger_events_room_stream", ["room_id", "stream_id"], unique=False)

    op.create_table(
        "messenger_media_thumbnails",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("media_id", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["messenger_media.media_id"],
            name=op.f("fk_messenger_media_thumbnails_media_id_messenger_media"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messenger_media_thumbnails")),
        sa.UniqueConstraint("media_id", "width", "height", "method", name="uq_messenger_media_thumbnails_media_id"),
    )
    op.create_table(
        "messenger_members",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("agency_id", sa.String(length=32), nullable=True),
        sa.Column("membership", sa.String(length=8), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["messenger_rooms.room_id"], name=op.f("fk_messenger_members_room_id_messenger_rooms")
        ),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_messenger_members")),
    )
    with op.batch_alter_table("messenger_members", schema=None) as batch_op:
        batch_op.create_index("ix_messenger_members_room", ["room_id", "membership"], unique=False)
        batch_op.create_index("ix_messenger_members_user", ["user_id", "membership"], unique=False)

    op.create_table(
        "messenger_receipts",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("receipt_type", sa.String(length=32), nullable=False),
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_stream_id", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["messenger_rooms.room_id"], name=op.f("fk_messenger_receipts_room_id_messenger_rooms")
        ),
        sa.PrimaryKeyConstraint("room_id", "user_id", "receipt_type", "thread_id", name=op.f("pk_messenger_receipts")),
    )
    with op.batch_alter_table("messenger_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messenger_receipts_stream_id"), ["stream_id"], unique=False)

    op.create_table(
        "messenger_room_state",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("state_key", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["messenger_rooms.room_id"], name=op.f("fk_messenger_room_state_room_id_messenger_rooms")
        ),
        sa.PrimaryKeyConstraint("room_id", "type", "state_key", name=op.f("pk_messenger_room_state")),
    )
    op.create_table(
        "messenger_typing",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["messenger_rooms.room_id"], name=op.f("fk_messenger_typing_room_id_messenger_rooms")
        ),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_messenger_typing")),
    )
    op.create_table(
        "messenger_devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_messenger_devices_account_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messenger_devices")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_messenger_devices_token_hash")),
        sa.UniqueConstraint("user_id", "device_id", name="uq_messenger_devices_user_device"),
    )
    with op.batch_alter_table("messenger_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messenger_devices_account_id"), ["account_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messenger_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messenger_devices_account_id"))

    op.drop_table("messenger_devices")
    op.drop_table("messenger_typing")
    op.drop_table("messenger_room_state")
    with op.batch_alter_table("messenger_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messenger_receipts_stream_id"))

    op.drop_table("messenger_receipts")
    with op.batch_alter_table("messenger_members", schema=None) as batch_op:
        batch_op.drop_index("ix_messenger_members_user")
        batch_op.drop_index("ix_messenger_members_room")

    op.drop_table("messenger_members")
    op.drop_table("messenger_media_thumbnails")
    with op.batch_alter_table("messenger_events", schema=None) as batch_op:
        batch_op.drop_index("ix_messenger_events_room_stream")
        batch_op.drop_index("ix_messenger_events_member")

    op.drop_table("messenger_events")
    with op.batch_alter_table("messenger_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messenger_aliases_room_id"))

    op.drop_table("messenger_aliases")
    with op.batch_alter_table("messenger_to_device", schema=None) as batch_op:
        batch_op.drop_index("ix_messenger_to_device_txn")
        batch_op.drop_index("ix_messenger_to_device_inbox")

    op.drop_table("messenger_to_device")
    with op.batch_alter_table("messenger_rooms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messenger_rooms_agency_id"))

    op.drop_table("messenger_rooms")
    op.drop_table("messenger_profiles")
    with op.batch_alter_table("messenger_one_time_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_messenger_one_time_keys_device")

    op.drop_table("messenger_one_time_keys")
    with op.batch_alter_table("messenger_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messenger_media_account_id"))

    op.drop_table("messenger_media")
    with op.batch_alter_table("messenger_key_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messenger_key_changes_user_id"))

    op.drop_table("messenger_key_changes")
    op.drop_table("messenger_filters")
    op.drop_table("messenger_fallback_keys")
    op.drop_table("messenger_device_keys")
    with op.batch_alter_table("messenger_account_data", schema=None) as batch_op:
        batch_op.drop_index("ix_messenger_account_data_user_stream")

    op.drop_table("messenger_account_data")
