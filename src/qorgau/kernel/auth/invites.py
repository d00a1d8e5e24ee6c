"""Invitation links: an admin creates an agency account without a password and hands the person a
one-time link; opening it, the person sets their own password, joins and is signed in.

- The token carries 256 bits from `secrets`; only its SHA-256 is stored, so a database dump opens
  nothing. It is shown once, to the admin who issued it.
- A link expires after `invite_ttl_hours`; issuing a new one revokes the previous; using it consumes
  it (one conditional UPDATE, so two tabs racing cannot both succeed).
- The ledger records who invited whom and when the invitation was used: the account's keyed hash
  and agency only, never the token.
- Joining: an account with a password set by an operator (demo, CLI, API) counts as joined at
  creation; an invited account joins when its link is used (`users.joined_at`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from qorgau.kernel.auth import tables as t
from qorgau.kernel.auth.passwords import hash_password
from qorgau.kernel.auth.policy import require
from qorgau.kernel.auth.roles import AGENCY_ROLES, Actor, Role
from qorgau.kernel.auth.services import SignIn, _actor, _check_password, _digest, do_create_user, new_id
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit

INVITE_PATH = "/invite/"
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class InviteState(StrEnum):
    JOINED = "joined"
    PENDING = "pending"  # a link was issued and can still be used
    EXPIRED = "expired"  # the last link ran out before it was used
    NONE = "none"  # never invited (or the link was withdrawn)


@dataclass(frozen=True)
class IssuedInvite:
    """A freshly issued link; `token` exists only here, never in storage."""

    user_id: str
    token: str
    expires_at: int

    @property
    def path(self) -> str:
        return INVITE_PATH + self.token

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.path


@dataclass(frozen=True)
class InviteStatus:
    user_id: str
    state: InviteState
    invited_at: int | None
    expires_at: int | None


@dataclass(frozen=True)
class OpenInvite:
    """What the set-password page may show about a valid link."""

    invite_id: str
    user_id: str
    username: str
    display_name: str
    role: Role
    agency_id: str | None
    expires_at: int


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    return 32 <= len(token) <= 100 and all(c in _TOKEN_CHARS for c in token)


def _resource(row: Any) -> dict[str, Any]:
    return {"role": Role(row.role), "agency_id": row.agency_id, "id": row.id}


def _refuse_target(row: Any) -> None:
    if Role(row.role) not in AGENCY_ROLES:
        raise Problem("auth.invite_role", field="role")
    if row.joined_at is not None:
        raise Problem("auth.invite_joined")
    if row.disabled:
        raise Problem("auth.disabled")


def issue_invite_tx(tx: Tx, kernel: Kernel, *, user_row: Any, actor: Actor | None) -> IssuedInvite:
    """Revoke the account's open link (if any) and issue a new one, in the caller's transaction."""
    now = utc_now_ms()
    tx.execute(
        t.account_invites.update()
        .where(
            t.account_invites.c.user_id == user_row.id,
            t.account_invites.c.used_at.is_(None),
            t.account_invites.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    ttl_hours = kernel.settings.invite_ttl_hours
    expires_at = now + ttl_hours * 3_600_000
    tx.execute(
        t.account_invites.insert().values(
            id=new_id(),
            user_id=user_row.id,
            token_hash=_token_digest(token),
            created_by=actor.user_id if actor else None,
            created_at=now,
            expires_at=expires_at,
        )
    )
    kernel.ledger.append(
        tx,
        entry_type="decision",
        actor=kernel.actor_ref(actor) if actor else "platform",
        action="account.invite",
        subject=kernel.subject_ref("account", user_row.id),
        obj={"agency": user_row.agency_id, "ttl_hours": ttl_hours},
    )
    emit(tx, "account.invited", {"account": user_row.id})
    return IssuedInvite(user_id=user_row.id, token=token, expires_at=expires_at)


def do_issue_invite(ctx: Ctx | None, kernel: Kernel, user_id: str) -> IssuedInvite:
    """Issue (or re-issue) the invitation link of an account that has not joined yet.

    `ctx` None is the operator's CLI. An agency admin may invite the officials of their own agency.
    """
    actor = ctx.actor if ctx else None
    if ctx is not None and actor is None:
        raise Problem("auth.required")

    def write(tx: Tx) -> IssuedInvite:
        row = tx.execute(sa.select(t.users).where(t.users.c.id == user_id)).first()
        if row is None:
            raise Problem("http.not_found", detail="no such account")
        if ctx is not None:
            require(actor, "users.invite", _resource(row))
        _refuse_target(row)
        return issue_invite_tx(tx, kernel, user_row=row, actor=actor)

    return kernel.db.run(write)


def do_invite_user(
    ctx: Ctx | None,
    kernel: Kernel,
    *,
    username: str,
    role: Role | str,
    display_name: str | None = None,
    agency: str | None = None,
) -> IssuedInvite:
    """Create an agency account without a password and issue its invitation link.

    Two steps (account, then link): if the second fails the account stays "not invited" and the
    dashboard offers a new link, so nothing is lost.
    """
    try:
        parsed = Role(role)
    except ValueError:
        raise Problem("auth.unknown_role", field="role", detail=str(role)) from None
    if parsed not in AGENCY_ROLES:
        raise Problem("auth.invite_role", field="role")
    user_id = do_create_user(
        ctx, kernel, username=username, password=None, role=parsed, display_name=display_name, agency=agency
    )
    return do_issue_invite(ctx, kernel, user_id)


def do_withdraw_invite(ctx: Ctx, user_id: str) -> None:
    """Revoke the account's open link without issuing a new one."""
    actor = ctx.actor
    kernel = ctx.kernel

    def write(tx: Tx) -> None:
        row = tx.execute(sa.select(t.users).where(t.users.c.id == user_id)).first()
        if row is None:
            raise Problem("http.not_found", detail="no such account")
        require(actor, "users.invite", _resource(row))
        res = tx.execute(
            t.account_invites.update()
            .where(
                t.account_invites.c.user_id == user_id,
                t.account_invites.c.used_at.is_(None),
                t.account_invites.c.revoked_at.is_(None),
            )
            .values(revoked_at=utc_now_ms())
        )
        if res.rowcount == 0:
            raise Problem("http.not_found", detail="no open invitation")
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=kernel.actor_ref(actor),
            action="account.invite_withdraw",
            subject=kernel.subject_ref("account", user_id),
            obj={"agency": row.agency_id},
        )

    kernel.db.run(write)


