"""The police unit's side: its queue, a report's original (every view in the ledger), the regulation's
steps, and the conversation with the reporter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth import tables as auth_tables
from qorgau.kernel.auth.policy import require
from qorgau.kernel.auth.roles import Actor, AgencyKind
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import row_aad, unseal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.reports import catalog, protection
from qorgau.reports import tables as t
from qorgau.reports.domain import (
    FINAL,
    MESSAGE_MAX,
    Status,
    Step,
    WorkflowError,
    WorkflowRole,
    available_steps,
    decide,
    due_after,
    is_overdue,
)
from qorgau.reports.services.common import (
    deadlines,
    history_of,
    load_report,
    new_id,
    notify,
    problem_of,
    report_key,
    staff_of_report,
    staff_ref,
    unit_public_key,
    unit_scope,
    workflow_role,
)
from qorgau.reports.services.duplicates import MergedItem, Suggestion, merged_into, queue_counts, suggestions
from qorgau.reports.services.reporter import Message, _files, messages_of

# --- the queue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    id: str
    ref: str
    category: catalog.Category | None
    region_code: str
    status: Status
    submitted_at: int
    due_at: int | None
    overdue: bool
    named: bool
    routed_by_fallback: bool
    unread_reply: bool
    # How many open reports of the same category and place came within the duplicate window.
    possible_duplicates: int = 0
    purged: bool = False


@dataclass(frozen=True)
class Queue:
    unit: auth.Agency
    items: list[QueueItem]
    show: str


def staff_unit(ctx: Ctx) -> auth.Agency:
    """The police unit the actor works in (officer or its head); others may not see any queue."""
    actor = ctx.actor
    scope = unit_scope(ctx.kernel, actor.agency_id if actor else None)
    require(actor, "reports.queue", scope)
    unit = auth.get_agency(ctx.kernel, scope.unit_id or "")
    assert unit is not None
    return unit


def unit_queue(ctx: Ctx, show: str = "open") -> Queue:
    """The unit's reports: overdue first, then by deadline; `show` is open, closed or all."""
    unit = staff_unit(ctx)
    r = t.reports
    now = utc_now_ms()
    query = sa.select(r).where(r.c.unit_id == unit.id)
    final = [s.value for s in FINAL]
    if show == "open":
        query = query.where(r.c.status.not_in(final))
    elif show == "closed":
        query = query.where(r.c.status.in_(final))
    else:
        show = "all"
    overdue_first = sa.case((sa.and_(r.c.due_at.is_not(None), r.c.due_at < now), 0), else_=1)
    no_deadline_last = sa.case((r.c.due_at.is_(None), 1), else_=0)
    query = query.order_by(overdue_first, no_deadline_last, r.c.due_at, r.c.submitted_at).limit(500)
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(query).all()
        duplicates = queue_counts(ctx.kernel, conn, unit.id, rows)
    items = [
        QueueItem(
            id=x.id,
            ref=x.ref,
            category=catalog.category(x.category),
            region_code=x.region_code,
            status=Status(x.status),
            submitted_at=x.submitted_at,
            due_at=x.due_at,
            overdue=is_overdue(x.due_at, now),
            named=bool(x.named),
            routed_by_fallback=bool(x.routed_by_fallback),
            unread_reply=bool(x.unread_reply),
            possible_duplicates=duplicates.get(x.id, 0),
            purged=x.purged_at is not None,
        )
        for x in rows
    ]
    return Queue(unit, items, show)


# --- a report, as its unit sees it ---------------------------------------------------------------


@dataclass(frozen=True)
class HistoryItem:
    at: int
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    actor_kind: str
    actor_name: str | None
    related: str | None
    note: str | None


@dataclass(frozen=True)
class RevealItem:
    id: str
    status: str
    reason: str
    justification: str
    requested_by: str
    requested_by_name: str
    requested_at: int
    decided_by_name: str | None
    decided_at: int | None
    decision_note: str | None
    revealed_at: int | None


