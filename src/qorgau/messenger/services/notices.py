"""Government notices: an agency admin broadcasts to agencies, roles or regions; each official confirms.

The audience is resolved into recipients when the notice goes out (officials who join later are not
retro-actively addressed), so the sender's share "confirmed" has a fixed denominator. Sending and
every confirmation are ledger entries; each confirmation also emits a kernel event, which is how the
sender's page updates live across processes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from qorgau.kernel import i18n
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth import tables as at
from qorgau.kernel.auth.policy import can, require, rule
from qorgau.kernel.auth.roles import ROLE_LABELS, Actor, Role
from qorgau.kernel.context import Ctx
from qorgau.kernel.crypto import row_aad, seal_text, unseal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.kernel.kz import regions
from qorgau.messenger import tables as t
from qorgau.messenger.domain import MESSENGER_ROLES

TITLE_MAX = 200
BODY_MAX = 4000
LIST_LIMIT = 200
TOPIC = "messenger.notice"


@dataclass(frozen=True)
class NoticeAccess:
    sender_account_id: str
    sender_agency_id: str | None


def _is_sender_role(actor: Actor | None) -> bool:
    return actor is not None and actor.role in (Role.AGENCY_ADMIN, Role.PLATFORM_ADMIN)


rule("messenger.notices.send")(lambda actor, _res: _is_sender_role(actor))
rule("messenger.notices.receive")(lambda actor, _res: actor is not None and actor.role in MESSENGER_ROLES)


@rule("messenger.notices.track")
def _track(actor: Actor | None, res: Any) -> bool:
    """The sender, and the admins of the sender's agency, follow who confirmed."""
    if not _is_sender_role(actor) or not isinstance(res, NoticeAccess):
        return False
    assert actor is not None
    if actor.user_id == res.sender_account_id:
        return True
    return actor.role == Role.AGENCY_ADMIN and actor.agency_id is not None and actor.agency_id == res.sender_agency_id


@dataclass
class Audience:
    """Whom a notice is for. Empty agencies and regions: every agency; empty roles: every official role.

    `accounts` names officials one by one (a reminder to those who have not joined) and then the
    other fields are ignored.
    """

    agencies: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(
            {"agencies": self.agencies, "roles": self.roles, "regions": self.regions, "accounts": len(self.accounts)},
            sort_keys=True,
        )


def _recipients(ctx: Ctx, audience: Audience) -> list[tuple[str, str | None]]:
    u = at.users
    official_roles = {r.value for r in MESSENGER_ROLES}
    query = sa.select(u.c.id, u.c.agency_id).where(u.c.role.in_(sorted(official_roles)), u.c.disabled == sa.false())
    if audience.accounts:
        query = query.where(u.c.id.in_(audience.accounts))
    else:
        if any(r not in official_roles for r in audience.roles):
            raise Problem("validation.field", field="roles")
        if any(r not in {x.code for x in regions()} for r in audience.regions):
            raise Problem("validation.field", field="regions")
        agencies = auth.list_agencies(ctx.kernel)
        known = {a.id for a in agencies}
        if any(a not in known for a in audience.agencies):
            raise Problem("validation.field", field="agencies")
        if audience.agencies or audience.regions:
            chosen = set(audience.agencies) | {a.id for a in agencies if a.region_code in audience.regions}
            query = query.where(u.c.agency_id.in_(sorted(chosen)))
        if audience.roles:
            query = query.where(u.c.role.in_(audience.roles))
    with ctx.kernel.db.read() as conn:
        return [(r.id, r.agency_id) for r in conn.execute(query.order_by(u.c.id))]


def _ledger(ctx: Ctx, tx: Tx, action: str, obj: dict[str, Any]) -> None:
    ctx.kernel.ledger.append(
        tx, entry_type="decision", actor=ctx.kernel.actor_ref(ctx.actor), action=action, subject=None, obj=obj
    )