def invite_statuses(
    kernel: Kernel,
    user_ids: list[str] | None = None,
    *,
    agency_id: str | None = None,
    agency_accounts: bool = False,
    now_ms: int | None = None,
) -> dict[str, InviteStatus]:
    """Each account's invitation state: of `user_ids`, or of every (agency) account, or one agency's."""
    now_ms = utc_now_ms() if now_ms is None else now_ms
    u = t.users
    i = t.account_invites
    open_links = (
        sa.select(
            i.c.user_id,
            sa.func.max(i.c.created_at).label("invited_at"),
            sa.func.max(i.c.expires_at).label("expires_at"),
        )
        .where(i.c.used_at.is_(None), i.c.revoked_at.is_(None))
        .group_by(i.c.user_id)
        .subquery()
    )
    query = sa.select(u.c.id, u.c.joined_at, open_links.c.invited_at, open_links.c.expires_at).outerjoin(
        open_links, open_links.c.user_id == u.c.id
    )
    if user_ids is not None:
        if not user_ids:
            return {}
        query = query.where(u.c.id.in_(user_ids))
    if agency_accounts:
        query = query.where(u.c.role.in_([r.value for r in AGENCY_ROLES]))
    if agency_id is not None:
        query = query.where(u.c.agency_id == agency_id)
    with kernel.db.read() as conn:
        rows = conn.execute(query).all()
    found: dict[str, InviteStatus] = {}
    for r in rows:
        if r.joined_at is not None:
            state = InviteState.JOINED
        elif r.expires_at is None:
            state = InviteState.NONE
        elif r.expires_at > now_ms:
            state = InviteState.PENDING
        else:
            state = InviteState.EXPIRED
        found[r.id] = InviteStatus(r.id, state, r.invited_at, r.expires_at)
    return found


