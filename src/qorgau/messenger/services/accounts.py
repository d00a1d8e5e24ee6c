"""Signing in to the messenger (devices and access tokens), registration, profiles, directory, filters.

Passwords, lockout and accounts are the kernel's: a Matrix login is a kernel sign-in by an official,
which opens a *device* with its own access token. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth import tables as at
from qorgau.kernel.auth.passwords import MIN_PASSWORD_LENGTH
from qorgau.kernel.auth.policy import can
from qorgau.kernel.auth.roles import Actor, Role
from qorgau.kernel.context import Kernel
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.messenger import tables as t
from qorgau.messenger.domain import (
    MAX_ID_LENGTH,
    MESSENGER_ROLES,
    Membership,
    SyncFilter,
    bad_json,
    forbidden,
    localpart,
    mx_error,
    new_device_id,
    not_found,
    user_id,
)
from qorgau.messenger.runtime import runtime
from qorgau.messenger.services.access import MxCtx, mx_ctx, require_official, require_own
from qorgau.messenger.services.events import append, draft, run_write

TOKEN_PREFIX = "mxt_"  # noqa: S105 - a public prefix that makes leaked tokens easy to scan for
LAST_SEEN_RESOLUTION_MS = 60_000
TOPIC_DEVICES = "messenger.devices"
TOPIC_PROFILE = "messenger.profile"

_MESSENGER_ROLE_VALUES = [r.value for r in MESSENGER_ROLES]


def token_digest(token: str) -> str:
    # Access tokens carry 256 bits of entropy: a plain SHA-256 is enough at rest.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class UserInfo:
    """A local account as the messenger sees it."""

    account_id: str
    username: str
    user_id: str
    agency_id: str | None
    role: str
    display_name: str
    disabled: bool

    @property
    def is_official(self) -> bool:
        return self.role in _MESSENGER_ROLE_VALUES and not self.disabled


def lookup_users(kernel: Kernel, conn: Connection, mxids: list[str]) -> dict[str, UserInfo]:
    """Local accounts by Matrix user id (ids of other servers or unknown names are left out)."""
    server = kernel.settings.server_name
    by_name = {}
    for mxid in mxids:
        name = localpart(mxid, server)
        if name is not None:
            by_name[name] = mxid
    if not by_name:
        return {}
    u, p = at.users, t.profiles
    rows = conn.execute(
        sa.select(
            u.c.id,
            u.c.username,
            u.c.agency_id,
            u.c.role,
            u.c.disabled,
            sa.func.coalesce(p.c.displayname, u.c.display_name).label("display_name"),
        )
        .select_from(u.outerjoin(p, p.c.user_id == sa.literal("@") + u.c.username + sa.literal(":" + server)))
        .where(u.c.username.in_(list(by_name)))
    ).all()
    return {
        by_name[r.username]: UserInfo(
            account_id=r.id,
            username=r.username,
            user_id=by_name[r.username],
            agency_id=r.agency_id,
            role=r.role,
            display_name=r.display_name,
            disabled=bool(r.disabled),
        )
        for r in rows
    }


def lookup_official(kernel: Kernel, conn: Connection, mxid: str) -> UserInfo:
    """The official behind `mxid`; M_NOT_FOUND for unknown users, M_FORBIDDEN for non-officials."""
    found = lookup_users(kernel, conn, [mxid]).get(mxid)
    if found is None:
        raise not_found("Unknown user")
    if not found.is_official:
        raise forbidden("Only officials of an agency use the messenger")
    return found


# --- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A signed-in device: who, which device, and the access token's digest."""

    actor: Actor
    user_id: str
    device_id: str
    device_key: str
    token_hash: str


def resolve_token(kernel: Kernel, token: str) -> Session | None:
    """The session behind an access token, or None if unknown, signed out, disabled or not an official.

    Cached for a few seconds per process (see runtime.SESSION_CACHE_SECONDS).
    """
    if not token or len(token) > 200:
        return None
    digest = token_digest(token)
    rt = runtime(kernel)
    cached = rt.sessions.get(digest)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    d, u = t.devices, at.users
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(d.c.id.label("device_key"), d.c.device_id, d.c.user_id, d.c.last_seen_at, u)
            .join(u, u.c.id == d.c.account_id)
            .where(d.c.token_hash == digest)
        ).first()
    if row is None or row.disabled or row.role not in _MESSENGER_ROLE_VALUES:
        return None
    actor = Actor(
        user_id=row.id,
        username=row.username,
        role=Role(row.role),
        display_name=row.display_name,
        agency_id=row.agency_id,
        locale=row.locale,
        via="matrix",
    )
    session = Session(actor, row.user_id, row.device_id, row.device_key, digest)
    rt.sessions.put(digest, session)
    now = utc_now_ms()
    if row.last_seen_at is None or now - row.last_seen_at > LAST_SEEN_RESOLUTION_MS:
        key = row.device_key
        kernel.writer.submit(lambda tx: tx.execute(d.update().where(d.c.id == key).values(last_seen_at=now)))
    return session


