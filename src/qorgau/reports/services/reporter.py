"""The reporter's side after submitting: open the report (receipt or account), answer, add files, withdraw.

An anonymous reporter proves themselves with the receipt once; the page then carries a short-lived
follow-up pass (a MAC over the report id and an expiry, in a hidden form field — never a cookie, never a
URL), so answering a question does not need the receipt typed again. Nothing about the reporter's
connection is stored: wrong receipts are counted in memory only, under a daily-rotated keyed hash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import require
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import constant_time_equals
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.reports import catalog, protection, receipts
from qorgau.reports import tables as t
from qorgau.reports.domain import (
    MESSAGE_MAX,
    Action,
    Status,
    WorkflowError,
    WorkflowRole,
    decide,
    reporter_may_write,
)
from qorgau.reports.services.common import (
    client_key,
    history_of,
    limits,
    load_report,
    new_id,
    problem_of,
    report_key,
    reporter_ref,
)
from qorgau.reports.services.submission import clean_files, store_attachments

PASS_TTL_MS = 30 * 60 * 1000
_PASS_PURPOSE = "reports.follow-up-pass"  # noqa: S105 - a hash purpose, not a secret


# --- getting in -------------------------------------------------------------------------------


def _pass_mac(kernel: Kernel, report_id: str, expires: int) -> str:
    return kernel.hasher.hash(_PASS_PURPOSE, f"{report_id}.{expires}")[:32]


def issue_pass(kernel: Kernel, report_id: str, now_ms: int | None = None) -> str:
    expires = (utc_now_ms() if now_ms is None else now_ms) + PASS_TTL_MS
    return f"{report_id}.{expires}.{_pass_mac(kernel, report_id, expires)}"


def check_pass(kernel: Kernel, value: str, now_ms: int | None = None) -> str:
    """The report id a follow-up pass opens; `reports.follow_up_expired` if it is forged or old."""
    parts = (value or "").split(".")
    if len(parts) == 3 and parts[1].isdigit():
        report_id, expires, mac = parts[0], int(parts[1]), parts[2]
        now_ms = utc_now_ms() if now_ms is None else now_ms
        if constant_time_equals(mac, _pass_mac(kernel, report_id, expires)) and now_ms <= expires:
            return report_id
    raise Problem("reports.follow_up_expired")


def open_with_receipt(ctx: Ctx, text: str, *, client_address: str | None = None) -> str:
    """Check a receipt and return a follow-up pass for its report.

    A typo (the check digit does not match) is reported as such and costs nothing; a well-formed
    receipt that opens nothing counts against the client, whose further tries wait after a few.
    """
    kernel = ctx.kernel
    require(ctx.actor, "reports.follow_up")
    throttle = limits(kernel).receipts
    key = client_key(kernel, client_address)
    wait = throttle.retry_after(key)
    if wait:
        raise Problem("reports.receipt_throttled", headers={"Retry-After": str(wait)}, extra={"retry_after": wait})
    receipt = receipts.normalise(text)
    if receipt is None:
        raise Problem("reports.receipt_mistyped", field="receipt")
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(t.reports.c.id, t.reports.c.receipt_verifier).where(
                t.reports.c.receipt_index == receipts.index_of(kernel.hasher, receipt)
            )
        ).first()
    if not receipts.verify(row.receipt_verifier if row else None, receipt) or row is None:
        throttle.failure(key)
        raise Problem("reports.receipt_unknown", field="receipt")
    throttle.success(key)
    return issue_pass(kernel, row.id)


def reporter_report_id(ctx: Ctx, *, follow_up_pass: str | None = None, report_id: str | None = None) -> str:
    """The report the reporter may see: by the receipt's follow-up pass, or as its named reporter."""
    if follow_up_pass:
        require(ctx.actor, "reports.follow_up")
        return check_pass(ctx.kernel, follow_up_pass)
    return own_report_id(ctx, report_id or "")


def own_report_id(ctx: Ctx, report_id: str) -> str:
    """A signed-in named reporter's own report (anyone else's is 'not found')."""
    actor = require(ctx.actor, "reports.list_own")
    with ctx.kernel.db.read() as conn:
        owner = conn.execute(sa.select(t.reports.c.reporter_ref).where(t.reports.c.id == report_id)).scalar()
    mine = owner is not None and owner == reporter_ref(ctx.kernel, actor.user_id)
    if not mine:
        raise Problem("http.not_found")
    require(actor, "reports.view_own", True)
    return report_id