async def do_send_notice(ctx: Ctx, title: str, body: str, audience: Audience) -> str:
    """Broadcast a notice; returns its id. Refused when nobody matches the audience."""
    actor = require(ctx.actor, "messenger.notices.send")
    title, body = title.strip(), body.strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise Problem("notices.title_length", field="title")
    if not 1 <= len(body) <= BODY_MAX:
        raise Problem("notices.body_length", field="body")
    if audience.accounts and actor.role == Role.AGENCY_ADMIN:
        # Named officials: an agency admin reminds their own agency's people only.
        audience.accounts = _own_agency_accounts(ctx, audience.accounts, actor.agency_id)
    recipients = _recipients(ctx, audience)
    if not recipients:
        raise Problem("notices.no_recipients", field="audience")
    notice_id = uuid.uuid4().hex
    now = utc_now_ms()
    keyring = ctx.kernel.keyring

    def write(tx: Tx) -> str:
        tx.execute(
            t.notices.insert().values(
                id=notice_id,
                sender_account_id=actor.user_id,
                sender_agency_id=actor.agency_id,
                title=seal_text(keyring, title, row_aad(t.notices.name, "title", notice_id)),
                body=seal_text(keyring, body, row_aad(t.notices.name, "body", notice_id)),
                audience=audience.as_json(),
                recipients=len(recipients),
                created_at=now,
            )
        )
        tx.execute(
            t.notice_recipients.insert(),
            [{"notice_id": notice_id, "account_id": a, "agency_id": g, "confirmed_at": None} for a, g in recipients],
        )
        _ledger(ctx, tx, "notice.sent", {"notice": notice_id, "recipients": len(recipients)})
        emit(tx, TOPIC, {"notice": notice_id})
        return notice_id

    return await ctx.kernel.writer.arun(write)


def _own_agency_accounts(ctx: Ctx, accounts: list[str], agency_id: str | None) -> list[str]:
    u = at.users
    with ctx.kernel.db.read() as conn:
        own = set(conn.execute(sa.select(u.c.id).where(u.c.id.in_(accounts), u.c.agency_id == agency_id)).scalars())
    if set(accounts) - own:
        raise Problem("auth.forbidden")
    return sorted(own)


# --- the recipient's side ---------------------------------------------------------------------


@dataclass
class ReceivedNotice:
    id: str
    title: str
    body: str
    sender_agency: str
    created_at: int
    confirmed_at: int | None


def _open(ctx: Ctx, blob: bytes, column: str, notice_id: str) -> str:
    return unseal_text(ctx.kernel.keyring, blob, row_aad(t.notices.name, column, notice_id))


def my_notices(ctx: Ctx, *, lang: str = "en") -> list[ReceivedNotice]:
    """The actor's notices: those still to confirm first, then the newest."""
    actor = require(ctx.actor, "messenger.notices.receive")
    n, r = t.notices, t.notice_recipients
    names = {a.id: a.name(lang) for a in auth.list_agencies(ctx.kernel)}
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(
            sa.select(n.c.id, n.c.title, n.c.body, n.c.sender_agency_id, n.c.created_at, r.c.confirmed_at)
            .join(r, r.c.notice_id == n.c.id)
            .where(r.c.account_id == actor.user_id)
            .order_by(r.c.confirmed_at.is_not(None), n.c.created_at.desc())
            .limit(LIST_LIMIT)
        ).all()
    return [
        ReceivedNotice(
            x.id,
            _open(ctx, x.title, "title", x.id),
            _open(ctx, x.body, "body", x.id),
            names.get(x.sender_agency_id or "", ""),
            x.created_at,
            x.confirmed_at,
        )
        for x in rows
    ]


def unconfirmed_count(ctx: Ctx) -> int:
    """How many notices the actor has not confirmed yet (0 for those who receive none)."""
    if not can(ctx.actor, "messenger.notices.receive"):
        return 0
    assert ctx.actor is not None
    r = t.notice_recipients
    with ctx.kernel.db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(r)
                .where(r.c.account_id == ctx.actor.user_id, r.c.confirmed_at.is_(None))
            ).scalar()
            or 0
        )


async def do_confirm(ctx: Ctx, notice_id: str) -> bool:
    """Confirm having read a notice; True the first time, False when it was already confirmed."""
    actor = require(ctx.actor, "messenger.notices.receive")
    r = t.notice_recipients
    now = utc_now_ms()

    def write(tx: Tx) -> bool:
        row = tx.execute(
            sa.select(r.c.confirmed_at).where(r.c.notice_id == notice_id, r.c.account_id == actor.user_id)
        ).first()
        if row is None:
            raise Problem("notices.not_found")
        if row.confirmed_at is not None:
            return False
        tx.execute(
            r.update().where(r.c.notice_id == notice_id, r.c.account_id == actor.user_id).values(confirmed_at=now)
        )
        _ledger(ctx, tx, "notice.confirmed", {"notice": notice_id})
        emit(tx, TOPIC, {"notice": notice_id})
        return True

    return await ctx.kernel.writer.arun(write)


# --- the sender's side ------------------------------------------------------------------------


@dataclass
class AgencyShare:
    agency_id: str | None
    name: str
    recipients: int
    confirmed: int

    @property
    def percent(self) -> int:
        return round(100 * self.confirmed / self.recipients) if self.recipients else 0


