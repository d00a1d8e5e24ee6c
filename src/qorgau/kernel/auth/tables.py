"""Accounts, agencies, sessions and API tokens."""

from __future__ import annotations

import sqlalchemy as sa

from qorgau.kernel.db import metadata
from qorgau.kernel.keys import register_sealed_column

agencies = sa.Table(
    "agencies",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("name_kk", sa.String(200), nullable=False),
    sa.Column("name_ru", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("region_code", sa.String(32), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(32), nullable=False, index=True),
    sa.Column("agency_id", sa.String(32), sa.ForeignKey("agencies.id"), nullable=True, index=True),
    sa.Column("password_hash", sa.String(200), nullable=True),
    # Citizens: the IIN is matched by keyed hash and kept only encrypted.
    sa.Column("iin_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("iin_enc", sa.LargeBinary, nullable=True),
    sa.Column("phone_enc", sa.LargeBinary, nullable=True),
    sa.Column("locale", sa.String(8), nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_login_at", sa.BigInteger, nullable=True),
    # When the person took the account over: set a password through an invitation, or at creation
    # when an operator gave one (demo, CLI, API with a password). NULL: invited, not joined yet.
    sa.Column("joined_at", sa.BigInteger, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(500), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

account_invites = sa.Table(
    "account_invites",
    metadata,
    # One-time invitation links: only the token's SHA-256 is kept; a re-issue revokes the previous one.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_by", sa.String(32), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("used_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

register_sealed_column(users, "iin_enc")
register_sealed_column(users, "phone_enc")
