"""HTML pages of the reports service: the citizen's report and follow-up, the police unit's queue.

Thin: every page parses its form, calls one service function and renders. The anonymous pages keep
nothing about the client: no receipt or report id ever travels in a URL (they are POSTed), pages that
show report content are never cached, and the client address is only handed to the service's
in-memory abuse counters as a daily keyed hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from qorgau.kernel import kz
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import can, require
from qorgau.kernel.auth.roles import Role
from qorgau.kernel.crypto import random_token
from qorgau.kernel.errors import Problem
from qorgau.kernel.i18n import N_, gettext
from qorgau.reports import catalog, receipts, statistics
from qorgau.reports import services as svc
from qorgau.reports.domain import (
    ADDRESS_MAX,
    DESCRIPTION_MAX,
    MESSAGE_MAX,
    STATUS_LABELS,
    STEPS,
    Action,
    Status,
)
from qorgau.reports.services.common import unit_scope
from qorgau.reports.services.reveal import REVEAL_STATUS_LABELS, RevealStatus
from qorgau.web.home import Section, register_section
from qorgau.web.http import ctx_of, request_lang
from qorgau.web.render import add_template_dir, render

add_template_dir(Path(__file__).parent / "templates")
register_section(
    Section("reports", N_("Citizen reports"), N_("Reports to the police and regulators"), "/reports", "home.view")
)

# A GET and a POST handler on one path, both run in a worker thread, break the GET in Litestar 2.25:
# forms post to paths of their own.
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]

REASON_LABELS: dict[str, str] = {r.code: r.label for step in STEPS.values() for r in step.reasons} | {
    r.code: r.label for r in svc.REVEAL_REASONS
}
MESSAGE_KIND_LABELS = {"question": N_("Question from the police"), "answer": N_("Answer"), "outcome": N_("Outcome")}
KIND_LABELS = {"photo": N_("Photo"), "video": N_("Video"), "voice": N_("Voice recording")}
NOTICE_LABELS = {
    "status": N_("The status of your report changed"),
    "message": N_("New message from the police"),
    "identity_revealed": N_("Your identity was revealed to an officer after the head of the unit approved it"),
}
STEP_ORDER = [Status.NEW, Status.TRIAGED, Status.IN_VERIFICATION, Status.CLOSED]


def _helpers(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Labels and limits every reports page uses, in the reader's language."""
    lang = request_lang(request)
    settings = request.app.state.kernel.settings

    def t(message: str | None) -> str:
        return gettext(lang, message) if message else ""

    def region_name(code: str) -> str:
        try:
            return kz.region(code).name(lang)
        except kz.UnknownRegion:
            return code

    def size_label(n: int) -> str:
        return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"

    return {
        "categories": catalog.categories(),
        "regions": kz.regions(),
        "status_label": lambda s: t(STATUS_LABELS.get(Status(s))),
        "reason_label": lambda code: t(REASON_LABELS.get(code or "")) or (code or ""),
        "category_name": lambda c: c.name(lang) if c else "",
        "region_name": region_name,
        "unit_name": lambda unit: unit.name(lang) if unit else "",
        "kind_label": lambda k: t(KIND_LABELS.get(k)),
        "message_label": lambda k: t(MESSAGE_KIND_LABELS.get(k)),
        "notice_label": lambda k: t(NOTICE_LABELS.get(k)),
        "reveal_status_label": lambda s: t(REVEAL_STATUS_LABELS.get(RevealStatus(s))),
        "size_label": size_label,
        "limits": {
            "description": DESCRIPTION_MAX,
            "address": ADDRESS_MAX,
            "message": MESSAGE_MAX,
            "files": settings.reports_max_attachments,
            "file_mb": settings.reports_max_attachment_bytes // (1024 * 1024),
        },
        "triage_days": settings.reports_triage_days,
        "decision_days": settings.reports_decision_days,
    }