def session_ctx(kernel: Kernel, session: Session) -> MxCtx:
    return mx_ctx(kernel, session.actor, device_id=session.device_id, device_key=session.device_key)


@dataclass(frozen=True)
class LoginResult:
    user_id: str
    access_token: str
    device_id: str


def _check_device_id(device_id: str | None) -> str:
    if device_id is None:
        return new_device_id()
    if not device_id or len(device_id) > MAX_ID_LENGTH or not device_id.isprintable():
        raise mx_error("M_INVALID_PARAM", "invalid device_id")
    return device_id


def _open_device(
    tx: Tx, kernel: Kernel, *, account_id: str, mxid: str, device_id: str, display_name: str | None
) -> str:
    """Create the device (or give an existing one a new token, ending the old one); returns the token."""
    d = t.devices
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = token_digest(token)
    old = tx.execute(sa.select(d.c.id, d.c.token_hash).where(d.c.user_id == mxid, d.c.device_id == device_id)).first()
    now = utc_now_ms()
    if old is not None:
        values: dict[str, Any] = {"token_hash": digest, "last_seen_at": now}
        if display_name:
            values["display_name"] = display_name[:255]
        tx.execute(d.update().where(d.c.id == old.id).values(**values))
        sessions = runtime(kernel).sessions
        old_hash = old.token_hash
        tx.after_commit(lambda: sessions.discard_where(lambda s: s.token_hash == old_hash))
    else:
        tx.execute(
            d.insert().values(
                id=auth.new_id(),
                account_id=account_id,
                user_id=mxid,
                device_id=device_id,
                display_name=(display_name or "")[:255] or None,
                token_hash=digest,
                created_at=now,
                last_seen_at=now,
            )
        )
    return token


def do_login(
    kernel: Kernel, *, login: str, password: str, device_id: str | None, device_name: str | None
) -> LoginResult:
    """Sign an official in with the kernel's password check and lockout; opens a device."""
    server = kernel.settings.server_name
    if login.startswith("@"):
        name = localpart(login.lower(), server)
        if name is None:
            raise Problem("auth.invalid_credentials")
        login = name
    device_id = _check_device_id(device_id)
    row = auth.authenticate(kernel, login, password)
    if row.role not in _MESSENGER_ROLE_VALUES:
        raise forbidden("Only officials of an agency may use the messenger")
    mxid = user_id(row.username, server)
    token = kernel.db.run(
        lambda tx: _open_device(tx, kernel, account_id=row.id, mxid=mxid, device_id=device_id, display_name=device_name)
    )
    return LoginResult(user_id=mxid, access_token=token, device_id=device_id)


def _drop_devices(tx: Tx, kernel: Kernel, session: Session, *, every: bool) -> None:
    d = t.devices
    cond = [d.c.user_id == session.user_id]
    if not every:
        cond.append(d.c.id == session.device_key)
    gone = tx.execute(sa.select(d.c.device_id, d.c.token_hash).where(*cond)).all()
    device_ids = [g.device_id for g in gone]
    hashes = {g.token_hash for g in gone}
    dk = t.device_keys
    had_keys = tx.execute(
        sa.select(dk.c.device_id).where(dk.c.user_id == session.user_id, dk.c.device_id.in_(device_ids)).limit(1)
    ).first()
    tx.execute(d.delete().where(*cond))
    for table in (t.device_keys, t.one_time_keys, t.fallback_keys, t.to_device):
        tx.execute(table.delete().where(table.c.user_id == session.user_id, table.c.device_id.in_(device_ids)))
    if had_keys is not None:
        # Encrypting clients must stop sending room keys to the device: its user's device list changed.
        note_device_list_change(tx, session.actor.user_id, session.user_id)
    sessions = runtime(kernel).sessions
    tx.after_commit(lambda: sessions.discard_where(lambda s: s.token_hash in hashes))