# --- what the reporter sees -------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    at: int
    status: str
    reason: str | None
    action: str


@dataclass(frozen=True)
class Message:
    id: str
    at: int
    kind: str  # question | answer | outcome
    body: str
    files: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReporterReport:
    id: str
    ref: str
    category: catalog.Category | None
    region_code: str
    unit_names: dict[str, str]
    status: Status
    submitted_at: int
    named: bool
    content: dict[str, Any]
    steps: list[Step]
    messages: list[Message]
    files: list[dict[str, Any]]
    can_withdraw: bool
    can_write: bool
    # When the retention rule deleted the content of the closed report.
    purged_at: int | None = None


def _files(conn: Any, report_id: str) -> list[Any]:
    return conn.execute(
        sa.select(
            t.report_attachments.c.id,
            t.report_attachments.c.message_id,
            t.report_attachments.c.at,
            t.report_attachments.c.kind,
            t.report_attachments.c.media_type,
            t.report_attachments.c.size,
            t.report_attachments.c.scrubbed,
        )
        .where(t.report_attachments.c.report_id == report_id)
        .order_by(t.report_attachments.c.at, t.report_attachments.c.id)
    ).all()


def messages_of(conn: Any, data_key: bytes, report_id: str, files: list[Any]) -> list[Message]:
    rows = conn.execute(
        sa.select(t.report_messages)
        .where(t.report_messages.c.report_id == report_id)
        .order_by(t.report_messages.c.at, t.report_messages.c.id)
    ).all()
    return [
        Message(
            id=m.id,
            at=m.at,
            kind=m.kind,
            body=protection.decrypt_text(data_key, m.body_enc, table="report_messages", column="body_enc", row_id=m.id),
            files=[f._asdict() for f in files if f.message_id == m.id],
        )
        for m in rows
    ]


def reporter_view(ctx: Ctx, *, follow_up_pass: str | None = None, report_id: str | None = None) -> ReporterReport:
    """The report as its reporter sees it: their text, the status and its reasons, the conversation."""
    kernel = ctx.kernel
    report_id = reporter_report_id(ctx, follow_up_pass=follow_up_pass, report_id=report_id)
    with kernel.db.read() as conn:
        row = load_report(conn, report_id)
        data_key = report_key(kernel, conn, row)
        history = history_of(conn, report_id)
        files = _files(conn, report_id)
        messages = messages_of(conn, data_key, report_id, files)
        unit = auth.get_agency(kernel, row.unit_id)
    status = Status(row.status)
    return ReporterReport(
        id=row.id,
        ref=row.ref,
        category=catalog.category(row.category),
        region_code=row.region_code,
        unit_names=dict(unit.names) if unit else {},
        status=status,
        submitted_at=row.submitted_at,
        named=bool(row.named),
        content=protection.decrypt_json(
            data_key, row.content_enc, table="reports", column="content_enc", row_id=row.id
        ),
        steps=[Step(h.at, h.to_status, h.reason, h.action) for h in history],
        messages=messages,
        files=[f._asdict() for f in files if f.message_id is None],
        can_withdraw=status == Status.NEW,
        can_write=reporter_may_write(status),
        purged_at=row.purged_at,
    )


# --- what the reporter does -------------------------------------------------------------------


def do_answer_report(
    ctx: Ctx,
    body: str,
    files: Sequence[bytes] = (),
    *,
    follow_up_pass: str | None = None,
    report_id: str | None = None,
    nonce: str = "",
) -> None:
    """The reporter answers the unit (text, files or both) while the report is being worked on."""
    kernel = ctx.kernel
    report_id = reporter_report_id(ctx, follow_up_pass=follow_up_pass, report_id=report_id)
    body = body.replace("\r\n", "\n").strip()
    if len(body) > MESSAGE_MAX:
        raise Problem("reports.message_length", field="body")
    cleaned = clean_files(ctx, files)
    if not body and not cleaned:
        raise Problem("reports.message_empty", field="body")

    def write(tx: Tx) -> None:
        row = load_report(tx, report_id)
        if not reporter_may_write(Status(row.status)):
            raise Problem("reports.closed_for_messages")
        if (
            nonce
            and tx.execute(
                sa.select(t.report_messages.c.id).where(
                    t.report_messages.c.report_id == report_id, t.report_messages.c.client_nonce == nonce[:32]
                )
            ).first()
        ):
            return  # the same form arrived twice (a reload, a double tap): it is already there
        data_key = report_key(kernel, tx, row)
        now = utc_now_ms()
        message_id = new_id()
        tx.execute(
            t.report_messages.insert().values(
                id=message_id,
                report_id=report_id,
                at=now,
                kind="answer",
                author_id=None,
                body_enc=protection.encrypt_text(
                    data_key, body, table="report_messages", column="body_enc", row_id=message_id
                ),
                client_nonce=nonce[:32] or None,
            )
        )
        store_attachments(tx, data_key, report_id, cleaned, now, message_id)
        tx.execute(t.reports.update().where(t.reports.c.id == report_id).values(unread_reply=True))
        kernel.ledger.append(
            tx,
            entry_type="report",
            actor="reporter",
            action="report.answer",
            subject=None,
            obj={"report": report_id, "files": len(cleaned)},
        )
        emit(tx, "reports.message", {"report": report_id})

    with contextlib.suppress(IntegrityError):  # the same form twice at one moment: the other one stored it
        kernel.db.run(write)


