"""The seam for signing in through an external identity provider (an eGov-style OpenID Connect IdP).

A provider turns a browser redirect into a `VerifiedIdentity` (the IdP has checked the person); the
kernel then signs the citizen in, opening their account on first use. No provider ships yet: one is
registered with `register_provider` once the deployment has an IdP to trust, and the sign-in page
offers it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from qorgau.kernel import kz
from qorgau.kernel.auth import tables as t
from qorgau.kernel.auth.roles import Role
from qorgau.kernel.auth.services import SignIn, _actor, _digest, mask_iin, new_id
from qorgau.kernel.context import Kernel
from qorgau.kernel.crypto import row_aad, seal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a trusted provider vouches for: the person's IIN, and what else it shares."""

    provider: str
    iin: str
    phone_e164: str | None = None
    display_name: str | None = None


class IdentityProvider(Protocol):
    """An OpenID Connect provider: where to send the browser, and how to check what comes back."""

    name: str

    def authorization_url(self, *, state: str, nonce: str, redirect_uri: str) -> str: ...

    def complete(self, *, code: str, nonce: str, redirect_uri: str) -> VerifiedIdentity: ...


_PROVIDERS: dict[str, IdentityProvider] = {}


def register_provider(provider: IdentityProvider) -> None:
    _PROVIDERS[provider.name] = provider


def providers() -> list[IdentityProvider]:
    return list(_PROVIDERS.values())


def sign_in_verified(kernel: Kernel, identity: VerifiedIdentity) -> SignIn:
    """Open a session for the citizen a provider vouched for, creating the account on first use."""
    try:
        iin = kz.validate_iin(identity.iin).value
    except kz.InvalidIdentifier as exc:
        raise Problem("kz.iin.invalid", field="iin", detail=exc.code) from None
    iin_hash = kernel.hasher.hash("iin", iin)
    token = secrets.token_urlsafe(32)
    now = utc_now_ms()

    def write(tx: Tx) -> object:
        row = tx.execute(sa.select(t.users).where(t.users.c.iin_hash == iin_hash)).first()
        if row is None:
            user_id = new_id()
            tx.execute(
                t.users.insert().values(
                    id=user_id,
                    username=f"c-{iin_hash[:16]}",
                    display_name=(identity.display_name or "").strip()[:200] or mask_iin(iin),
                    role=Role.CITIZEN.value,
                    password_hash=None,
                    iin_hash=iin_hash,
                    iin_enc=seal_text(kernel.keyring, iin, row_aad("users", "iin_enc", user_id)),
                    phone_enc=(
                        seal_text(kernel.keyring, identity.phone_e164, row_aad("users", "phone_enc", user_id))
                        if identity.phone_e164
                        else None
                    ),
                    created_at=now,
                )
            )
            emit(tx, "account.created", {"account": user_id})
            row = tx.execute(sa.select(t.users).where(t.users.c.id == user_id)).one()
        if row.disabled:
            raise Problem("auth.disabled")
        tx.execute(
            t.sessions.insert().values(
                id_hash=_digest(token),
                user_id=row.id,
                created_at=now,
                expires_at=now + kernel.settings.session_ttl_minutes * 60_000,
            )
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor="citizen",
            action="account.sign_in_external",
            subject=kernel.subject_ref("iin", iin),
            obj={"provider": identity.provider},
        )
        return row

    row = kernel.db.run(write)
    return SignIn(session_token=token, actor=_actor(row, session_id=_digest(token)))
