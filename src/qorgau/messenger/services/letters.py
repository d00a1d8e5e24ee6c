"""Official letters: register, deliver, read, answer — and the agency's registry of letters in and out.

An official writes on behalf of their agency; the agency's office (any of its officials) sees the
letters it sent and received. Each addressee agency's state moves forward only, and every change of
state is a ledger entry (identifiers and registration numbers only, never subject or text).
Subjects, texts and files are sealed at rest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth import tables as at
from qorgau.kernel.auth.policy import can, require, rule
from qorgau.kernel.auth.roles import Actor
from qorgau.kernel.context import Ctx
from qorgau.kernel.crypto import row_aad, seal_text, unseal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.messenger import media
from qorgau.messenger import tables as t
from qorgau.messenger.domain import MESSENGER_ROLES, dsp_view_is_ledgered
from qorgau.messenger.letters import (
    BODY_MAX,
    MAX_ADDRESSEES,
    MAX_ATTACHMENTS,
    SUBJECT_MAX,
    LetterState,
    advances,
    due_at_ms,
    format_number,
    is_overdue,
    registration_prefix,
    registration_year,
    reply_subject,
    today,
)

REGISTRY_LIMIT = 500


@dataclass(frozen=True)
class LetterAccess:
    """What decides who sees a letter: the sending agency and the addressee agencies."""

    agency_id: str
    addressees: frozenset[str]


def _official_of_agency(actor: Actor | None) -> bool:
    return actor is not None and actor.role in MESSENGER_ROLES and actor.agency_id is not None


rule("messenger.letters.write")(lambda actor, _res: _official_of_agency(actor))


@rule("messenger.letters.read")
def _read(actor: Actor | None, res: Any) -> bool:
    """The sending agency's and the addressee agencies' officials see a letter; nobody else."""
    if not _official_of_agency(actor) or not isinstance(res, LetterAccess):
        return False
    assert actor is not None
    return actor.agency_id == res.agency_id or actor.agency_id in res.addressees


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    content: bytes
    content_type: str | None
    filename: str | None


@dataclass
class LetterDraft:
    """What the sender fills in; `addressee_account` names one official of the single addressee agency."""

    addressees: list[str]
    subject: str
    body: str
    due: date | None = None
    dsp: bool = False
    in_reply_to: str | None = None
    addressee_account: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class Registered:
    id: str
    reg_number: str


def _check_draft(ctx: Ctx, draft: LetterDraft, now: int) -> tuple[str, str, list[str]]:
    subject, body = draft.subject.strip(), draft.body.strip()
    if not 1 <= len(subject) <= SUBJECT_MAX:
        raise Problem("letters.subject_length", field="subject")
    if not 1 <= len(body) <= BODY_MAX:
        raise Problem("letters.body_length", field="body")
    addressees = list(dict.fromkeys(a for a in draft.addressees if a))
    if not addressees:
        raise Problem("letters.no_addressee", field="addressees")
    if len(addressees) > MAX_ADDRESSEES:
        raise Problem("letters.unknown_addressee", field="addressees")
    known = {a.id for a in auth.list_agencies(ctx.kernel)}
    if any(a not in known for a in addressees):
        raise Problem("letters.unknown_addressee", field="addressees")
    if draft.addressee_account is not None:
        with ctx.kernel.db.read() as conn:
            agency = conn.execute(
                sa.select(at.users.c.agency_id).where(
                    at.users.c.id == draft.addressee_account, at.users.c.role.in_([r.value for r in MESSENGER_ROLES])
                )
            ).scalar()
        if len(addressees) != 1 or agency != addressees[0]:
            raise Problem("letters.unknown_addressee", field="addressee_account")
    if draft.due is not None and draft.due < today(now):
        raise Problem("letters.due_in_past", field="due")
    if len(draft.attachments) > MAX_ATTACHMENTS:
        raise Problem("letters.too_many_attachments", field="files")
    limit = media.upload_limit(ctx.kernel)
    if any(len(a.content) > limit for a in draft.attachments):
        raise Problem("letters.attachment_too_large", field="files")
    return subject, body, addressees


def _next_number(tx: Tx, agency: auth.Agency, year: int) -> tuple[str, int]:
    """Take the agency's next serial for the year; the UPDATE's row lock orders concurrent senders."""
    reg = t.letter_registers
    where = (reg.c.agency_id == agency.id, reg.c.year == year)
    bumped = tx.execute(reg.update().where(*where).values(last_number=reg.c.last_number + 1))
    if bumped.rowcount == 0:
        prefix = registration_prefix(agency.names.get("ru", ""), agency.code)
        tx.execute(reg.insert().values(agency_id=agency.id, year=year, prefix=prefix, last_number=1))
    row = tx.execute(sa.select(reg.c.prefix, reg.c.last_number).where(*where)).one()
    return row.prefix, int(row.last_number)


def _ledger(ctx: Ctx, tx: Tx, action: str, obj: dict[str, Any]) -> None:
    ctx.kernel.ledger.append(
        tx, entry_type="decision", actor=ctx.kernel.actor_ref(ctx.actor), action=action, subject=None, obj=obj
    )


async def do_register_letter(ctx: Ctx, draft: LetterDraft) -> Registered:
    """Register and send a letter from the actor's agency; an answer marks its letter answered."""
    actor = require(ctx.actor, "messenger.letters.write")
    kernel = ctx.kernel
    now = utc_now_ms()
    subject, body, addressees = _check_draft(ctx, draft, now)
    agency = auth.get_agency(kernel, actor.agency_id or "")
    assert agency is not None
    if draft.in_reply_to is not None:
        with kernel.db.read() as conn:
            original = _addressee_row(conn, draft.in_reply_to, agency.id)
        if original is None:
            raise Problem("letters.reply_not_allowed", field="in_reply_to")
    # Files are cleaned and sealed like any messenger upload before the letter's transaction.
    media_ids = []
    for file in draft.attachments:
        try:
            uri = media.do_upload_media(ctx, file.content, file.content_type, file.filename)
        except Problem as exc:  # the media layer speaks Matrix; a letter form wants its own problems
            if exc.status == 413:
                raise Problem("letters.attachment_too_large", field="files") from exc
            raise Problem("letters.attachment_unreadable", field="files") from exc
        media_ids.append(uri.rsplit("/", 1)[-1])
    letter_id = uuid.uuid4().hex
    year = registration_year(now)

    def write(tx: Tx) -> Registered:
        prefix, number = _next_number(tx, agency, year)
        reg_number = format_number(prefix, year, number)
        aad = lambda column: row_aad(t.letters.name, column, letter_id)  # noqa: E731
        tx.execute(
            t.letters.insert().values(
                id=letter_id,
                agency_id=agency.id,
                year=year,
                number=number,
                reg_number=reg_number,
                sender_account_id=actor.user_id,
                subject=seal_text(kernel.keyring, subject, aad("subject")),
                body=seal_text(kernel.keyring, body, aad("body")),
                dsp=draft.dsp,
                due_at=due_at_ms(draft.due) if draft.due else None,
                in_reply_to=draft.in_reply_to,
                registered_at=now,
            )
        )
        for agency_id in addressees:
            tx.execute(
                t.letter_addressees.insert().values(
                    letter_id=letter_id,
                    agency_id=agency_id,
                    account_id=draft.addressee_account,
                    state=LetterState.REGISTERED.value,
                )
            )
        for position, media_id in enumerate(media_ids):
            tx.execute(t.letter_attachments.insert().values(letter_id=letter_id, position=position, media_id=media_id))
        _ledger(
            ctx,
            tx,
            "letter.registered",
            {"letter": letter_id, "number": reg_number, "from": agency.id, "to": addressees},
        )
        if draft.in_reply_to is not None:
            _advance(ctx, tx, draft.in_reply_to, agency.id, LetterState.ANSWERED, now, answer_id=letter_id)
        emit(tx, "messenger.letter", {"letter": letter_id})
        return Registered(letter_id, reg_number)

    return await kernel.writer.arun(write)