def do_withdraw_report(
    ctx: Ctx, reason: str, note: str = "", *, follow_up_pass: str | None = None, report_id: str | None = None
) -> None:
    """The reporter withdraws a report the unit has not triaged yet."""
    kernel = ctx.kernel
    report_id = reporter_report_id(ctx, follow_up_pass=follow_up_pass, report_id=report_id)

    def write(tx: Tx) -> None:
        row = load_report(tx, report_id)
        try:
            decision = decide(Status(row.status), Action.WITHDRAW, WorkflowRole.REPORTER, reason, note)
        except WorkflowError as exc:
            raise problem_of(exc) from None
        data_key = report_key(kernel, tx, row)
        now = utc_now_ms()
        history_id = new_id()
        tx.execute(
            t.reports.update()
            .where(t.reports.c.id == report_id)
            .values(status=decision.target.value, status_at=now, due_at=None, closed_at=now)
        )
        tx.execute(
            t.report_history.insert().values(
                id=history_id,
                report_id=report_id,
                at=now,
                action=Action.WITHDRAW.value,
                from_status=row.status,
                to_status=decision.target.value,
                reason=decision.reason.code,
                actor_kind="reporter",
                note_enc=(
                    protection.encrypt_text(
                        data_key, decision.note, table="report_history", column="note_enc", row_id=history_id
                    )
                    if decision.note
                    else None
                ),
            )
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor="reporter",
            action="report.withdraw",
            subject=None,
            obj={"report": report_id, "reason": decision.reason.code},
        )
        emit(tx, "reports.status_changed", {"report": report_id, "status": decision.target.value})

    kernel.db.run(write)


# --- a named reporter's account ---------------------------------------------------------------


@dataclass(frozen=True)
class OwnReport:
    id: str
    ref: str
    category: catalog.Category | None
    status: Status
    submitted_at: int
    status_at: int


@dataclass(frozen=True)
class Notice:
    id: str
    report_id: str
    ref: str
    kind: str
    status: str | None
    created_at: int
    unread: bool


def list_my_reports(ctx: Ctx) -> tuple[list[OwnReport], list[Notice]]:
    """A signed-in citizen's named reports (newest first) and the notices about them."""
    actor = require(ctx.actor, "reports.list_own")
    ref = reporter_ref(ctx.kernel, actor.user_id)
    r, n = t.reports, t.report_notifications
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(sa.select(r).where(r.c.reporter_ref == ref).order_by(r.c.submitted_at.desc())).all()
        notices = conn.execute(
            sa.select(n, r.c.ref)
            .join(r, r.c.id == n.c.report_id)
            .where(n.c.reporter_ref == ref)
            .order_by(n.c.created_at.desc())
            .limit(50)
        ).all()
    return (
        [
            OwnReport(x.id, x.ref, catalog.category(x.category), Status(x.status), x.submitted_at, x.status_at)
            for x in rows
        ],
        [Notice(x.id, x.report_id, x.ref, x.kind, x.status, x.created_at, x.read_at is None) for x in notices],
    )


def do_mark_notices_read(ctx: Ctx, report_id: str) -> None:
    """The citizen opened the report: its notices are read."""
    actor = require(ctx.actor, "reports.list_own")
    ref = reporter_ref(ctx.kernel, actor.user_id)
    n = t.report_notifications
    ctx.kernel.db.run(
        lambda tx: tx.execute(
            n.update()
            .where(n.c.reporter_ref == ref, n.c.report_id == report_id, n.c.read_at.is_(None))
            .values(read_at=utc_now_ms())
        )
    )
