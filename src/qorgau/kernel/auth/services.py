"""Accounts, agencies, sign-in, sessions and API tokens: every state change of the auth kernel."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from qorgau.kernel import kz
from qorgau.kernel.auth import tables as t
from qorgau.kernel.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password
from qorgau.kernel.auth.policy import require
from qorgau.kernel.auth.roles import AGENCY_ROLES, Actor, AgencyKind, Role
from qorgau.kernel.auth.throttle import lockout_seconds
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import row_aad, seal_text, unseal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem, invalid
from qorgau.kernel.events import emit

TOKEN_USE_RESOLUTION_MS = 60_000
TOKEN_PREFIX = "qg_"  # noqa: S105 - a public prefix that makes leaked tokens easy to scan for


def new_id() -> str:
    return uuid.uuid4().hex


def _digest(token: str) -> str:
    # Session and API tokens carry 256 bits of entropy: a plain SHA-256 is enough at rest.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Agency:
    id: str
    code: str
    names: dict[str, str]
    kind: AgencyKind
    region_code: str

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names["en"]


@dataclass(frozen=True)
class UserView:
    id: str
    username: str
    display_name: str
    role: Role
    agency_id: str | None
    disabled: bool
    created_at: int
    last_login_at: int | None
    joined_at: int | None = None


def _agency(row: Any) -> Agency:
    return Agency(
        id=row.id,
        code=row.code,
        names={"kk": row.name_kk, "ru": row.name_ru, "en": row.name_en},
        kind=AgencyKind(row.kind),
        region_code=row.region_code,
    )


def _user_view(row: Any) -> UserView:
    return UserView(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        agency_id=row.agency_id,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        joined_at=row.joined_at,
    )


def _actor(
    row: Any, *, via: str = "session", scopes: frozenset[str] = frozenset(), session_id: str | None = None
) -> Actor:
    return Actor(
        user_id=row.id,
        username=row.username,
        role=Role(row.role),
        display_name=row.display_name,
        agency_id=row.agency_id,
        locale=row.locale,
        via=via,
        scopes=scopes,
        session_id=session_id,
    )


# --- agencies -------------------------------------------------------------------------------


def list_agencies(kernel: Kernel) -> list[Agency]:
    with kernel.db.read() as conn:
        rows = conn.execute(sa.select(t.agencies).order_by(t.agencies.c.code)).all()
    return [_agency(r) for r in rows]


def get_agency(kernel: Kernel, agency_id_or_code: str) -> Agency | None:
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(t.agencies).where(
                sa.or_(t.agencies.c.id == agency_id_or_code, t.agencies.c.code == agency_id_or_code)
            )
        ).first()
    return _agency(row) if row else None


def create_agency_tx(
    tx: Tx,
    kernel: Kernel,
    *,
    code: str,
    names: dict[str, str],
    kind: AgencyKind,
    region_code: str,
    actor: Actor | None,
) -> str:
    """Insert an agency (idempotent by code) and record the decision in the ledger."""
    kz.region(region_code)  # raises UnknownRegion for a bad code
    found = tx.execute(sa.select(t.agencies.c.id).where(t.agencies.c.code == code)).scalar()
    if found:
        return str(found)
    agency_id = new_id()
    tx.execute(
        t.agencies.insert().values(
            id=agency_id,
            code=code,
            name_kk=names["kk"],
            name_ru=names["ru"],
            name_en=names["en"],
            kind=kind.value,
            region_code=region_code,
            created_at=utc_now_ms(),
        )
    )
    kernel.ledger.append(
        tx,
        entry_type="decision",
        actor=kernel.actor_ref(actor) if actor else "platform",
        action="agency.create",
        subject=None,
        obj={"agency": agency_id, "code": code, "kind": kind.value, "region": region_code},
    )
    emit(tx, "agency.created", {"agency": agency_id})
    return agency_id


def do_create_agency(
    ctx: Ctx | None, kernel: Kernel, *, code: str, names: dict[str, str], kind: AgencyKind, region_code: str
) -> str:
    """Create an agency; only a platform admin may (the CLI acts as the platform itself)."""
    actor = ctx.actor if ctx else None
    if ctx is not None:
        require(actor, "agencies.manage")
    return kernel.db.run(
        lambda tx: create_agency_tx(tx, kernel, code=code, names=names, kind=kind, region_code=region_code, actor=actor)
    )


# --- users ----------------------------------------------------------------------------------


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Problem("auth.weak_password", field="password", detail=f"at least {MIN_PASSWORD_LENGTH} characters")


def _check_username(username: str) -> str:
    username = username.strip().lower()
    if not (3 <= len(username) <= 64) or not all(c.isascii() and (c.isalnum() or c in "._-") for c in username):
        raise invalid("username", "3–64 characters: latin letters, digits, '.', '_' or '-'")
    return username


def do_create_user(
    ctx: Ctx | None,
    kernel: Kernel,
    *,
    username: str,
    password: str | None,
    role: Role | str,
    display_name: str | None = None,
    agency: str | None = None,
) -> str:
    """Create an account. `ctx` None means the operator's CLI, which acts with platform rights."""
    try:
        role = Role(role)
    except ValueError:
        raise Problem("auth.unknown_role", field="role", detail=str(role)) from None
    username = _check_username(username)
    if password is not None:
        _check_password(password)
    agency_id: str | None = None
    if agency:
        found = get_agency(kernel, agency)
        if found is None:
            raise Problem("auth.unknown_agency", field="agency", detail=agency)
        agency_id = found.id
    elif role in AGENCY_ROLES:
        raise invalid("agency", "this role belongs to an agency")
    actor = ctx.actor if ctx else None
    if ctx is not None:
        require(actor, "users.create", {"role": role, "agency_id": agency_id})
    pw_hash = hash_password(password) if password is not None else None
    user_id = new_id()

    def write(tx: Tx) -> str:
        taken = tx.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).scalar()
        if taken:
            raise Problem("auth.username_taken", field="username")
        now = utc_now_ms()
        tx.execute(
            t.users.insert().values(
                id=user_id,
                username=username,
                display_name=(display_name or username).strip()[:200],
                role=role.value,
                agency_id=agency_id,
                password_hash=pw_hash,
                created_at=now,
                # An operator who sets the password hands the account over: it counts as joined now.
                # Without a password the person joins when they use their invitation (auth/invites.py).
                joined_at=now if pw_hash else None,
            )
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=kernel.actor_ref(actor) if actor else "platform",
            action="account.create",
            subject=kernel.subject_ref("account", user_id),
            obj={"role": role.value, "agency": agency_id},
        )
        emit(tx, "account.created", {"account": user_id})
        return user_id

    return kernel.db.run(write)


