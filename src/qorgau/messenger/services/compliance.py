"""Records management for the messenger: retention, legal hold, and exports of rooms and letters.

- Retention: messages older than the period set for their room's kind (direct, group, ДСП) lose their
  content the way a redaction removes it; state (names, membership) stays so the room still makes
  sense. A room under legal hold is never purged. A period of 0 keeps messages for ever.
- Legal hold: a security officer (or the agency admin) of the room's agency puts a room under
  investigation on hold, with a reason, and lifts it; both are ledger entries.
- Export: a ZIP with JSON and the files. A room's members may export it, and so may the security
  officer of its agency; a letter, the officials of its sending or addressee agencies. ДСП content
  is withheld unless the exporter may export it (`domain.may_export_dsp`). Each export is a ledger
  entry saying who exported what, and how much was withheld.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import can, require, rule
from qorgau.kernel.auth.roles import Actor, Role
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import seal
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.i18n import N_
from qorgau.kernel.observability import log
from qorgau.messenger import media
from qorgau.messenger import tables as t
from qorgau.messenger.domain import MESSENGER_ROLES, Membership, may_export_dsp, redact_content
from qorgau.messenger.services import letters
from qorgau.messenger.services.access import MxCtx, room_access
from qorgau.messenger.services.events import StoredEvent, content_aad, current_state, events_from_rows
from qorgau.messenger.services.visibility import room_visibility

DAY_MS = 86_400_000
PURGE_BATCH = 500
# Marks an event whose content the retention rule removed (in place of a redaction event's id).
RETENTION_MARK = "retention"
HOLD_REASON_LABELS: dict[str, str] = {
    "investigation": N_("Internal investigation"),
    "court_request": N_("Request of a court or prosecutor"),
    "audit": N_("Audit"),
    "complaint": N_("Complaint under review"),
}
HOLD_REASONS = tuple(HOLD_REASON_LABELS)
KIND_LABELS: dict[str, str] = {"direct": N_("Direct chat"), "group": N_("Group chat"), "dsp": N_("ДСП room")}
_MXC = re.compile(r"^mxc://([^/]+)/([A-Za-z0-9_-]+)$")


def _officer_of(actor: Actor | None, agency_id: str | None) -> bool:
    return (
        actor is not None
        and actor.role in (Role.SECURITY_OFFICER, Role.AGENCY_ADMIN)
        and actor.agency_id is not None
        and actor.agency_id == agency_id
    )


rule("messenger.compliance")(
    lambda actor, _res: actor is not None and actor.role in (Role.SECURITY_OFFICER, Role.AGENCY_ADMIN)
)
rule("messenger.room.hold")(lambda actor, agency_id: _officer_of(actor, agency_id))


def _agency_record(actor: Actor | None, agency_id: str | None) -> bool:
    """Whether an export of a room is its agency's record: made by that agency's security officer."""
    return (
        actor is not None
        and actor.role == Role.SECURITY_OFFICER
        and actor.agency_id is not None
        and actor.agency_id == agency_id
    )


@rule("messenger.room.export")
def _export_room(actor: Actor | None, res: Any) -> bool:
    """A joined member, or the security officer of the room's agency."""
    if actor is None or actor.role not in MESSENGER_ROLES or not isinstance(res, tuple) or len(res) != 2:
        return False
    membership, agency_id = res
    return membership == Membership.JOIN or _agency_record(actor, agency_id)


# --- the rooms an officer looks after ----------------------------------------------------------


@dataclass
class RoomRecord:
    room_id: str
    name: str
    kind: str  # direct, group or dsp
    members: int
    created_at: int
    legal_hold: bool
    hold_reason: str | None
    hold_since: int | None
    retention_days: int


def room_kind(is_direct: bool, dsp: bool) -> str:
    return "dsp" if dsp else "direct" if is_direct else "group"


def retention_days(kernel: Kernel, kind: str) -> int:
    s = kernel.settings
    return {
        "direct": s.messenger_retention_direct_days,
        "group": s.messenger_retention_group_days,
        "dsp": s.messenger_retention_dsp_days,
    }[kind]