@dataclass(frozen=True)
class OfficerReport:
    id: str
    ref: str
    category: catalog.Category | None
    region_code: str
    unit: auth.Agency
    status: Status
    submitted_at: int
    status_at: int
    due_at: int | None
    overdue: bool
    named: bool
    routed_by_fallback: bool
    duplicate_of_ref: str | None
    content: dict[str, Any]
    public_text: str
    history: list[HistoryItem]
    messages: list[Message]
    files: list[dict[str, Any]]
    role: WorkflowRole
    steps: list[Step]
    reveals: list[RevealItem]
    found_false: bool
    forward_units: list[auth.Agency]
    # Open reports that may be the same incident, and the reports already merged into this one.
    duplicates: list[Suggestion]
    merged: list[MergedItem]
    # When the retention rule deleted the content (the report is closed; metadata stays).
    purged_at: int | None


def _names(conn: Any, ids: set[str]) -> dict[str, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    u = auth_tables.users
    return {r.id: r.display_name for r in conn.execute(sa.select(u.c.id, u.c.display_name).where(u.c.id.in_(ids)))}


def _decrypt_opt(data_key: bytes, blob: bytes | None, table: str, column: str, row_id: str) -> str | None:
    if blob is None:
        return None
    return protection.decrypt_text(data_key, blob, table=table, column=column, row_id=row_id)


def police_units(kernel: Kernel) -> list[auth.Agency]:
    return [a for a in auth.list_agencies(kernel) if a.kind == AgencyKind.POLICE_UNIT]


def officer_view(ctx: Ctx, report_id: str) -> OfficerReport:
    """Open a report for an officer or the head of its unit; the view is recorded in the ledger first."""
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
    actor = staff_of_report(ctx, row)

    def record(tx: Tx) -> None:
        kernel.ledger.append(
            tx,
            entry_type="access",
            actor=staff_ref(kernel, actor),
            action="report.view_original",
            subject=None,
            obj={"report": report_id},
        )
        if row.unread_reply:
            tx.execute(t.reports.update().where(t.reports.c.id == report_id).values(unread_reply=False))

    kernel.writer.run(record)
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
        data_key = report_key(kernel, conn, row)
        history = history_of(conn, report_id)
        reveals = conn.execute(
            sa.select(t.report_reveals)
            .where(t.report_reveals.c.report_id == report_id)
            .order_by(t.report_reveals.c.requested_at)
        ).all()
        files = _files(conn, report_id)
        messages = messages_of(conn, data_key, report_id, files)
        names = _names(
            conn,
            {h.actor_id for h in history}
            | {v.requested_by for v in reveals}
            | {v.decided_by for v in reveals}
            | {
                m.author_id
                for m in conn.execute(
                    sa.select(t.report_messages.c.author_id).where(t.report_messages.c.report_id == report_id)
                )
            },
        )
        duplicate_ref = (
            conn.execute(sa.select(t.reports.c.ref).where(t.reports.c.id == row.duplicate_of)).scalar()
            if row.duplicate_of
            else None
        )
        content = protection.decrypt_json(
            data_key, row.content_enc, table="reports", column="content_enc", row_id=row.id
        )
        duplicates = suggestions(kernel, conn, row, content)
        merged = merged_into(conn, report_id)
    unit = auth.get_agency(kernel, row.unit_id)
    assert unit is not None
    status = Status(row.status)
    role = workflow_role(actor)
    now = utc_now_ms()
    return OfficerReport(
        id=row.id,
        ref=row.ref,
        category=catalog.category(row.category),
        region_code=row.region_code,
        unit=unit,
        status=status,
        submitted_at=row.submitted_at,
        status_at=row.status_at,
        due_at=row.due_at,
        overdue=is_overdue(row.due_at, now),
        named=bool(row.named),
        routed_by_fallback=bool(row.routed_by_fallback),
        duplicate_of_ref=duplicate_ref,
        content=content,
        public_text=unseal_text(kernel.keyring, row.public_text_enc, row_aad("reports", "public_text_enc", row.id)),
        history=[
            HistoryItem(
                at=h.at,
                action=h.action,
                from_status=h.from_status,
                to_status=h.to_status,
                reason=h.reason,
                actor_kind=h.actor_kind,
                actor_name=names.get(h.actor_id) if h.actor_id else None,
                related=h.related,
                note=_decrypt_opt(data_key, h.note_enc, "report_history", "note_enc", h.id),
            )
            for h in history
        ],
        messages=messages,
        files=[f._asdict() for f in files],
        role=role,
        steps=available_steps(status, role),
        reveals=[
            RevealItem(
                id=v.id,
                status=v.status,
                reason=v.reason,
                justification=_decrypt_opt(data_key, v.justification_enc, "report_reveals", "justification_enc", v.id)
                or "",
                requested_by=v.requested_by,
                requested_by_name=names.get(v.requested_by, ""),
                requested_at=v.requested_at,
                decided_by_name=names.get(v.decided_by) if v.decided_by else None,
                decided_at=v.decided_at,
                decision_note=_decrypt_opt(data_key, v.decision_note_enc, "report_reveals", "decision_note_enc", v.id),
                revealed_at=v.revealed_at,
            )
            for v in reveals
        ],
        found_false=any(h.to_status == Status.KNOWINGLY_FALSE for h in history),
        forward_units=[u for u in police_units(kernel) if u.id != row.unit_id],
        duplicates=duplicates,
        merged=merged,
        purged_at=row.purged_at,
    )


@dataclass(frozen=True)
class AttachmentFile:
    media_type: str
    kind: str
    data: bytes
    filename: str


_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/3gpp": "3gp",
    "video/x-m4v": "m4v",
    "video/webm": "webm",
    "audio/mp4": "m4a",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/amr": "amr",
    "audio/ogg": "ogg",
}


