"""Tables of the reports service.

What is in clear is what statistics, routing and deadlines need (category, region, unit, status,
times); everything a reporter wrote or sent, and who a named reporter is, is encrypted under the
report's data key (columns ending in ``_enc``; see :mod:`qorgau.reports.protection`). No column holds
an IP address, a user agent or an account id of a reporter: a named reporter's reports are found by a
keyed hash of their account (``reporter_ref``), which a database alone cannot reverse.
"""

from __future__ import annotations

import sqlalchemy as sa

from qorgau.kernel.db import metadata
from qorgau.kernel.keys import register_sealed_column

# A police unit's X25519 key pair: reports' data keys are sealed to the public key; the private key
# is wrapped under the kernel key ring.
report_unit_keys = sa.Table(
    "report_unit_keys",
    metadata,
    sa.Column("agency_id", sa.String(32), sa.ForeignKey("agencies.id"), primary_key=True),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    sa.Column("private_key_enc", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # The reference people quote ("K7M2-Q9XA"); random, so it reveals neither order nor volume.
    sa.Column("ref", sa.String(16), nullable=False, unique=True),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("region_code", sa.String(32), nullable=False),
    sa.Column("unit_id", sa.String(32), sa.ForeignKey("agencies.id"), nullable=False),
    # The region has no unit of its own in this deployment: the fallback unit got it.
    sa.Column("routed_by_fallback", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("named", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reporter_ref", sa.String(64), nullable=True, index=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("submitted_at", sa.BigInteger, nullable=False),
    sa.Column("status_at", sa.BigInteger, nullable=False),
    sa.Column("due_at", sa.BigInteger, nullable=True),
    sa.Column("closed_at", sa.BigInteger, nullable=True),
    sa.Column("duplicate_of", sa.String(32), sa.ForeignKey("reports.id"), nullable=True),
    # The reporter has answered since an officer last opened the report.
    sa.Column("unread_reply", sa.Boolean, nullable=False, server_default=sa.false()),
    # Anonymous reports: HMAC(deployment secret, receipt) to find the row, argon2id(receipt) to check it.
    sa.Column("receipt_index", sa.String(64), nullable=True, unique=True),
    sa.Column("receipt_verifier", sa.String(128), nullable=True),
    sa.Column("data_key_sealed", sa.LargeBinary, nullable=False),
    sa.Column("content_enc", sa.LargeBinary, nullable=False),
    sa.Column("identity_enc", sa.LargeBinary, nullable=True),
    # The redacted text, envelope-encrypted under the key ring (public views read it without a unit key).
    sa.Column("public_text_enc", sa.LargeBinary, nullable=False),
    # HMAC of the region and ~150 m grid cell (or normalised address) of the place, to suggest duplicates
    # without keeping the place in clear (see :mod:`qorgau.reports.places`); cleared by the retention purge.
    sa.Column("place_key", sa.String(64), nullable=True, index=True),
    # When the retention rule deleted the content of this closed report (metadata kept for statistics).
    sa.Column("purged_at", sa.BigInteger, nullable=True),
    sa.Index("ix_reports_unit_id_status", "unit_id", "status"),
)

# What happened to a report: every step of the regulation, with its reason and an internal note.
report_history = sa.Table(
    "report_history",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("report_id", sa.String(32), sa.ForeignKey("reports.id"), nullable=False, index=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(24), nullable=True),
    sa.Column("to_status", sa.String(24), nullable=False),
    sa.Column("reason", sa.String(48), nullable=True),
    sa.Column("actor_kind", sa.String(16), nullable=False),
    # Staff only; a reporter's account is never linked here.
    sa.Column("actor_id", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
    # forward: the unit it went to; merge: the report it joined.
    sa.Column("related", sa.String(32), nullable=True),
    sa.Column("note_enc", sa.LargeBinary, nullable=True),
)

# The two-way channel between the unit and the reporter: questions, answers, the published outcome.
report_messages = sa.Table(
    "report_messages",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("report_id", sa.String(32), sa.ForeignKey("reports.id"), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("author_id", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("body_enc", sa.LargeBinary, nullable=False),
    # A random value from the form, so a resent form (a reload, a double tap) adds nothing twice.
    sa.Column("client_nonce", sa.String(32), nullable=True),
    sa.UniqueConstraint("report_id", "client_nonce", name="uq_report_messages_report_id_client_nonce"),
)

report_attachments = sa.Table(
    "report_attachments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("report_id", sa.String(32), sa.ForeignKey("reports.id"), nullable=False, index=True),
    sa.Column("message_id", sa.String(32), sa.ForeignKey("report_messages.id"), nullable=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("media_type", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("scrubbed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("data_enc", sa.LargeBinary, nullable=False),
)

# Requests to unseal a named reporter's identity: filed by an officer, decided by the head of the unit.
report_reveals = sa.Table(
    "report_reveals",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("report_id", sa.String(32), sa.ForeignKey("reports.id"), nullable=False, index=True),
    sa.Column("requested_by", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("requested_at", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(48), nullable=False),
    sa.Column("justification_enc", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("decided_by", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("decided_at", sa.BigInteger, nullable=True),
    sa.Column("decision_note_enc", sa.LargeBinary, nullable=True),
    sa.Column("revealed_at", sa.BigInteger, nullable=True),
)

# What a named reporter is told in their account: which report, what kind of news; never content.
report_notifications = sa.Table(
    "report_notifications",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("reporter_ref", sa.String(64), nullable=False, index=True),
    sa.Column("report_id", sa.String(32), sa.ForeignKey("reports.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(24), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("read_at", sa.BigInteger, nullable=True),
)

register_sealed_column(report_unit_keys, "private_key_enc", id_column="agency_id")
register_sealed_column(reports, "public_text_enc")

# Public statistics: how many reports each region got in each category each month (Almaty time).
# Kept up to date in the same transaction as each submission, so the public page reads a few hundred
# rows whatever the number of reports. Nothing here is secret: region and category are routing data.
report_stats = sa.Table(
    "report_stats",
    metadata,
    sa.Column("region_code", sa.String(32), primary_key=True),
    sa.Column("category", sa.String(32), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),  # "2026-12"
    sa.Column("count", sa.Integer, nullable=False),
)

# Systems registered to file reports through Open311 (a city app, an agency's call centre). Only a
# SHA-256 of the key is kept: the key is high-entropy and shown once, when the integration is created.
report_integrations = sa.Table(
    "report_integrations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_by", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)