def do_sign_up_citizen(kernel: Kernel, *, iin: str, phone: str, password: str, display_name: str | None = None) -> str:
    """A citizen opens an account with IIN (checksum validated) and a Kazakh phone number."""
    try:
        parsed_iin = kz.validate_iin(iin)
    except kz.InvalidIdentifier as exc:
        raise Problem("kz.iin.invalid", field="iin", detail=exc.code) from None
    try:
        parsed_phone = kz.parse_phone(phone)
    except kz.InvalidIdentifier as exc:
        raise Problem("kz.phone.invalid", field="phone", detail=exc.code) from None
    _check_password(password)
    iin_hash = kernel.hasher.hash("iin", parsed_iin.value)
    user_id = new_id()
    pw_hash = hash_password(password)

    def write(tx: Tx) -> str:
        if tx.execute(sa.select(t.users.c.id).where(t.users.c.iin_hash == iin_hash)).scalar():
            raise Problem("auth.iin_taken", field="iin")
        tx.execute(
            t.users.insert().values(
                id=user_id,
                username=f"c-{iin_hash[:16]}",
                display_name=(display_name or "").strip()[:200] or mask_iin(parsed_iin.value),
                role=Role.CITIZEN.value,
                password_hash=pw_hash,
                iin_hash=iin_hash,
                iin_enc=seal_text(kernel.keyring, parsed_iin.value, row_aad("users", "iin_enc", user_id)),
                phone_enc=seal_text(kernel.keyring, parsed_phone.e164, row_aad("users", "phone_enc", user_id)),
                created_at=(now := utc_now_ms()),
                joined_at=now,
            )
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor="citizen",
            action="account.sign_up",
            subject=kernel.subject_ref("iin", parsed_iin.value),
            obj={"role": "citizen"},
        )
        emit(tx, "account.created", {"account": user_id})
        return user_id

    return kernel.db.run(write)


def mask_iin(iin: str) -> str:
    return iin[:2] + "•" * 7 + iin[-3:]


def citizen_identity(kernel: Kernel, actor: Actor) -> dict[str, str] | None:
    """A citizen's own IIN and phone, decrypted for their own eyes."""
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.users).where(t.users.c.id == actor.user_id)).first()
    if row is None or row.iin_enc is None:
        return None
    return {
        "iin": unseal_text(kernel.keyring, row.iin_enc, row_aad("users", "iin_enc", row.id)),
        "phone": unseal_text(kernel.keyring, row.phone_enc, row_aad("users", "phone_enc", row.id)),
    }