def _room_name(kernel: Kernel, conn: Connection, room_id: str) -> str:
    for event in current_state(kernel, conn, room_id):
        if event.type == "m.room.name" and isinstance(event.content.get("name"), str):
            return str(event.content["name"])
    return ""


def agency_rooms(ctx: Ctx) -> list[RoomRecord]:
    """The rooms created in the officer's agency, those on hold first (no message content)."""
    actor = require(ctx.actor, "messenger.compliance")
    r, m = t.rooms, t.members
    joined = (
        sa.select(sa.func.count())
        .where(m.c.room_id == r.c.room_id, m.c.membership == Membership.JOIN)
        .scalar_subquery()
    )
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(
            sa.select(r, joined.label("joined"))
            .where(r.c.agency_id == actor.agency_id)
            .order_by(r.c.legal_hold.desc(), r.c.created_at.desc())
            .limit(500)
        ).all()
        names = {row.room_id: _room_name(ctx.kernel, conn, row.room_id) for row in rows}
    return [
        RoomRecord(
            row.room_id,
            names[row.room_id],
            room_kind(bool(row.is_direct), bool(row.dsp)),
            int(row.joined),
            row.created_at,
            bool(row.legal_hold),
            row.legal_hold_reason,
            row.legal_hold_since,
            retention_days(ctx.kernel, room_kind(bool(row.is_direct), bool(row.dsp))),
        )
        for row in rows
    ]


# --- legal hold ---------------------------------------------------------------------------------


def _room_row(conn: Connection | Tx, room_id: str) -> Any:
    return conn.execute(sa.select(t.rooms).where(t.rooms.c.room_id == room_id)).first()


async def do_set_legal_hold(ctx: Ctx, room_id: str, *, hold: bool, reason: str | None = None) -> None:
    """Put a room on legal hold (with a reason from HOLD_REASONS) or lift it."""
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        row = _room_row(conn, room_id)
    if row is None or not can(ctx.actor, "messenger.room.hold", row.agency_id):
        # Rooms of other agencies are not disclosed.
        raise Problem("http.not_found")
    if hold and reason not in HOLD_REASONS:
        raise Problem("validation.field", field="reason")
    now = utc_now_ms()

    def write(tx: Tx) -> None:
        values = (
            {"legal_hold": True, "legal_hold_reason": reason, "legal_hold_since": now}
            if hold
            else {"legal_hold": False, "legal_hold_reason": None, "legal_hold_since": None}
        )
        tx.execute(t.rooms.update().where(t.rooms.c.room_id == room_id).values(**values))
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=kernel.actor_ref(ctx.actor),
            action="messenger.legal_hold" if hold else "messenger.legal_hold_lifted",
            subject=None,
            obj={"room": room_id, **({"reason": reason} if hold else {})},
        )

    await kernel.writer.arun(write)


# --- retention ----------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    events: int
    rooms: int


def purge_expired(kernel: Kernel, *, now_ms: int | None = None, dry_run: bool = False) -> PurgeResult:
    """Remove the content of messages past their room's retention period; rooms on hold are skipped.

    Idempotent: purged events are marked and not touched again. One ledger entry per room purged.
    """
    now = now_ms if now_ms is not None else utc_now_ms()
    r, e = t.rooms, t.events
    total_events, rooms_done = 0, 0
    with kernel.db.read() as conn:
        rooms = conn.execute(sa.select(r.c.room_id, r.c.is_direct, r.c.dsp).where(r.c.legal_hold == sa.false())).all()
    for room in rooms:
        days = retention_days(kernel, room_kind(bool(room.is_direct), bool(room.dsp)))
        if days <= 0:
            continue
        cutoff = now - days * DAY_MS
        expired = (
            e.c.room_id == room.room_id,
            e.c.state_key.is_(None),
            e.c.redacted_by.is_(None),
            e.c.type != "m.room.redaction",
            e.c.origin_server_ts < cutoff,
        )
        if dry_run:
            with kernel.db.read() as conn:
                count = int(conn.execute(sa.select(sa.func.count()).where(*expired)).scalar() or 0)
            total_events += count
            rooms_done += 1 if count else 0
            continue
        purged_here = 0
        while True:
            with kernel.db.read() as conn:
                batch = conn.execute(sa.select(e).where(*expired).order_by(e.c.stream_id).limit(PURGE_BATCH)).all()
                events = events_from_rows(kernel, conn, batch)
            if not events:
                break
            blobs = [
                (
                    ev.event_id,
                    seal(kernel.keyring, _json(redact_content(ev.type, ev.content)), content_aad(ev.event_id)),
                )
                for ev in events
            ]

            def write(tx: Tx, blobs: list[tuple[str, bytes]] = blobs) -> None:
                for event_id, blob in blobs:
                    tx.execute(
                        e.update()
                        .where(e.c.event_id == event_id, e.c.redacted_by.is_(None))
                        .values(content=blob, redacted_by=RETENTION_MARK)
                    )

            kernel.writer.run(write)
            purged_here += len(blobs)
        if purged_here:
            rooms_done += 1
            total_events += purged_here

            def record(tx: Tx, room_id: str = room.room_id, n: int = purged_here, d: int = days) -> None:
                kernel.ledger.append(
                    tx,
                    entry_type="decision",
                    actor="system:retention",
                    action="messenger.retention_purge",
                    subject=None,
                    obj={"room": room_id, "events": n, "days": d},
                )

            kernel.writer.run(record)
    # Decrypted contents are cached under (event id, redacted), so a purged event is read afresh.
    return PurgeResult(total_events, rooms_done)


