"""The messenger's tables: rooms, one event table ordered by the kernel's stream ids, derived state.

Every change the messenger makes emits a kernel event in the same transaction; its stream id orders
the change (``stream_id`` columns below), so `/sync` resumes from one number across every table.
Contents that people write (event bodies, account data, to-device messages, media) are sealed with
envelope encryption bound to their row; identifiers and the derived membership stay in clear so the
server can route and authorise without decrypting.
"""

from __future__ import annotations

import sqlalchemy as sa

from qorgau.kernel.db import metadata
from qorgau.kernel.keys import register_sealed_column

ID = sa.String(255)  # Matrix ids (user, room, alias, event type, state key) are at most 255 bytes
StreamId = sa.BigInteger
# As a primary key on SQLite, INTEGER makes the stream id the rowid: appends and range scans stay cheap.
StreamKey = sa.BigInteger().with_variant(sa.Integer, "sqlite")

rooms = sa.Table(
    "messenger_rooms",
    metadata,
    sa.Column("room_id", ID, primary_key=True),
    sa.Column("creator", ID, nullable=False),
    # The creating official's agency: rooms whose members all share it are internal to the agency.
    sa.Column("agency_id", sa.String(32), nullable=True, index=True),
    sa.Column("room_version", sa.String(16), nullable=False),
    sa.Column("is_direct", sa.Boolean, nullable=False, server_default=sa.false()),
    # "For official use only" (ДСП): enforced by later slices; carried from the start so rows fit.
    sa.Column("dsp", sa.Boolean, nullable=False, server_default=sa.false()),
    # Set once m.room.encryption is in the state: the server cannot read (or search) new messages.
    sa.Column("encrypted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("join_rule", sa.String(16), nullable=False, server_default="invite"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Legal hold: a room under investigation keeps every message whatever the retention period.
    sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("legal_hold_reason", sa.String(32), nullable=True),
    sa.Column("legal_hold_since", sa.BigInteger, nullable=True),
)

events = sa.Table(
    "messenger_events",
    metadata,
    # The kernel outbox's stream id of this event: the one order /sync and /messages follow.
    sa.Column("stream_id", StreamKey, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("room_id", ID, sa.ForeignKey("messenger_rooms.room_id"), nullable=False),
    sa.Column("type", ID, nullable=False),
    sa.Column("state_key", ID, nullable=True),
    sa.Column("sender", ID, nullable=False),
    sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
    # Membership events: the new and previous membership in clear, so sync needs no decryption.
    sa.Column("membership", sa.String(8), nullable=True),
    sa.Column("prev_membership", sa.String(8), nullable=True),
    sa.Column("redacts", sa.String(64), nullable=True),
    sa.Column("redacted_by", sa.String(64), nullable=True),
    # Idempotency of PUT /send/{type}/{txnId}: the sending device (access token) and its txnId.
    sa.Column("txn_device", sa.String(32), nullable=True),
    sa.Column("txn_id", ID, nullable=True),
    sa.Column("dsp", sa.Boolean, nullable=False, server_default=sa.false()),
    # Sealed JSON content, bound to (messenger_events, content, event_id).
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Index("ix_messenger_events_room_stream", "room_id", "stream_id"),
    sa.Index("ix_messenger_events_member", "state_key", "type", "stream_id"),
    sa.UniqueConstraint("txn_device", "txn_id", name="uq_messenger_events_txn"),
)

room_state = sa.Table(
    "messenger_room_state",
    metadata,
    sa.Column("room_id", ID, sa.ForeignKey("messenger_rooms.room_id"), primary_key=True),
    sa.Column("type", ID, primary_key=True),
    sa.Column("state_key", ID, primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("stream_id", StreamId, nullable=False),
)

members = sa.Table(
    "messenger_members",
    metadata,
    sa.Column("room_id", ID, sa.ForeignKey("messenger_rooms.room_id"), primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("account_id", sa.String(32), nullable=False),
    # The member's agency when the membership last changed: rooms that cross agencies are visible.
    sa.Column("agency_id", sa.String(32), nullable=True),
    sa.Column("membership", sa.String(8), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("stream_id", StreamId, nullable=False),
    sa.Index("ix_messenger_members_user", "user_id", "membership"),
    sa.Index("ix_messenger_members_room", "room_id", "membership"),
)

aliases = sa.Table(
    "messenger_aliases",
    metadata,
    sa.Column("alias", ID, primary_key=True),
    sa.Column("room_id", ID, sa.ForeignKey("messenger_rooms.room_id"), nullable=False, index=True),
    sa.Column("creator", ID, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

devices = sa.Table(
    "messenger_devices",
    metadata,
    # One row per login: the device and its access token (only the token's SHA-256 is kept).
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("device_id", ID, nullable=False),
    sa.Column("display_name", sa.String(255), nullable=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("user_id", "device_id", name="uq_messenger_devices_user_device"),
)

profiles = sa.Table(
    "messenger_profiles",
    metadata,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("displayname", sa.String(255), nullable=True),
    sa.Column("avatar_url", sa.String(255), nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

filters = sa.Table(
    "messenger_filters",
    metadata,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("filter_id", sa.String(32), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

receipts = sa.Table(
    "messenger_receipts",
    metadata,
    sa.Column("room_id", ID, sa.ForeignKey("messenger_rooms.room_id"), primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("receipt_type", sa.String(32), primary_key=True),
    # "" for an unthreaded receipt, else the thread ("main" or a thread root's event id).
    sa.Column("thread_id", ID, primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_stream_id", StreamId, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("stream_id", StreamId, nullable=False, index=True),
)

typing = sa.Table(
    "messenger_typing",
    metadata,
    sa.Column("room_id", ID, sa.ForeignKey("messenger_rooms.room_id"), primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("stream_id", StreamId, nullable=False),
)

account_data = sa.Table(
    "messenger_account_data",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("room_id", ID, nullable=False),  # "" for global account data
    sa.Column("type", ID, nullable=False),
    sa.Column("stream_id", StreamId, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("user_id", "room_id", "type", name="uq_messenger_account_data_user_id"),
    sa.Index("ix_messenger_account_data_user_stream", "user_id", "stream_id"),
)

device_keys = sa.Table(
    "messenger_device_keys",
    metadata,
    # Public identity keys of a device, signed by the device: relayed as given, never secret.
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("device_id", ID, primary_key=True),
    sa.Column("keys_json", sa.Text, nullable=False),
    sa.Column("stream_id", StreamId, nullable=False),
)

one_time_keys = sa.Table(
    "messenger_one_time_keys",
    metadata,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("device_id", ID, primary_key=True),
    sa.Column("key_id", ID, primary_key=True),  # "signed_curve25519:AAAAHQ"
    sa.Column("algorithm", sa.String(64), nullable=False),
    sa.Column("key_json", sa.Text, nullable=False),
    sa.Index("ix_messenger_one_time_keys_device", "user_id", "device_id", "algorithm"),
)

fallback_keys = sa.Table(
    "messenger_fallback_keys",
    metadata,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("device_id", ID, primary_key=True),
    sa.Column("algorithm", sa.String(64), primary_key=True),
    sa.Column("key_id", ID, nullable=False),
    sa.Column("key_json", sa.Text, nullable=False),
    sa.Column("used", sa.Boolean, nullable=False, server_default=sa.false()),
)

key_changes = sa.Table(
    "messenger_key_changes",
    metadata,
    # A user's device list changed at this stream position (new keys, a device signed out).
    sa.Column("stream_id", StreamKey, primary_key=True, autoincrement=False),
    sa.Column("user_id", ID, nullable=False, index=True),
)

to_device = sa.Table(
    "messenger_to_device",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("stream_id", StreamId, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("device_id", ID, nullable=False),
    sa.Column("sender", ID, nullable=False),
    sa.Column("type", ID, nullable=False),
    sa.Column("txn_device", sa.String(32), nullable=True),
    sa.Column("txn_id", ID, nullable=True),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Index("ix_messenger_to_device_inbox", "user_id", "device_id", "stream_id"),
    sa.Index("ix_messenger_to_device_txn", "txn_device", "txn_id"),
)

media = sa.Table(
    "messenger_media",
    metadata,
    sa.Column("media_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(32), nullable=False, index=True),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("dsp", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("filename", sa.LargeBinary, nullable=True),
    # Last: SQLite then reads the metadata without touching the blob's overflow pages.
    sa.Column("content", sa.LargeBinary, nullable=False),
)

media_thumbnails = sa.Table(
    "messenger_media_thumbnails",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("media_id", sa.String(64), sa.ForeignKey("messenger_media.media_id"), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("media_id", "width", "height", "method", name="uq_messenger_media_thumbnails_media_id"),
)

register_sealed_column(events, "content", "event_id")
register_sealed_column(account_data, "content")
register_sealed_column(to_device, "content")
register_sealed_column(media, "content", "media_id")
register_sealed_column(media, "filename", "media_id")
register_sealed_column(media_thumbnails, "content")

media_rooms = sa.Table(
    "messenger_media_rooms",
    metadata,
    # Which rooms an upload was shared in: its members (and the uploader) may download it.
    sa.Column("media_id", sa.String(64), sa.ForeignKey("messenger_media.media_id"), primary_key=True),
    sa.Column("room_id", ID, sa.ForeignKey("messenger_rooms.room_id"), primary_key=True, index=True),
)

# --- official letters -------------------------------------------------------------------------
# A letter's subject and body are sealed; registration numbers, dates, agencies and states stay in
# clear because the registry (the agency's office) files and sorts by them.

letter_registers = sa.Table(
    "messenger_letter_registers",
    metadata,
    # One counter per agency and year: registration numbers are unique per agency per year.
    sa.Column("agency_id", sa.String(32), sa.ForeignKey("agencies.id"), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("last_number", sa.Integer, nullable=False, server_default="0"),
)

letters = sa.Table(
    "messenger_letters",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("agency_id", sa.String(32), sa.ForeignKey("agencies.id"), nullable=False, index=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("reg_number", sa.String(40), nullable=False),
    sa.Column("sender_account_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("subject", sa.LargeBinary, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("dsp", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("due_at", sa.BigInteger, nullable=True),
    sa.Column("in_reply_to", sa.String(32), sa.ForeignKey("messenger_letters.id"), nullable=True, index=True),
    sa.Column("registered_at", sa.BigInteger, nullable=False, index=True),
    sa.UniqueConstraint("agency_id", "year", "number", name="uq_messenger_letters_number"),
)

letter_addressees = sa.Table(
    "messenger_letter_addressees",
    metadata,
    sa.Column("letter_id", sa.String(32), sa.ForeignKey("messenger_letters.id"), primary_key=True),
    sa.Column("agency_id", sa.String(32), sa.ForeignKey("agencies.id"), primary_key=True),
    # The official the letter is addressed to, or none: then it is for the agency's office.
    sa.Column("account_id", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.Column("read_at", sa.BigInteger, nullable=True),
    sa.Column("read_by", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("answered_at", sa.BigInteger, nullable=True),
    sa.Column("answer_id", sa.String(32), sa.ForeignKey("messenger_letters.id"), nullable=True),
    sa.Index("ix_messenger_letter_addressees_agency_state", "agency_id", "state"),
)

letter_attachments = sa.Table(
    "messenger_letter_attachments",
    metadata,
    sa.Column("letter_id", sa.String(32), sa.ForeignKey("messenger_letters.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    # The file itself is a messenger upload: cleaned of metadata and sealed like any other.
    sa.Column("media_id", sa.String(64), sa.ForeignKey("messenger_media.media_id"), nullable=False),
)

# --- government notices -----------------------------------------------------------------------

notices = sa.Table(
    "messenger_notices",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sender_account_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("sender_agency_id", sa.String(32), sa.ForeignKey("agencies.id"), nullable=True, index=True),
    sa.Column("title", sa.LargeBinary, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # Whom it was addressed to, as chosen (agencies, roles, regions or named accounts): JSON of ids.
    sa.Column("audience", sa.Text, nullable=False),
    sa.Column("recipients", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False, index=True),
)

notice_recipients = sa.Table(
    "messenger_notice_recipients",
    metadata,
    sa.Column("notice_id", sa.String(32), sa.ForeignKey("messenger_notices.id"), primary_key=True),
    sa.Column("account_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # The recipient's agency when the notice went out: the sender's share is counted per agency.
    sa.Column("agency_id", sa.String(32), nullable=True),
    sa.Column("confirmed_at", sa.BigInteger, nullable=True),
    sa.Index("ix_messenger_notice_recipients_account", "account_id", "confirmed_at"),
)

register_sealed_column(letters, "subject")
register_sealed_column(letters, "body")
register_sealed_column(notices, "title")
register_sealed_column(notices, "body")