def attachment(ctx: Ctx, report_id: str, attachment_id: str) -> AttachmentFile:
    """An attachment of a report for its unit (metadata already removed); each download is in the ledger."""
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
    actor = staff_of_report(ctx, row)
    with kernel.db.read() as conn:
        found = conn.execute(
            sa.select(t.report_attachments).where(
                t.report_attachments.c.id == attachment_id, t.report_attachments.c.report_id == report_id
            )
        ).first()
        if found is None:
            raise Problem("http.not_found")
        data_key = report_key(kernel, conn, row)
    kernel.writer.run(
        lambda tx: kernel.ledger.append(
            tx,
            entry_type="access",
            actor=staff_ref(kernel, actor),
            action="report.view_attachment",
            subject=None,
            obj={"report": report_id, "attachment": attachment_id},
        )
    )
    data = protection.decrypt(data_key, found.data_enc, table="report_attachments", column="data_enc", row_id=found.id)
    extension = _EXTENSIONS.get(found.media_type, "bin")
    return AttachmentFile(found.media_type, found.kind, data, f"{row.ref}-{found.id[:6]}.{extension}")


# --- the regulation's steps ---------------------------------------------------------------------


def _insert_message(tx: Tx, data_key: bytes, report_id: str, kind: str, body: str, author: Actor, nonce: str) -> None:
    message_id = new_id()
    tx.execute(
        t.report_messages.insert().values(
            id=message_id,
            report_id=report_id,
            at=utc_now_ms(),
            kind=kind,
            author_id=author.user_id,
            body_enc=protection.encrypt_text(
                data_key, body, table="report_messages", column="body_enc", row_id=message_id
            ),
            client_nonce=nonce[:32] or None,
        )
    )


def _check_body(body: str, field: str) -> str:
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise Problem("reports.message_empty", field=field)
    if len(body) > MESSAGE_MAX:
        raise Problem("reports.message_length", field=field)
    return body


def _normal_ref(text: str) -> str:
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else ""