def list_users(ctx: Ctx) -> list[UserView]:
    """Accounts the actor may see: all for a platform admin, their agency's for an agency admin."""
    actor = require(ctx.actor, "users.list")
    query = sa.select(t.users).order_by(t.users.c.username)
    if actor.role != Role.PLATFORM_ADMIN:
        query = query.where(t.users.c.agency_id == actor.agency_id)
    with ctx.kernel.db.read() as conn:
        return [_user_view(r) for r in conn.execute(query).all()]


def list_all_users(kernel: Kernel) -> list[UserView]:
    with kernel.db.read() as conn:
        return [_user_view(r) for r in conn.execute(sa.select(t.users).order_by(t.users.c.username)).all()]


def do_set_role(ctx: Ctx | None, kernel: Kernel, *, username: str, role: Role | str) -> None:
    """Change an account's role (platform admins only), recorded in the ledger."""
    try:
        role = Role(role)
    except ValueError:
        raise Problem("auth.unknown_role", field="role", detail=str(role)) from None
    actor = ctx.actor if ctx else None
    if ctx is not None:
        require(actor, "users.set_role")

    def write(tx: Tx) -> None:
        row = tx.execute(sa.select(t.users).where(t.users.c.username == username.strip().lower())).first()
        if row is None:
            raise Problem("http.not_found", field="username", detail="no such user")
        if role in AGENCY_ROLES and not row.agency_id:
            raise invalid("role", "this role belongs to an agency; the account has none")
        tx.execute(t.users.update().where(t.users.c.id == row.id).values(role=role.value))
        # A role change ends every session and token so old rights cannot linger.
        tx.execute(t.sessions.delete().where(t.sessions.c.user_id == row.id))
        tx.execute(
            t.api_tokens.update()
            .where(t.api_tokens.c.user_id == row.id, t.api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utc_now_ms())
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=kernel.actor_ref(actor) if actor else "platform",
            action="account.set_role",
            subject=kernel.subject_ref("account", row.id),
            obj={"from": row.role, "to": role.value},
        )
        emit(tx, "account.role_changed", {"account": row.id})

    kernel.db.run(write)


# --- sign-in and sessions -------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    session_token: str
    actor: Actor


def _find_login_row(conn: Any, kernel: Kernel, login: str) -> Any:
    login = login.strip()
    if kz.is_valid_iin(login):
        cond = t.users.c.iin_hash == kernel.hasher.hash("iin", login)
    else:
        cond = t.users.c.username == login.lower()
    return conn.execute(sa.select(t.users).where(cond)).first()


def authenticate(kernel: Kernel, login: str, password: str, *, now_ms: int | None = None) -> Any:
    """Check a password with per-account lockout; return the account row or raise a Problem."""
    now_ms = utc_now_ms() if now_ms is None else now_ms
    with kernel.db.read() as conn:
        row = _find_login_row(conn, kernel, login)
    if row is not None and row.locked_until > now_ms:
        retry = max(1, (row.locked_until - now_ms + 999) // 1000)
        raise Problem("auth.locked", headers={"Retry-After": str(retry)}, extra={"retry_after": retry})
    ok = verify_password(row.password_hash if row is not None else None, password)
    if row is None or not ok:
        if row is not None:
            s = kernel.settings

            def fail(tx: Tx) -> None:
                current = tx.execute(sa.select(t.users.c.failed_logins).where(t.users.c.id == row.id)).scalar_one()
                failures = current + 1
                over = failures - s.login_max_failures
                values: dict[str, Any] = {"failed_logins": failures}
                if over >= 0:
                    wait = lockout_seconds(over, s.login_lockout_seconds, s.login_lockout_max_seconds)
                    values["locked_until"] = now_ms + wait * 1000
                tx.execute(t.users.update().where(t.users.c.id == row.id).values(**values))

            kernel.db.run(fail)
        raise Problem("auth.invalid_credentials")
    if row.disabled:
        raise Problem("auth.disabled")
    new_hash = hash_password(password) if needs_rehash(row.password_hash) else None

    def succeed(tx: Tx) -> None:
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": 0, "last_login_at": now_ms}
        if new_hash:
            values["password_hash"] = new_hash
        tx.execute(t.users.update().where(t.users.c.id == row.id).values(**values))

    kernel.db.run(succeed)
    return row


def do_sign_in(kernel: Kernel, login: str, password: str) -> SignIn:
    """Verify credentials and open a server-side session; the token goes only into the cookie."""
    row = authenticate(kernel, login, password)
    token = secrets.token_urlsafe(32)
    now = utc_now_ms()
    ttl = kernel.settings.session_ttl_minutes * 60_000

    def write(tx: Tx) -> None:
        tx.execute(
            t.sessions.insert().values(id_hash=_digest(token), user_id=row.id, created_at=now, expires_at=now + ttl)
        )
        # Clear out expired sessions opportunistically; an index on expires_at keeps this cheap.
        tx.execute(t.sessions.delete().where(t.sessions.c.expires_at < now))

    kernel.db.run(write)
    return SignIn(session_token=token, actor=_actor(row, session_id=_digest(token)))


def do_sign_out(kernel: Kernel, session_token: str) -> None:
    kernel.db.run(lambda tx: tx.execute(t.sessions.delete().where(t.sessions.c.id_hash == _digest(session_token))))


def resolve_session(kernel: Kernel, session_token: str) -> Actor | None:
    """The actor behind a session cookie, or None if unknown, expired or disabled."""
    if not session_token or len(session_token) > 128:
        return None
    digest = _digest(session_token)
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(t.users)
            .join(t.sessions, t.sessions.c.user_id == t.users.c.id)
            .where(t.sessions.c.id_hash == digest, t.sessions.c.expires_at > utc_now_ms())
        ).first()
    if row is None or row.disabled:
        return None
    return _actor(row, session_id=digest)