def note_device_list_change(tx: Tx, account_id: str, mxid: str) -> int:
    """Record that a user's devices (or their keys) changed; users sharing a room hear of it in /sync."""
    stream_id = emit(tx, TOPIC_DEVICES, {"account": account_id})
    tx.execute(t.key_changes.insert().values(stream_id=stream_id, user_id=mxid))
    return stream_id


def do_logout(kernel: Kernel, session: Session, *, every_device: bool = False) -> None:
    """End this device (or all the user's devices): tokens, device keys and pending to-device messages."""
    kernel.db.run(lambda tx: _drop_devices(tx, kernel, session, every=every_device))


# --- registration (development only) ----------------------------------------------------------


@dataclass(frozen=True)
class InteractiveAuth:
    """The server wants another user-interactive authentication stage (401 with flows)."""

    session: str

    def body(self) -> dict[str, Any]:
        return {"flows": [{"stages": ["m.login.dummy"]}], "params": {}, "session": self.session}


def do_register(kernel: Kernel, body: dict[str, Any], *, kind: str = "user") -> dict[str, Any] | InteractiveAuth:
    """m.login.dummy registration, only with `matrix_open_registration`; the account is an official."""
    if not can(None, "messenger.register", kernel.settings.matrix_open_registration):
        raise forbidden("Registration is disabled: accounts are created by the agency administrator")
    if kind != "user":
        raise forbidden("Guest access is disabled")
    auth_stage = body.get("auth")
    if not isinstance(auth_stage, dict) or auth_stage.get("type") != "m.login.dummy":
        return InteractiveAuth(session=secrets.token_urlsafe(16))
    username = body.get("username") or ("u" + secrets.token_hex(6))
    password = body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise bad_json("'username' and 'password' must be strings")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise mx_error("M_WEAK_PASSWORD", f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    agencies = auth.list_agencies(kernel)
    if not agencies:
        raise forbidden("There is no agency to register officials in")
    try:
        account_id = auth.do_create_user(
            None, kernel, username=username, password=password, role=Role.OFFICIAL, agency=agencies[0].id
        )
    except Problem as problem:
        if problem.code == "auth.username_taken":
            raise mx_error("M_USER_IN_USE", "This user id is already taken") from None
        if problem.code.startswith("validation"):
            raise mx_error("M_INVALID_USERNAME", problem.detail or "invalid username") from None
        raise
    mxid = user_id(username.strip().lower(), kernel.settings.server_name)
    if body.get("inhibit_login") is True:
        return {"user_id": mxid}
    device_id = _check_device_id(body.get("device_id") if isinstance(body.get("device_id"), str) else None)
    display = body.get("initial_device_display_name")
    token = kernel.db.run(
        lambda tx: _open_device(
            tx,
            kernel,
            account_id=account_id,
            mxid=mxid,
            device_id=device_id,
            display_name=display if isinstance(display, str) else None,
        )
    )
    return {"user_id": mxid, "access_token": token, "device_id": device_id}


# --- profiles and the directory ---------------------------------------------------------------


def get_profile(ctx: MxCtx, target: str) -> dict[str, Any]:
    require_official(ctx)
    with ctx.kernel.db.read() as conn:
        found = lookup_users(ctx.kernel, conn, [target]).get(target)
        avatar = conn.execute(sa.select(t.profiles.c.avatar_url).where(t.profiles.c.user_id == target)).scalar()
    if found is None or not found.is_official:
        raise not_found("Profile not found")
    out: dict[str, Any] = {"displayname": found.display_name}
    if avatar:
        out["avatar_url"] = avatar
    return out


async def do_set_displayname(ctx: MxCtx, target: str, displayname: str) -> None:
    """Change one's display name, and announce it in every joined room (a new member event)."""
    require_official(ctx)
    require_own(ctx, target, "display name")
    displayname = displayname.strip()
    if not displayname or len(displayname) > 255:
        raise mx_error("M_INVALID_PARAM", "a display name has 1 to 255 characters")
    kernel = ctx.kernel

    def rooms() -> list[str]:
        with kernel.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(t.members.c.room_id).where(
                        t.members.c.user_id == ctx.user_id, t.members.c.membership == Membership.JOIN
                    )
                ).scalars()
            )

    room_ids = await asyncio.to_thread(rooms)
    actor = ctx.actor
    assert actor is not None
    drafts = [
        draft(
            kernel,
            room_id,
            "m.room.member",
            ctx.user_id,
            {"membership": "join", "displayname": displayname},
            state_key=ctx.user_id,
            account_id=actor.user_id,
            agency_id=actor.agency_id,
        )
        for room_id in room_ids
    ]

    def job(tx: Tx) -> None:
        # The event first: it orders this write after any other process's (the outbox's lock).
        emit(tx, TOPIC_PROFILE, {"account": actor.user_id})
        upsert_profile(tx, ctx.user_id, displayname)
        m = t.members
        still = set(
            tx.execute(
                sa.select(m.c.room_id).where(m.c.user_id == ctx.user_id, m.c.membership == Membership.JOIN)
            ).scalars()
        )
        for d in drafts:
            if d.room_id in still:
                append(tx, kernel, d)

    await run_write(kernel, job)