async def run_purger(kernel: Kernel, interval: float = 3600.0, first_after: float = 90.0) -> None:
    """Apply the retention periods in the background every `interval` seconds; survives any error."""
    await asyncio.sleep(first_after)
    while True:
        try:
            result = await asyncio.to_thread(purge_expired, kernel)
            if result.events:
                log.info("messenger_purged", events=result.events, rooms=result.rooms)
                await asyncio.to_thread(kernel.ledger.sign_if_grown)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("messenger_purge_failed", error=type(exc).__name__)
        await asyncio.sleep(interval)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --- exports ------------------------------------------------------------------------------------


@dataclass
class Export:
    filename: str
    content: bytes


def _stamp(now: int) -> str:
    return datetime.fromtimestamp(now / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name, flags=re.UNICODE).strip("._")[:80] or "file"


def _media_of(event: StoredEvent) -> str | None:
    url = event.content.get("url")
    if isinstance(url, str) and (m := _MXC.match(url)):
        return m.group(2)
    return None


async def do_export_room(ctx: MxCtx, room_id: str) -> Export:
    """A room's history as a ZIP: manifest.json, events.json and files/ (ДСП withheld when not allowed)."""
    kernel = ctx.kernel
    actor = ctx.actor
    e = t.events
    with kernel.db.read() as conn:
        access = room_access(kernel, conn, room_id, ctx.user_id)
        if access is None or not can(actor, "messenger.room.export", (access.membership, access.agency_id)):
            raise Problem("http.not_found")
        query = sa.select(e).where(e.c.room_id == room_id)
        if not _agency_record(actor, access.agency_id):
            # A member exports what they may read: history hidden from them by the room's history
            # visibility stays out. The security officer of the room's agency exports everything: the
            # export is then the agency's record of the room, which must be complete.
            visibility = room_visibility(kernel, conn, room_id, ctx.user_id)
            if visibility is not None:
                query = query.where(visibility.clause(e))
        rows = conn.execute(query.order_by(e.c.stream_id)).all()
        history = events_from_rows(kernel, conn, rows)
        dsp_rows = {row.event_id for row in rows if row.dsp}
        name = _room_name(kernel, conn, room_id)
    dsp_allowed = may_export_dsp(actor, access.agency_id)
    exported: list[dict[str, Any]] = []
    withheld = 0
    files: dict[str, str] = {}
    for event in history:
        marked = access.dsp or event.event_id in dsp_rows
        if marked and not dsp_allowed and event.state_key is None:
            withheld += 1
            exported.append(
                {
                    "event_id": event.event_id,
                    "type": event.type,
                    "sender": event.sender,
                    "origin_server_ts": event.ts,
                    "withheld": "dsp",
                }
            )
            continue
        exported.append(event.to_dict())
        media_id = _media_of(event)
        if media_id:
            files[media_id] = str(event.content.get("body") or media_id)
    now = utc_now_ms()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        stored = 0
        for media_id, label in files.items():
            try:
                # Access was decided for the whole room above (a member or its agency's security officer).
                item = media.load_media(kernel, media_id)
            except Problem:
                continue
            archive.writestr(f"files/{media_id}-{_safe(item.filename or label)}", item.content)
            stored += 1
        manifest = {
            "format": "qorgau.messenger.room-export/1",
            "room_id": room_id,
            "name": name,
            "dsp_room": access.dsp,
            "exported_at": now,
            "exported_by": ctx.user_id,
            "events": len(exported),
            "withheld_dsp": withheld,
            "files": stored,
        }
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        archive.writestr("events.json", json.dumps(exported, ensure_ascii=False, indent=2))

    def record(tx: Tx) -> None:
        kernel.ledger.append(
            tx,
            entry_type="access",
            actor=kernel.actor_ref(actor),
            action="messenger.room_exported",
            subject=None,
            obj={"room": room_id, "events": len(exported), "withheld_dsp": withheld, "files": stored},
        )

    await kernel.writer.arun(record)
    return Export(f"room-{_safe(name or room_id)}-{_stamp(now)}.zip", out.getvalue())


