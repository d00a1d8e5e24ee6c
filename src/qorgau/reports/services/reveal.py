"""Unsealing a named reporter's identity: the rule for knowingly false reports.

Only for a named report that the head of the unit has found knowingly false: an officer of the unit
files a request with a reason and a justification; the head of the unit approves or refuses it; only
then, and only for that officer, is the identity decrypted — each time in the ledger (with the person
as its subject), and the reporter is told in their account. An anonymous report has nothing to reveal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from qorgau.kernel.auth.policy import require
from qorgau.kernel.context import Ctx
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.kernel.i18n import N_
from qorgau.reports import protection
from qorgau.reports import tables as t
from qorgau.reports.domain import NOTE_MAX_LENGTH, Reason, Status
from qorgau.reports.services.common import load_report, new_id, notify, report_key, staff_ref, unit_scope


class RevealStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


REVEAL_REASONS = (
    Reason("false_report_proceedings", N_("To start proceedings over a knowingly false report")),
    Reason("court_request", N_("At the request of a court")),
)
REVEAL_STATUS_LABELS = {
    RevealStatus.PENDING: N_("Waiting for the head of the unit"),
    RevealStatus.APPROVED: N_("Approved"),
    RevealStatus.REFUSED: N_("Refused"),
}


def _text(value: str, field: str) -> str:
    value = value.replace("\r\n", "\n").strip()
    if not value:
        raise Problem("reports.note_required", field=field)
    if len(value) > NOTE_MAX_LENGTH:
        raise Problem("validation.field", field=field)
    return value


def _found_false(conn: Any, report_id: str) -> bool:
    h = t.report_history
    return (
        conn.execute(
            sa.select(h.c.id).where(h.c.report_id == report_id, h.c.to_status == Status.KNOWINGLY_FALSE.value)
        ).first()
        is not None
    )


def do_request_reveal(ctx: Ctx, report_id: str, reason: str, justification: str) -> str:
    """An officer of the unit asks to see who filed a named report found knowingly false."""
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
    actor = require(ctx.actor, "reports.reveal_request", unit_scope(kernel, row.unit_id))
    if not row.named:
        raise Problem("reports.anonymous_reveal")
    if reason not in {r.code for r in REVEAL_REASONS}:
        raise Problem("reports.unknown_reason", field="reason")
    justification = _text(justification, "justification")
    reveal_id = new_id()

    def write(tx: Tx) -> str:
        if not _found_false(tx, report_id):
            raise Problem("reports.reveal_not_false")
        pending = tx.execute(
            sa.select(t.report_reveals.c.id).where(
                t.report_reveals.c.report_id == report_id,
                t.report_reveals.c.status == RevealStatus.PENDING.value,
            )
        ).first()
        if pending is not None:
            raise Problem("reports.reveal_pending")
        data_key = report_key(kernel, tx, row)
        tx.execute(
            t.report_reveals.insert().values(
                id=reveal_id,
                report_id=report_id,
                requested_by=actor.user_id,
                requested_at=utc_now_ms(),
                reason=reason,
                justification_enc=protection.encrypt_text(
                    data_key, justification, table="report_reveals", column="justification_enc", row_id=reveal_id
                ),
                status=RevealStatus.PENDING.value,
            )
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=staff_ref(kernel, actor),
            action="report.reveal_request",
            subject=None,
            obj={"report": report_id, "request": reveal_id, "reason": reason},
        )
        emit(tx, "reports.reveal_requested", {"report": report_id, "request": reveal_id})
        return reveal_id

    return kernel.db.run(write)


def do_decide_reveal(ctx: Ctx, report_id: str, reveal_id: str, *, approve: bool, note: str) -> None:
    """The head of the unit approves or refuses a pending reveal request, with a note."""
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
    actor = require(ctx.actor, "reports.reveal_decide", unit_scope(kernel, row.unit_id))
    note = _text(note, "note")

    def write(tx: Tx) -> None:
        request = tx.execute(
            sa.select(t.report_reveals).where(
                t.report_reveals.c.id == reveal_id, t.report_reveals.c.report_id == report_id
            )
        ).first()
        if request is None:
            raise Problem("http.not_found")
        if request.status != RevealStatus.PENDING:
            raise Problem("reports.reveal_decided")
        data_key = report_key(kernel, tx, row)
        status = RevealStatus.APPROVED if approve else RevealStatus.REFUSED
        tx.execute(
            t.report_reveals.update()
            .where(t.report_reveals.c.id == reveal_id)
            .values(
                status=status.value,
                decided_by=actor.user_id,
                decided_at=utc_now_ms(),
                decision_note_enc=protection.encrypt_text(
                    data_key, note, table="report_reveals", column="decision_note_enc", row_id=reveal_id
                ),
            )
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=staff_ref(kernel, actor),
            action="report.reveal_approve" if approve else "report.reveal_refuse",
            subject=None,
            obj={"report": report_id, "request": reveal_id},
        )
        emit(tx, "reports.reveal_decided", {"report": report_id, "request": reveal_id, "status": status.value})

    kernel.db.run(write)


@dataclass(frozen=True)
class Identity:
    name: str
    iin: str | None
    phone: str | None


def do_reveal_identity(ctx: Ctx, report_id: str, reveal_id: str) -> Identity:
    """Decrypt a named reporter's identity for the officer whose request was approved.

    Every reveal is a ledger entry whose subject is the person (a keyed hash of their IIN); the first
    one tells the reporter in their account.
    """
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
        request = conn.execute(
            sa.select(t.report_reveals).where(
                t.report_reveals.c.id == reveal_id, t.report_reveals.c.report_id == report_id
            )
        ).first()
    if request is None:
        raise Problem("http.not_found")
    actor = require(ctx.actor, "reports.reveal_open", unit_scope(kernel, row.unit_id, request.requested_by))
    if request.status != RevealStatus.APPROVED:
        raise Problem("reports.reveal_not_approved")

    def write(tx: Tx) -> dict[str, Any]:
        current = load_report(tx, report_id)
        if current.identity_enc is None:
            raise Problem("reports.anonymous_reveal")
        identity = protection.decrypt_json(
            report_key(kernel, tx, current),
            current.identity_enc,
            table="reports",
            column="identity_enc",
            row_id=report_id,
        )
        first = request.revealed_at is None
        if first:
            tx.execute(
                t.report_reveals.update().where(t.report_reveals.c.id == reveal_id).values(revealed_at=utc_now_ms())
            )
        kernel.ledger.append(
            tx,
            entry_type="access",
            actor=staff_ref(kernel, actor),
            action="report.identity_reveal",
            subject=kernel.subject_ref("iin", identity["iin"])
            if identity.get("iin")
            else kernel.subject_ref("account", identity["account"]),
            obj={"report": report_id, "request": reveal_id},
        )
        if first:
            notify(tx, current, "identity_revealed")
            emit(tx, "reports.identity_revealed", {"report": report_id, "request": reveal_id})
        return identity

    identity = kernel.db.run(write)
    return Identity(identity.get("name", ""), identity.get("iin"), identity.get("phone"))