@dataclass
class SentNotice:
    id: str
    title: str
    body: str
    created_at: int
    audience: dict[str, Any]
    recipients: int
    confirmed: int
    by_agency: list[AgencyShare]

    @property
    def percent(self) -> int:
        return round(100 * self.confirmed / self.recipients) if self.recipients else 0


def _shares(conn: Any, notice_ids: list[str]) -> dict[str, list[tuple[str | None, int, int]]]:
    r = t.notice_recipients
    confirmed = sa.func.count(r.c.confirmed_at)
    rows = conn.execute(
        sa.select(r.c.notice_id, r.c.agency_id, sa.func.count(), confirmed)
        .where(r.c.notice_id.in_(notice_ids))
        .group_by(r.c.notice_id, r.c.agency_id)
    ).all()
    found: dict[str, list[tuple[str | None, int, int]]] = {}
    for notice_id, agency_id, total, done in rows:
        found.setdefault(notice_id, []).append((agency_id, int(total), int(done)))
    return found


def _sent(ctx: Ctx, rows: list[Any], lang: str) -> list[SentNotice]:
    names = {a.id: a.name(lang) for a in auth.list_agencies(ctx.kernel)}
    with ctx.kernel.db.read() as conn:
        shares = _shares(conn, [x.id for x in rows])
    result = []
    for x in rows:
        by_agency = [AgencyShare(a, names.get(a or "", "—"), total, done) for a, total, done in shares.get(x.id, [])]
        # The agencies lagging behind come first: they are whom the sender has to chase.
        by_agency.sort(key=lambda s: (s.percent, s.name))
        result.append(
            SentNotice(
                x.id,
                _open(ctx, x.title, "title", x.id),
                _open(ctx, x.body, "body", x.id),
                x.created_at,
                json.loads(x.audience),
                x.recipients,
                sum(s.confirmed for s in by_agency),
                by_agency,
            )
        )
    return result


def sent_notices(ctx: Ctx, *, lang: str = "en") -> list[SentNotice]:
    """Notices the actor (platform admin) or the actor's agency (agency admin) sent, newest first."""
    actor = require(ctx.actor, "messenger.notices.send")
    n = t.notices
    query = sa.select(n).order_by(n.c.created_at.desc()).limit(LIST_LIMIT)
    if actor.role == Role.AGENCY_ADMIN and actor.agency_id:
        query = query.where(n.c.sender_agency_id == actor.agency_id)
    else:
        query = query.where(n.c.sender_account_id == actor.user_id)
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(query).all()
    return _sent(ctx, rows, lang)


def tracked_access(ctx: Ctx, notice_id: str) -> Any:
    """The notice's row, for those who may follow it; "not found" for everyone else."""
    require(ctx.actor, "messenger.notices.send")
    n = t.notices
    with ctx.kernel.db.read() as conn:
        row = conn.execute(sa.select(n).where(n.c.id == notice_id)).first() if len(notice_id) == 32 else None
    if row is None or not can(
        ctx.actor, "messenger.notices.track", NoticeAccess(row.sender_account_id, row.sender_agency_id)
    ):
        raise Problem("notices.not_found")
    return row


def tracked_notice(ctx: Ctx, notice_id: str, *, lang: str = "en") -> SentNotice:
    """One sent notice with the share confirmed per agency, for its sender."""
    return _sent(ctx, [tracked_access(ctx, notice_id)], lang)[0]


def confirmed_count(ctx: Ctx, notice_id: str) -> int:
    """How many recipients have confirmed a notice the actor tracks (cheap: for live updates)."""
    tracked_access(ctx, notice_id)
    r = t.notice_recipients
    with ctx.kernel.db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count(r.c.confirmed_at)).where(r.c.notice_id == notice_id)).scalar() or 0
        )


def audience_choices(ctx: Ctx, *, lang: str = "en") -> dict[str, list[tuple[str, str]]]:
    """What a sender can pick from: agencies, official roles, regions (value, label)."""
    require(ctx.actor, "messenger.notices.send")
    agencies = sorted(((a.id, a.name(lang)) for a in auth.list_agencies(ctx.kernel)), key=lambda x: x[1])
    roles = [(r.value, i18n.gettext(lang, ROLE_LABELS[r])) for r in sorted(MESSENGER_ROLES, key=lambda r: r.value)]
    places = sorted(((r.code, r.name(lang)) for r in regions()), key=lambda x: x[1])
    return {"agencies": agencies, "roles": roles, "regions": places}