def _addressee_row(conn: Connection | Tx, letter_id: str, agency_id: str) -> Any:
    a = t.letter_addressees
    return conn.execute(sa.select(a).where(a.c.letter_id == letter_id, a.c.agency_id == agency_id)).first()


def _advance(
    ctx: Ctx, tx: Tx, letter_id: str, agency_id: str, new: LetterState, now: int, *, answer_id: str | None = None
) -> bool:
    """Move one addressee forward (filling in the steps it skipped); False when it is already there."""
    row = _addressee_row(tx, letter_id, agency_id)
    if row is None or not advances(row.state, new):
        return False
    values: dict[str, Any] = {"state": new.value}
    if row.delivered_at is None:
        values["delivered_at"] = now
    if new in (LetterState.READ, LetterState.ANSWERED) and row.read_at is None:
        values["read_at"] = now
        values["read_by"] = ctx.actor.user_id if ctx.actor else None
    if new == LetterState.ANSWERED:
        values["answered_at"] = now
        values["answer_id"] = answer_id
    a = t.letter_addressees
    tx.execute(a.update().where(a.c.letter_id == letter_id, a.c.agency_id == agency_id).values(**values))
    obj: dict[str, Any] = {"letter": letter_id, "agency": agency_id}
    if answer_id:
        obj["answer"] = answer_id
    _ledger(ctx, tx, f"letter.{new.value}", obj)
    emit(tx, "messenger.letter", {"letter": letter_id})
    return True