def do_transition_report(
    ctx: Ctx,
    report_id: str,
    action: str,
    reason: str,
    note: str,
    *,
    unit_id: str = "",
    duplicate_ref: str = "",
    outcome: str = "",
) -> Status:
    """Take one step of the regulation on a report; returns the new status.

    Forwarding re-seals the report's key to the receiving unit (which then triages it); merging needs
    the reference of the earlier report of the same unit. An `outcome`, when given, is published to
    the reporter with the step.
    """
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
    actor = staff_of_report(ctx, row, "reports.act")
    try:
        decision = decide(Status(row.status), action, workflow_role(actor), reason, note)
    except WorkflowError as exc:
        raise problem_of(exc) from None
    outcome = outcome.replace("\r\n", "\n").strip()
    if len(outcome) > MESSAGE_MAX:
        raise Problem("reports.message_length", field="outcome")
    forward_to: tuple[str, bytes] | None = None
    if decision.step.needs == "unit":
        target = auth.get_agency(kernel, unit_id) if unit_id else None
        if target is None or target.kind != AgencyKind.POLICE_UNIT or target.id == row.unit_id:
            raise Problem("reports.unknown_unit", field="unit")
        forward_to = (target.id, unit_public_key(kernel, target.id))
    now = utc_now_ms()

    def write(tx: Tx) -> Status:
        current = load_report(tx, report_id)
        if current.status != row.status or current.unit_id != row.unit_id:
            raise Problem("reports.illegal_transition")  # someone else acted first
        data_key = report_key(kernel, tx, current)
        values: dict[str, Any] = {
            "status": decision.target.value,
            "status_at": now,
            "due_at": due_after(decision.target, now, current.due_at, deadlines(kernel)),
        }
        related: str | None = None
        if decision.step.needs == "duplicate":
            earlier = tx.execute(
                sa.select(t.reports.c.id).where(
                    t.reports.c.ref == _normal_ref(duplicate_ref),
                    t.reports.c.unit_id == current.unit_id,
                    t.reports.c.id != current.id,
                    t.reports.c.status.not_in([Status.MERGED_DUPLICATE.value, Status.WITHDRAWN.value]),
                )
            ).scalar()
            if earlier is None:
                raise Problem("reports.unknown_duplicate", field="duplicate_ref")
            values["duplicate_of"] = related = earlier
        if forward_to is not None:
            related, target_key = forward_to
            values["unit_id"] = related
            values["routed_by_fallback"] = False
            values["data_key_sealed"] = protection.seal_report_key(target_key, report_id, data_key)
        if decision.target in FINAL:
            values["closed_at"] = now
        tx.execute(t.reports.update().where(t.reports.c.id == report_id).values(**values))
        history_id = new_id()
        tx.execute(
            t.report_history.insert().values(
                id=history_id,
                report_id=report_id,
                at=now,
                action=decision.step.action.value,
                from_status=current.status,
                to_status=decision.target.value,
                reason=decision.reason.code,
                actor_kind=workflow_role(actor).value,
                actor_id=actor.user_id,
                related=related,
                note_enc=protection.encrypt_text(
                    data_key, decision.note, table="report_history", column="note_enc", row_id=history_id
                ),
            )
        )
        if outcome:
            _insert_message(tx, data_key, report_id, "outcome", outcome, actor, "")
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=staff_ref(kernel, actor),
            action=f"report.{decision.step.action.value}",
            subject=None,
            obj={
                "report": report_id,
                "from": current.status,
                "to": decision.target.value,
                "reason": decision.reason.code,
                **({"unit": related} if decision.step.needs == "unit" else {}),
                **({"into": related} if decision.step.needs == "duplicate" else {}),
            },
        )
        emit(tx, "reports.status_changed", {"report": report_id, "status": decision.target.value})
        notify(tx, current, "status", decision.target)
        if outcome:
            notify(tx, current, "message")
        return decision.target

    return kernel.db.run(write)


def do_send_report_message(ctx: Ctx, report_id: str, kind: str, body: str, *, nonce: str = "") -> None:
    """Ask the reporter a question, or publish the outcome to them."""
    kernel = ctx.kernel
    if kind not in ("question", "outcome"):
        raise Problem("validation.field", field="kind")
    body = _check_body(body, "body")
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
    actor = staff_of_report(ctx, row, "reports.act")

    def write(tx: Tx) -> None:
        current = load_report(tx, report_id)
        status = Status(current.status)
        if (
            status in (Status.MERGED_DUPLICATE, Status.WITHDRAWN)
            or (kind == "question" and status in FINAL)
            or current.purged_at is not None
        ):
            raise Problem("reports.closed_for_messages")
        if (
            nonce
            and tx.execute(
                sa.select(t.report_messages.c.id).where(
                    t.report_messages.c.report_id == report_id, t.report_messages.c.client_nonce == nonce[:32]
                )
            ).first()
        ):
            return
        _insert_message(tx, report_key(kernel, tx, current), report_id, kind, body, actor, nonce)
        kernel.ledger.append(
            tx,
            entry_type="report",
            actor=staff_ref(kernel, actor),
            action=f"report.{kind}",
            subject=None,
            obj={"report": report_id},
        )
        emit(tx, "reports.message", {"report": report_id})
        notify(tx, current, "message")

    kernel.db.run(write)