def _page(
    request: Request[Any, Any, Any], template: str, *, status_code: int = 200, private: bool = False, **context: Any
) -> Response[str]:
    response = render(request, template, status_code=status_code, **_helpers(request), **context)
    if private:
        # Report content and receipts: never in a cache, never leaked through a Referer.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else ""


def _uploads(data: dict[str, Any], name: str = "files") -> list[bytes]:
    value = data.get(name)
    items = value if isinstance(value, list) else [value]
    return [item.file.read() for item in items if isinstance(item, UploadFile) and item.filename]


def _client(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def _values(data: dict[str, Any]) -> dict[str, str]:
    return {name: _text(data, name) for name in svc.submission.FIELDS}


# --- the citizen: report ----------------------------------------------------------------------


@get("/reports", sync_to_thread=True)
def reports_index(request: Request[Any, Any, Any]) -> Response[str]:
    ctx = ctx_of(request)
    actor = ctx.actor
    has_queue = actor is not None and can(actor, "reports.queue", unit_scope(ctx.kernel, actor.agency_id))
    return _page(
        request,
        "reports/index.html",
        may_report=can(actor, "reports.submit"),
        is_citizen=actor is not None and actor.role == Role.CITIZEN,
        has_queue=has_queue,
    )


def _new_form(request: Request[Any, Any, Any], values: dict[str, str], error: Problem | None = None) -> Response[str]:
    ctx = ctx_of(request)
    require(ctx.actor, "reports.submit")
    return _page(
        request,
        "reports/new.html",
        status_code=(error.status or 400) if error else 200,
        values=values,
        error=error,
        may_be_named=ctx.actor is not None and ctx.actor.role == Role.CITIZEN,
    )


@get("/reports/new", sync_to_thread=True)
def report_new(request: Request[Any, Any, Any]) -> Response[str]:
    return _new_form(request, {})


@post("/reports/edit", sync_to_thread=True)
def report_edit(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    """Back from the check step with everything filled in as it was."""
    return _new_form(request, _values(data))


@post("/reports/check", sync_to_thread=True)
def report_check(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    require(ctx_of(request).actor, "reports.submit")
    values = _values(data)
    try:
        report = svc.parse_new_report(values)
    except Problem as problem:
        return _new_form(request, values, problem)
    return _page(
        request,
        "reports/check.html",
        private=True,
        values=values,
        report=report,
        category=catalog.category(report.category),
        segments=svc.preview(report),
        error=None,
    )


@post("/reports/send", sync_to_thread=True)
def report_submit(request: Request[Any, Any, Any], data: Multipart) -> Response[Any]:
    ctx = ctx_of(request)
    values = _values(data)
    try:
        report = svc.parse_new_report(values)
    except Problem as problem:
        return _new_form(request, values, problem)
    try:
        sent = svc.do_submit_report(ctx, report, _uploads(data), client_address=_client(request))
    except Problem as problem:
        if problem.field != "files" and problem.code not in ("reports.too_many_submissions", "reports.no_unit"):
            raise
        page = _page(
            request,
            "reports/check.html",
            status_code=problem.status or 400,
            private=True,
            values=values,
            report=report,
            category=catalog.category(report.category),
            segments=svc.preview(report),
            error=problem,
        )
        page.headers.update(problem.headers)
        return page
    if sent.receipt is None:
        return Redirect(path=f"/reports/mine/{sent.report_id}?sent=1", status_code=303)
    return _page(
        request,
        "reports/receipt.html",
        private=True,
        ref=sent.ref,
        groups=receipts.grouped(sent.receipt),
        unit=auth.get_agency(ctx.kernel, sent.unit_id),
        routed_by_fallback=sent.routed_by_fallback,
    )


# --- the citizen: follow up -------------------------------------------------------------------


def _reporter_page(
    request: Request[Any, Any, Any],
    *,
    follow_up_pass: str | None = None,
    report_id: str | None = None,
    error: Problem | None = None,
    notice: str | None = None,
) -> Response[str]:
    ctx = ctx_of(request)
    report = svc.reporter_view(ctx, follow_up_pass=follow_up_pass, report_id=report_id)
    fresh_pass = svc.issue_pass(ctx.kernel, report.id) if follow_up_pass else None
    return _page(
        request,
        "reports/reporter.html",
        status_code=(error.status or 400) if error else 200,
        private=True,
        report=report,
        follow_up_pass=fresh_pass,
        action_base="/reports/follow-up" if follow_up_pass else f"/reports/mine/{report.id}",
        error=error,
        notice=notice,
        nonce=random_token(16),
        withdraw_reasons=STEPS[Action.WITHDRAW].reasons,
        step_order=STEP_ORDER,
    )


@get("/reports/follow-up", sync_to_thread=True)
def follow_up_form(request: Request[Any, Any, Any]) -> Response[str]:
    require(ctx_of(request).actor, "reports.follow_up")
    return _page(request, "reports/follow_up.html", private=True, error=None)


@post("/reports/follow-up/open", sync_to_thread=True)
def follow_up_open(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    ctx = ctx_of(request)
    try:
        follow_up_pass = svc.open_with_receipt(ctx, data.get("receipt") or "", client_address=_client(request))
    except Problem as problem:
        page = _page(request, "reports/follow_up.html", status_code=problem.status or 400, private=True, error=problem)
        page.headers.update(problem.headers)
        return page
    return _reporter_page(request, follow_up_pass=follow_up_pass)


def _reporter_action(request: Request[Any, Any, Any], act: Any, **where: Any) -> Response[Any]:
    try:
        act()
    except Problem as problem:
        if problem.code == "reports.follow_up_expired":
            raise
        return _reporter_page(request, error=problem, **where)
    return _reporter_page(request, notice="saved", **where)


@post("/reports/follow-up/answer", sync_to_thread=True)
def follow_up_answer(request: Request[Any, Any, Any], data: Multipart) -> Response[Any]:
    ctx = ctx_of(request)
    where = {"follow_up_pass": _text(data, "pass") or "-"}
    return _reporter_action(
        request,
        lambda: svc.do_answer_report(ctx, _text(data, "body"), _uploads(data), nonce=_text(data, "nonce"), **where),
        **where,
    )


@post("/reports/follow-up/withdraw", sync_to_thread=True)
def follow_up_withdraw(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    ctx = ctx_of(request)
    where = {"follow_up_pass": data.get("pass") or "-"}
    return _reporter_action(
        request,
        lambda: svc.do_withdraw_report(ctx, data.get("reason") or "", data.get("note") or "", **where),
        **where,
    )


# --- the citizen: named reports in the account ----------------------------------------------------


@get("/reports/mine", sync_to_thread=True)
def my_reports(request: Request[Any, Any, Any]) -> Response[str]:
    own, notices = svc.list_my_reports(ctx_of(request))
    return _page(request, "reports/mine.html", private=True, reports=own, notices=notices)


@get("/reports/mine/{report_id:str}", sync_to_thread=True)
def my_report(request: Request[Any, Any, Any], report_id: str, sent: str | None = None) -> Response[str]:
    ctx = ctx_of(request)
    page = _reporter_page(request, report_id=report_id, notice="sent" if sent else None)
    svc.do_mark_notices_read(ctx, report_id)
    return page


@post("/reports/mine/{report_id:str}/answer", sync_to_thread=True)
def my_report_answer(request: Request[Any, Any, Any], report_id: str, data: Multipart) -> Response[Any]:
    ctx = ctx_of(request)
    return _reporter_action(
        request,
        lambda: svc.do_answer_report(
            ctx, _text(data, "body"), _uploads(data), nonce=_text(data, "nonce"), report_id=report_id
        ),
        report_id=report_id,
    )


@post("/reports/mine/{report_id:str}/withdraw", sync_to_thread=True)
def my_report_withdraw(request: Request[Any, Any, Any], report_id: str, data: Form) -> Response[Any]:
    ctx = ctx_of(request)
    return _reporter_action(
        request,
        lambda: svc.do_withdraw_report(ctx, data.get("reason") or "", data.get("note") or "", report_id=report_id),
        report_id=report_id,
    )


# --- the police unit --------------------------------------------------------------------------------


@get("/police/reports", sync_to_thread=True)
def police_queue(request: Request[Any, Any, Any], show: str = "open") -> Response[str]:
    queue = svc.unit_queue(ctx_of(request), show)
    return _page(request, "reports/queue.html", private=True, queue=queue)


def _officer_page(
    request: Request[Any, Any, Any],
    report_id: str,
    *,
    error: Problem | None = None,
    form: str | None = None,
    identity: Any = None,
) -> Response[str]:
    report = svc.officer_view(ctx_of(request), report_id)
    return _page(
        request,
        "reports/officer.html",
        status_code=(error.status or 400) if error else 200,
        private=True,
        report=report,
        error=error,
        error_form=form,
        identity=identity,
        nonce=random_token(16),
        reveal_reasons=svc.REVEAL_REASONS,
        decided=[Status.CONFIRMED, Status.NOT_CONFIRMED, Status.KNOWINGLY_FALSE, Status.CLOSED],
        duplicate_window_hours=ctx_of(request).kernel.settings.reports_duplicate_window_hours,
    )


@get("/police/reports/{report_id:str}", sync_to_thread=True)
def police_report(request: Request[Any, Any, Any], report_id: str) -> Response[str]:
    return _officer_page(request, report_id)


@get("/police/reports/{report_id:str}/attachments/{attachment_id:str}", sync_to_thread=True)
def police_attachment(request: Request[Any, Any, Any], report_id: str, attachment_id: str) -> Response[bytes]:
    found = svc.attachment(ctx_of(request), report_id, attachment_id)
    return Response(
        content=found.data,
        media_type=found.media_type,
        headers={
            "Content-Disposition": f'inline; filename="{found.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'",
        },
    )


def _officer_action(request: Request[Any, Any, Any], report_id: str, form: str, act: Any) -> Response[Any]:
    try:
        act()
    except Problem as problem:
        if problem.status in (401, 403, 404):
            raise
        return _officer_page(request, report_id, error=problem, form=form)
    return Redirect(path=f"/police/reports/{report_id}", status_code=303)


@post("/police/reports/{report_id:str}/transition", sync_to_thread=True)
def police_transition(request: Request[Any, Any, Any], report_id: str, data: Form) -> Response[Any]:
    action = data.get("action") or ""
    try:
        status = svc.do_transition_report(
            ctx_of(request),
            report_id,
            action,
            data.get("reason") or "",
            data.get("note") or "",
            unit_id=data.get("unit") or "",
            duplicate_ref=data.get("duplicate_ref") or "",
            outcome=data.get("outcome") or "",
        )
    except Problem as problem:
        if problem.status in (401, 403, 404):
            raise
        return _officer_page(request, report_id, error=problem, form=f"step-{action}")
    # A forwarded report belongs to another unit now: back to our own queue.
    target = "/police/reports" if status == Status.FORWARDED else f"/police/reports/{report_id}"
    return Redirect(path=target, status_code=303)


@post("/police/reports/{report_id:str}/merge", sync_to_thread=True)
def police_merge(request: Request[Any, Any, Any], report_id: str, data: Form) -> Response[Any]:
    """Merge a suggested duplicate into this report (the regulation's merged_duplicate step)."""
    ctx = ctx_of(request)
    return _officer_action(
        request,
        report_id,
        "merge",
        lambda: svc.do_merge_duplicate(ctx, report_id, data.get("duplicate") or "", data.get("note") or ""),
    )


@post("/police/reports/{report_id:str}/messages", sync_to_thread=True)
def police_message(request: Request[Any, Any, Any], report_id: str, data: Form) -> Response[Any]:
    ctx = ctx_of(request)
    return _officer_action(
        request,
        report_id,
        "message",
        lambda: svc.do_send_report_message(
            ctx, report_id, data.get("kind") or "", data.get("body") or "", nonce=data.get("nonce") or ""
        ),
    )


@post("/police/reports/{report_id:str}/reveals", sync_to_thread=True)
def police_reveal_request(request: Request[Any, Any, Any], report_id: str, data: Form) -> Response[Any]:
    ctx = ctx_of(request)
    return _officer_action(
        request,
        report_id,
        "reveal",
        lambda: svc.do_request_reveal(ctx, report_id, data.get("reason") or "", data.get("justification") or ""),
    )


@post("/police/reports/{report_id:str}/reveals/{reveal_id:str}/decision", sync_to_thread=True)
def police_reveal_decision(
    request: Request[Any, Any, Any], report_id: str, reveal_id: str, data: Form
) -> Response[Any]:
    ctx = ctx_of(request)
    decision = data.get("decision")
    if decision not in ("approve", "refuse"):
        raise Problem("validation.field", field="decision")
    return _officer_action(
        request,
        report_id,
        "reveal",
        lambda: svc.do_decide_reveal(
            ctx, report_id, reveal_id, approve=decision == "approve", note=data.get("note") or ""
        ),
    )


@post("/police/reports/{report_id:str}/reveals/{reveal_id:str}/identity", sync_to_thread=True)
def police_reveal_identity(request: Request[Any, Any, Any], report_id: str, reveal_id: str) -> Response[str]:
    ctx = ctx_of(request)
    try:
        identity = svc.do_reveal_identity(ctx, report_id, reveal_id)
    except Problem as problem:
        if problem.status in (401, 404):
            raise
        return _officer_page(request, report_id, error=problem, form="reveal")
    return _officer_page(request, report_id, identity=identity)


# --- public statistics ----------------------------------------------------------------------

BY_LABELS = {"region": N_("By region"), "category": N_("By category"), "month": N_("By month")}


def _by(by: str) -> str:
    if by not in statistics.BY:
        raise Problem("validation.parameter", field="by", detail="region, category or month")
    return by


@get("/reports/statistics", sync_to_thread=True)
def statistics_page(request: Request[Any, Any, Any], by: str = "region") -> Response[str]:
    by = _by(by)
    ctx = ctx_of(request)
    table = statistics.public_statistics(ctx.kernel, request_lang(request)).table(by)
    return _page(
        request,
        "reports/statistics.html",
        by=by,
        by_labels=BY_LABELS,
        table=table,
        chart=statistics.chart(table),
        threshold=statistics.SMALL_COUNT,
    )


@get("/api/v1/reports/statistics", sync_to_thread=True)
def statistics_json(request: Request[Any, Any, Any], by: str = "region") -> dict[str, Any]:
    """The published table as JSON: hidden counts are null, with ``hidden`` "small" or "complement"."""
    by = _by(by)
    return statistics.public_statistics(ctx_of(request).kernel, request_lang(request)).table(by).as_json()


@get("/api/v1/reports/statistics.csv", sync_to_thread=True)
def statistics_csv(request: Request[Any, Any, Any], by: str = "region") -> Response[str]:
    by = _by(by)
    body = statistics.public_statistics(ctx_of(request).kernel, request_lang(request)).table(by).as_csv()
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="reports-by-{by}.csv"'},
    )


ROUTES = [
    reports_index,
    report_new,
    report_edit,
    report_check,
    report_submit,
    follow_up_form,
    follow_up_open,
    follow_up_answer,
    follow_up_withdraw,
    my_reports,
    my_report,
    my_report_answer,
    my_report_withdraw,
    police_queue,
    police_report,
    police_attachment,
    police_transition,
    police_merge,
    police_message,
    police_reveal_request,
    police_reveal_decision,
    police_reveal_identity,
    statistics_page,
    statistics_json,
    statistics_csv,
]