# --- the registry -----------------------------------------------------------------------------


@dataclass
class RegistryItem:
    id: str
    reg_number: str
    direction: str  # "in" or "out"
    subject: str
    counterpart: list[str]  # agency names: the sender (in) or the addressees (out)
    registered_at: int
    due_at: int | None
    state: str  # in: our state; out: the least advanced addressee's
    overdue: bool
    dsp: bool


@dataclass
class Registry:
    agency: auth.Agency
    items: list[RegistryItem]
    counts: dict[str, int]


def _agency_names(ctx: Ctx, lang: str) -> dict[str, str]:
    return {a.id: a.name(lang) for a in auth.list_agencies(ctx.kernel)}


def _open_text(ctx: Ctx, blob: bytes, column: str, letter_id: str) -> str:
    return unseal_text(ctx.kernel.keyring, blob, row_aad(t.letters.name, column, letter_id))


def _mark_delivered(ctx: Ctx, agency_id: str) -> None:
    """Letters the agency has not yet received become delivered when its registry first shows them."""
    a = t.letter_addressees
    with ctx.kernel.db.read() as conn:
        waiting = (
            conn.execute(
                sa.select(a.c.letter_id).where(a.c.agency_id == agency_id, a.c.state == LetterState.REGISTERED.value)
            )
            .scalars()
            .all()
        )
    if not waiting:
        return
    now = utc_now_ms()

    def write(tx: Tx) -> None:
        for letter_id in waiting:
            _advance(ctx, tx, letter_id, agency_id, LetterState.DELIVERED, now)

    ctx.kernel.writer.run(write)


def registry(ctx: Ctx, *, direction: str = "all", state: str = "", query: str = "", lang: str = "en") -> Registry:
    """The actor's agency's letters in and out: overdue first, then the newest; filters narrow it."""
    actor = require(ctx.actor, "messenger.letters.write")
    agency = auth.get_agency(ctx.kernel, actor.agency_id or "")
    assert agency is not None
    _mark_delivered(ctx, agency.id)
    now = utc_now_ms()
    names = _agency_names(ctx, lang)
    lt, a = t.letters, t.letter_addressees
    items: list[RegistryItem] = []
    with ctx.kernel.db.read() as conn:
        incoming = conn.execute(
            sa.select(lt, a.c.state)
            .join(a, a.c.letter_id == lt.c.id)
            .where(a.c.agency_id == agency.id)
            .order_by(lt.c.registered_at.desc())
            .limit(REGISTRY_LIMIT)
        ).all()
        outgoing = conn.execute(
            sa.select(lt).where(lt.c.agency_id == agency.id).order_by(lt.c.registered_at.desc()).limit(REGISTRY_LIMIT)
        ).all()
        out_ids = [r.id for r in outgoing]
        states: dict[str, list[tuple[str, str]]] = {}
        for r in conn.execute(sa.select(a.c.letter_id, a.c.agency_id, a.c.state).where(a.c.letter_id.in_(out_ids))):
            states.setdefault(r.letter_id, []).append((r.agency_id, r.state))
    for r in incoming:
        items.append(
            RegistryItem(
                r.id,
                r.reg_number,
                "in",
                _open_text(ctx, r.subject, "subject", r.id),
                [names.get(r.agency_id, r.agency_id)],
                r.registered_at,
                r.due_at,
                r.state,
                is_overdue(r.due_at, r.state, now),
                r.dsp,
            )
        )
    for r in outgoing:
        mine = states.get(r.id, [])
        least = min((s for _a, s in mine), key=lambda s: [x.value for x in LetterState].index(s), default="registered")
        items.append(
            RegistryItem(
                r.id,
                r.reg_number,
                "out",
                _open_text(ctx, r.subject, "subject", r.id),
                [names.get(x, x) for x, _s in mine],
                r.registered_at,
                r.due_at,
                least,
                any(is_overdue(r.due_at, s, now) for _a, s in mine),
                r.dsp,
            )
        )
    counts = {
        "in": sum(1 for i in items if i.direction == "in"),
        "out": sum(1 for i in items if i.direction == "out"),
        "overdue": sum(1 for i in items if i.overdue),
        "unread": sum(1 for i in items if i.direction == "in" and i.state in ("registered", "delivered")),
    }
    if direction in ("in", "out"):
        items = [i for i in items if i.direction == direction]
    if state == "overdue":
        items = [i for i in items if i.overdue]
    elif state in {s.value for s in LetterState}:
        items = [i for i in items if i.state == state]
    needle = query.strip().casefold()
    if needle:
        items = [i for i in items if needle in i.reg_number.casefold() or needle in i.subject.casefold()]
    items.sort(key=lambda i: (not i.overdue, -i.registered_at))
    return Registry(agency, items, counts)