def invite_status(ctx: Ctx, user_id: str) -> InviteStatus:
    """One account's invitation state, for those who may invite it."""
    with ctx.kernel.db.read() as conn:
        row = conn.execute(sa.select(t.users).where(t.users.c.id == user_id)).first()
    if row is None:
        raise Problem("http.not_found", detail="no such account")
    require(ctx.actor, "users.invite", _resource(row))
    return invite_statuses(ctx.kernel, [user_id])[user_id]


def open_invite(kernel: Kernel, token: str, *, now_ms: int | None = None) -> OpenInvite:
    """The invitation behind a link, or a Problem saying why it cannot be used (unknown, used, expired)."""
    now_ms = utc_now_ms() if now_ms is None else now_ms
    if not looks_like_token(token):
        raise Problem("auth.invite_unknown")
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(
                t.account_invites.c.id.label("invite_id"),
                t.account_invites.c.expires_at,
                t.account_invites.c.used_at,
                t.account_invites.c.revoked_at,
                t.users,
            )
            .join(t.users, t.users.c.id == t.account_invites.c.user_id)
            .where(t.account_invites.c.token_hash == _token_digest(token))
        ).first()
    if row is None:
        raise Problem("auth.invite_unknown")
    if row.used_at is not None or row.joined_at is not None:
        raise Problem("auth.invite_used")
    if row.revoked_at is not None:
        raise Problem("auth.invite_revoked")
    if row.expires_at <= now_ms:
        raise Problem("auth.invite_expired")
    if row.disabled:
        raise Problem("auth.disabled")
    return OpenInvite(
        invite_id=row.invite_id,
        user_id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        agency_id=row.agency_id,
        expires_at=row.expires_at,
    )


def do_accept_invite(kernel: Kernel, token: str, password: str) -> SignIn:
    """Use a link: set the account's password, record that the person joined, open a session."""
    invite = open_invite(kernel, token)
    _check_password(password)
    pw_hash = hash_password(password)
    session_token = secrets.token_urlsafe(32)
    session_id = _digest(session_token)

    def write(tx: Tx) -> Any:
        now = utc_now_ms()
        consumed = tx.execute(
            t.account_invites.update()
            .where(
                t.account_invites.c.id == invite.invite_id,
                t.account_invites.c.used_at.is_(None),
                t.account_invites.c.revoked_at.is_(None),
                t.account_invites.c.expires_at > now,
            )
            .values(used_at=now)
        )
        joined = tx.execute(
            t.users.update()
            .where(t.users.c.id == invite.user_id, t.users.c.joined_at.is_(None), t.users.c.disabled == sa.false())
            .values(password_hash=pw_hash, joined_at=now, last_login_at=now, failed_logins=0, locked_until=0)
        )
        if consumed.rowcount != 1 or joined.rowcount != 1:
            # Another tab used (or an admin replaced) the link in the meantime.
            raise Problem("auth.invite_used")
        tx.execute(
            t.sessions.insert().values(
                id_hash=session_id,
                user_id=invite.user_id,
                created_at=now,
                expires_at=now + kernel.settings.session_ttl_minutes * 60_000,
            )
        )
        row = tx.execute(sa.select(t.users).where(t.users.c.id == invite.user_id)).one()
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=kernel.actor_ref(_actor(row)),
            action="account.invite_used",
            subject=kernel.subject_ref("account", invite.user_id),
            obj={"agency": invite.agency_id},
        )
        emit(tx, "account.joined", {"account": invite.user_id})
        return row

    row = kernel.db.run(write)
    return SignIn(session_token=session_token, actor=_actor(row, session_id=session_id))