def do_set_locale(kernel: Kernel, actor: Actor, lang: str) -> None:
    kernel.db.run(lambda tx: tx.execute(t.users.update().where(t.users.c.id == actor.user_id).values(locale=lang)))


def csrf_token(secret: bytes, binding: str) -> str:
    """A CSRF token bound to a session (or to a pre-session cookie): derived, never stored."""
    return hmac.new(secret, b"csrf\x00" + binding.encode(), hashlib.sha256).hexdigest()


# --- API tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiTokenView:
    id: str
    name: str
    scopes: list[str]
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


def do_create_api_token(ctx: Ctx, *, name: str, scopes: list[str]) -> tuple[str, str]:
    """Issue a bearer token for the actor; returns (token id, token) — the token is shown once."""
    actor = require(ctx.actor, "account.manage_tokens")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise invalid("name", "1–100 characters")
    clean = sorted({s.strip() for s in scopes if s.strip()})
    if not clean or any(not (s == "*" or s.replace("_", "").isalnum()) for s in clean):
        raise invalid("scopes", "a list of scope names, or '*'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id()
    ctx.kernel.db.run(
        lambda tx: tx.execute(
            t.api_tokens.insert().values(
                id=token_id,
                user_id=actor.user_id,
                name=name,
                token_hash=_digest(token),
                scopes=" ".join(clean),
                created_at=utc_now_ms(),
            )
        )
    )
    return token_id, token


def list_api_tokens(ctx: Ctx) -> list[ApiTokenView]:
    actor = require(ctx.actor, "account.manage_tokens")
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(
            sa.select(t.api_tokens).where(t.api_tokens.c.user_id == actor.user_id).order_by(t.api_tokens.c.created_at)
        ).all()
    return [ApiTokenView(r.id, r.name, r.scopes.split(), r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def do_revoke_api_token(ctx: Ctx, token_id: str) -> None:
    """Revoke one of the actor's own tokens; someone else's token is 'not found'."""
    actor = require(ctx.actor, "account.manage_tokens")

    def write(tx: Tx) -> None:
        res = tx.execute(
            t.api_tokens.update()
            .where(t.api_tokens.c.id == token_id, t.api_tokens.c.user_id == actor.user_id)
            .values(revoked_at=sa.func.coalesce(t.api_tokens.c.revoked_at, utc_now_ms()))
        )
        if res.rowcount == 0:
            raise Problem("http.not_found", detail="no such token")

    ctx.kernel.db.run(write)


def resolve_api_token(kernel: Kernel, token: str) -> Actor | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(
                t.users,
                t.api_tokens.c.scopes,
                t.api_tokens.c.id.label("token_id"),
                t.api_tokens.c.last_used_at,
            )
            .join(t.api_tokens, t.api_tokens.c.user_id == t.users.c.id)
            .where(t.api_tokens.c.token_hash == _digest(token), t.api_tokens.c.revoked_at.is_(None))
        ).first()
    if row is None or row.disabled:
        return None
    now = utc_now_ms()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_USE_RESOLUTION_MS:
        # Recorded at minute resolution, off the request's path: a token in a busy loop costs no write each call.
        kernel.writer.submit(
            lambda tx: tx.execute(
                t.api_tokens.update().where(t.api_tokens.c.id == row.token_id).values(last_used_at=now)
            )
        )
    return _actor(row, via="token", scopes=frozenset(row.scopes.split()))