# --- one letter -------------------------------------------------------------------------------


@dataclass
class AddresseeView:
    agency_id: str
    agency_name: str
    account_name: str | None
    state: str
    delivered_at: int | None
    read_at: int | None
    read_by_name: str | None
    answered_at: int | None
    answer_id: str | None
    answer_number: str | None
    overdue: bool


@dataclass
class FileView:
    position: int
    filename: str
    content_type: str
    size: int


@dataclass
class LetterView:
    id: str
    reg_number: str
    subject: str
    body: str
    agency_id: str
    agency_name: str
    sender_name: str
    registered_at: int
    due_at: int | None
    dsp: bool
    addressees: list[AddresseeView]
    files: list[FileView]
    in_reply_to: tuple[str, str] | None  # (id, number) of the letter this answers
    answers: list[tuple[str, str]]
    incoming: bool  # the actor's agency is an addressee
    may_answer: bool


def _load_access(conn: Connection, letter_id: str) -> tuple[Any, LetterAccess] | None:
    row = conn.execute(sa.select(t.letters).where(t.letters.c.id == letter_id)).first()
    if row is None:
        return None
    a = t.letter_addressees
    agencies = conn.execute(sa.select(a.c.agency_id).where(a.c.letter_id == letter_id)).scalars().all()
    return row, LetterAccess(row.agency_id, frozenset(agencies))


def _readable(ctx: Ctx, letter_id: str) -> tuple[Any, LetterAccess]:
    require(ctx.actor, "messenger.letters.write")
    with ctx.kernel.db.read() as conn:
        found = _load_access(conn, letter_id) if len(letter_id) == 32 else None
    # A letter of another agency is "not found", not "forbidden": its existence is not disclosed.
    if found is None or not can(ctx.actor, "messenger.letters.read", found[1]):
        raise Problem("letters.not_found")
    return found