async def do_export_letter(ctx: Ctx, letter_id: str, *, lang: str = "en") -> Export:
    """A letter's file as a ZIP: the letter, its route, the letters answering it, and every attachment."""
    kernel = ctx.kernel
    view = letters.letter_view(ctx, letter_id, lang=lang, record=False)
    # Reading the letter was already checked: the exporter's own agency sent or received it.
    dsp_allowed = may_export_dsp(ctx.actor)
    chain = [view] + [letters.letter_view(ctx, answer_id, lang=lang, record=False) for answer_id, _n in view.answers]
    now = utc_now_ms()
    out = io.BytesIO()
    withheld = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        documents = []
        for item in chain:
            hide = item.dsp and not dsp_allowed
            withheld += 1 if hide else 0
            documents.append(
                {
                    "id": item.id,
                    "registration_number": item.reg_number,
                    "from_agency": item.agency_name,
                    "sender": item.sender_name,
                    "registered_at": item.registered_at,
                    "due_at": item.due_at,
                    "dsp": item.dsp,
                    "subject": None if hide else item.subject,
                    "body": None if hide else item.body,
                    "withheld": "dsp" if hide else None,
                    "in_reply_to": item.in_reply_to[1] if item.in_reply_to else None,
                    "addressees": [
                        {
                            "agency": a.agency_name,
                            "official": a.account_name,
                            "state": a.state,
                            "delivered_at": a.delivered_at,
                            "read_at": a.read_at,
                            "answered_at": a.answered_at,
                            "answer": a.answer_number,
                        }
                        for a in item.addressees
                    ],
                    "attachments": [f.filename for f in item.files] if not hide else [],
                }
            )
            if not hide:
                folder = _safe(item.reg_number)
                for f in item.files:
                    stored = letters.letter_file(ctx, item.id, f.position)
                    archive.writestr(f"{folder}/{f.position + 1}-{_safe(f.filename)}", stored.content)
        manifest = {
            "format": "qorgau.messenger.letter-export/1",
            "letter": view.reg_number,
            "exported_at": now,
            "letters": len(documents),
            "withheld_dsp": withheld,
        }
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        archive.writestr("letters.json", json.dumps(documents, ensure_ascii=False, indent=2))

    def record(tx: Tx) -> None:
        kernel.ledger.append(
            tx,
            entry_type="access",
            actor=kernel.actor_ref(ctx.actor),
            action="letter.exported",
            subject=None,
            obj={"letter": letter_id, "letters": len(documents), "withheld_dsp": withheld},
        )

    await kernel.writer.arun(record)
    return Export(f"letter-{_safe(view.reg_number)}-{_stamp(now)}.zip", out.getvalue())


def agency_name(ctx: Ctx, lang: str) -> str:
    agency = auth.get_agency(ctx.kernel, ctx.actor.agency_id or "") if ctx.actor else None
    return agency.name(lang) if agency else ""