def upsert_profile(tx: Tx, mxid: str, displayname: str) -> None:
    p = t.profiles
    now = utc_now_ms()
    if tx.execute(p.update().where(p.c.user_id == mxid).values(displayname=displayname, updated_at=now)).rowcount:
        return
    tx.execute(p.insert().values(user_id=mxid, displayname=displayname, updated_at=now))


def search_directory(ctx: MxCtx, term: str, limit: int) -> dict[str, Any]:
    """Officials whose user name or display name contains `term` (the national directory of officials)."""
    require_official(ctx)
    limit = max(1, min(limit, 50))
    server = ctx.kernel.settings.server_name
    folded = term.strip().casefold()
    u, p = at.users, t.profiles
    name = sa.func.coalesce(p.c.displayname, u.c.display_name)
    query = (
        sa.select(u.c.username, name.label("display_name"), p.c.avatar_url)
        .select_from(u.outerjoin(p, p.c.user_id == sa.literal("@") + u.c.username + sa.literal(":" + server)))
        .where(u.c.role.in_(_MESSENGER_ROLE_VALUES), u.c.disabled == sa.false())
        .order_by(u.c.username)
    )
    postgres = ctx.kernel.db.dialect == "postgresql"
    if folded and postgres:
        # ILIKE folds case for every script; SQLite's LIKE and lower() only for ASCII (filtered below).
        query = query.where(
            sa.or_(u.c.username.icontains(folded, autoescape=True), name.icontains(folded, autoescape=True))
        )
    if postgres:
        query = query.limit(limit + 1)
    with ctx.kernel.db.read() as conn:
        rows = [
            r
            for r in conn.execute(query)
            if not folded or folded in r.username.casefold() or folded in (r.display_name or "").casefold()
        ][: limit + 1]
    results = []
    for r in rows[:limit]:
        item: dict[str, Any] = {"user_id": user_id(r.username, server), "display_name": r.display_name}
        if r.avatar_url:
            item["avatar_url"] = r.avatar_url
        results.append(item)
    return {"results": results, "limited": len(rows) > limit}


# --- filters ----------------------------------------------------------------------------------


def do_create_filter(ctx: MxCtx, target: str, definition: dict[str, Any]) -> str:
    require_official(ctx)
    require_own(ctx, target, "filters")
    SyncFilter.parse(definition)
    filter_id = secrets.token_hex(6)
    body = msgspec.json.encode(definition).decode()
    ctx.kernel.db.run(
        lambda tx: tx.execute(
            t.filters.insert().values(
                user_id=ctx.user_id, filter_id=filter_id, definition=body, created_at=utc_now_ms()
            )
        )
    )
    return filter_id


def get_filter_definition(ctx: MxCtx, target: str, filter_id: str) -> dict[str, Any]:
    require_official(ctx)
    require_own(ctx, target, "filters")
    with ctx.kernel.db.read() as conn:
        found = conn.execute(
            sa.select(t.filters.c.definition).where(
                t.filters.c.user_id == ctx.user_id, t.filters.c.filter_id == filter_id
            )
        ).scalar()
    if found is None:
        raise not_found("No such filter")
    return msgspec.json.decode(found)  # type: ignore[no-any-return]


def load_filter(ctx: MxCtx, spec: str | None) -> SyncFilter:
    """The /sync filter named by `spec`: inline JSON (starting with '{') or a stored filter id.

    Parsed filters are cached per user and spec, so a client repeating its inline filter on every
    long poll pays for parsing once.
    """
    if not spec:
        return SyncFilter()
    rt = runtime(ctx.kernel)
    key = (ctx.user_id, spec)
    found = rt.filters.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    if spec.startswith("{"):
        try:
            raw = msgspec.json.decode(spec)
        except msgspec.DecodeError:
            raise mx_error("M_NOT_JSON", "the filter is not valid JSON") from None
        found = SyncFilter.parse(raw)
    else:
        found = SyncFilter.parse(get_filter_definition(ctx, ctx.user_id, spec))
    rt.filters.put(key, found)
    return found