def letter_view(ctx: Ctx, letter_id: str, *, lang: str = "en", record: bool = True) -> LetterView:
    """Open a letter; for its addressee this is the reading (recorded), for a security officer a ДСП view."""
    row, access = _readable(ctx, letter_id)
    actor = ctx.actor
    assert actor is not None and actor.agency_id is not None
    now = utc_now_ms()
    incoming = actor.agency_id in access.addressees
    with ctx.kernel.db.read() as conn:
        mine = _addressee_row(conn, letter_id, actor.agency_id) if incoming else None

    def record_view(tx: Tx) -> None:
        if mine is not None and (mine.account_id is None or mine.account_id == actor.user_id):
            _advance(ctx, tx, letter_id, actor.agency_id or "", LetterState.READ, now)
        if row.dsp and dsp_view_is_ledgered(actor):
            ctx.kernel.ledger.append(
                tx,
                entry_type="access",
                actor=ctx.kernel.actor_ref(actor),
                action="letter.dsp_view",
                subject=None,
                obj={"letter": letter_id},
            )

    opens = (mine is not None and mine.state in ("registered", "delivered")) or (
        row.dsp and dsp_view_is_ledgered(actor)
    )
    if record and opens:
        ctx.kernel.writer.run(record_view)
    names = _agency_names(ctx, lang)
    lt, a, u = t.letters, t.letter_addressees, at.users
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(sa.select(a).where(a.c.letter_id == letter_id)).all()
        people_ids = (
            {row.sender_account_id}
            | {r.account_id for r in rows if r.account_id}
            | {r.read_by for r in rows if r.read_by}
        )
        people = dict(conn.execute(sa.select(u.c.id, u.c.display_name).where(u.c.id.in_(people_ids))).all())
        related_ids = {r.answer_id for r in rows if r.answer_id} | ({row.in_reply_to} if row.in_reply_to else set())
        numbers = dict(conn.execute(sa.select(lt.c.id, lt.c.reg_number).where(lt.c.id.in_(related_ids))).all())
        answers = conn.execute(
            sa.select(lt.c.id, lt.c.reg_number).where(lt.c.in_reply_to == letter_id).order_by(lt.c.registered_at)
        ).all()
        files = conn.execute(
            sa.select(
                t.letter_attachments.c.position,
                t.media.c.media_id,
                t.media.c.filename,
                t.media.c.content_type,
                t.media.c.size,
            )
            .join(t.media, t.media.c.media_id == t.letter_attachments.c.media_id)
            .where(t.letter_attachments.c.letter_id == letter_id)
            .order_by(t.letter_attachments.c.position)
        ).all()
    addressees = [
        AddresseeView(
            r.agency_id,
            names.get(r.agency_id, r.agency_id),
            people.get(r.account_id) if r.account_id else None,
            r.state,
            r.delivered_at,
            r.read_at,
            people.get(r.read_by) if r.read_by else None,
            r.answered_at,
            r.answer_id,
            numbers.get(r.answer_id) if r.answer_id else None,
            is_overdue(row.due_at, r.state, now),
        )
        for r in sorted(rows, key=lambda r: names.get(r.agency_id, ""))
    ]
    keyring = ctx.kernel.keyring
    file_views = [
        FileView(
            f.position,
            unseal_text(keyring, f.filename, row_aad(t.media.name, "filename", f.media_id)) if f.filename else "",
            f.content_type,
            f.size,
        )
        for f in files
    ]
    return LetterView(
        id=letter_id,
        reg_number=row.reg_number,
        subject=_open_text(ctx, row.subject, "subject", letter_id),
        body=_open_text(ctx, row.body, "body", letter_id),
        agency_id=row.agency_id,
        agency_name=names.get(row.agency_id, row.agency_id),
        sender_name=people.get(row.sender_account_id, ""),
        registered_at=row.registered_at,
        due_at=row.due_at,
        dsp=bool(row.dsp),
        addressees=addressees,
        files=file_views,
        in_reply_to=(row.in_reply_to, numbers.get(row.in_reply_to, "")) if row.in_reply_to else None,
        answers=[(x.id, x.reg_number) for x in answers],
        incoming=incoming,
        may_answer=incoming,
    )


def letter_file(ctx: Ctx, letter_id: str, position: int) -> media.StoredMedia:
    """One attached file, for those who may read the letter."""
    _readable(ctx, letter_id)
    la = t.letter_attachments
    with ctx.kernel.db.read() as conn:
        media_id = conn.execute(
            sa.select(la.c.media_id).where(la.c.letter_id == letter_id, la.c.position == position)
        ).scalar()
    if media_id is None:
        raise Problem("http.not_found")
    # Access is the letter's: its agencies' officials, whoever uploaded the file.
    return media.load_media(ctx.kernel, media_id)


@dataclass(frozen=True)
class Addressable:
    agency_id: str
    name: str
    officials: list[tuple[str, str]]  # (account id, display name)


def addressable(ctx: Ctx, *, lang: str = "en") -> list[Addressable]:
    """Agencies a letter can go to, each with its officials (for naming one addressee)."""
    require(ctx.actor, "messenger.letters.write")
    u = at.users
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(
            sa.select(u.c.id, u.c.display_name, u.c.agency_id)
            .where(u.c.role.in_([r.value for r in MESSENGER_ROLES]), u.c.disabled == sa.false())
            .order_by(u.c.display_name)
        ).all()
    people: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        people.setdefault(r.agency_id, []).append((r.id, r.display_name))
    agencies = sorted(auth.list_agencies(ctx.kernel), key=lambda a: a.name(lang))
    return [Addressable(a.id, a.name(lang), people.get(a.id, [])) for a in agencies]


def draft_reply(ctx: Ctx, letter_id: str, *, lang: str = "en") -> LetterDraft:
    """A reply's starting point: to the sending agency and official, the subject marked once."""
    row, access = _readable(ctx, letter_id)
    if ctx.actor is None or ctx.actor.agency_id not in access.addressees:
        raise Problem("letters.reply_not_allowed")
    subject = _open_text(ctx, row.subject, "subject", letter_id)
    return LetterDraft(
        addressees=[row.agency_id],
        subject=reply_subject(subject),
        body="",
        in_reply_to=letter_id,
        addressee_account=row.sender_account_id,
        dsp=bool(row.dsp),
    )
