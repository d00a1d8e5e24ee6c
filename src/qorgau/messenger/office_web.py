"""Official letters and government notices in the browser (the messenger's "office" pages).

Thin like `web.py`: each handler calls one use case of `services.letters` / `services.notices` and
renders. Forms post and redirect, so every page works without JavaScript; the sender's notice page
refreshes its confirmed share live over Server-Sent Events (`static/messenger/office.js`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.response import Redirect, ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from qorgau.kernel import i18n
from qorgau.kernel.auth.policy import can, require
from qorgau.kernel.context import Ctx
from qorgau.kernel.errors import Problem
from qorgau.messenger.letters import BODY_MAX, MAX_ATTACHMENTS, STATE_LABELS, SUBJECT_MAX, LetterState
from qorgau.messenger.services import compliance, letters, notices
from qorgau.messenger.services.access import mx_ctx
from qorgau.web.http import kernel_of, request_actor, request_lang
from qorgau.web.render import render

STREAM_SECONDS = 240.0
KEEPALIVE_SECONDS = 20.0


async def _ctx(request: Request[Any, Any, Any], action: str) -> Ctx:
    actor = await asyncio.to_thread(request_actor, request)
    require(actor, action)
    return Ctx(kernel=kernel_of(request), actor=actor)


def _page(
    request: Request[Any, Any, Any], template: str, ctx: Ctx, *, status_code: int = 200, **values: Any
) -> Response[str]:
    lang = request_lang(request)
    response = render(
        request,
        template,
        status_code=status_code,
        state_label=lambda s: i18n.gettext(lang, STATE_LABELS.get(s, s)),
        day=lambda ms: format_date(
            datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(i18n.DISPLAY_TIME_ZONE)), format="long", locale=lang
        ),
        quote=lambda s: quote(s, safe=""),
        may_write_letters=can(ctx.actor, "messenger.letters.write"),
        may_send_notices=can(ctx.actor, "messenger.notices.send"),
        may_compliance=can(ctx.actor, "messenger.compliance"),
        kinds=compliance.KIND_LABELS,
        notices_waiting=notices.unconfirmed_count(ctx),
        **values,
    )
    # Letters and notices are official content: never kept by a shared browser cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _field(form: Any, name: str, limit: int = 10_000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _values(form: Any, name: str) -> list[str]:
    return [v for v in form.getall(name, []) if isinstance(v, str) and v]


# --- letters ----------------------------------------------------------------------------------


@get("/messenger/letters")
async def letters_registry(
    request: Request[Any, Any, Any],
    direction: Annotated[str, Parameter(query="dir")] = "all",
    shown_state: Annotated[str, Parameter(query="state")] = "",
    q: str = "",
) -> Response[str]:
    """The agency's registry: letters in and out, overdue first."""
    ctx = await _ctx(request, "messenger.letters.write")
    lang = request_lang(request)
    registry = await asyncio.to_thread(
        letters.registry, ctx, direction=direction, state=shown_state, query=q[:100], lang=lang
    )
    states = [(s.value, STATE_LABELS[s]) for s in LetterState] + [("overdue", STATE_LABELS["overdue"])]
    return _page(
        request,
        "messenger/letters.html",
        ctx,
        registry=registry,
        direction=direction if direction in ("in", "out") else "all",
        state=shown_state,
        q=q[:100],
        states=states,
        link=lambda **over: (
            "/messenger/letters?" + urlencode({**{"dir": direction, "state": shown_state, "q": q}, **over})
        ),
    )


def _compose(
    request: Request[Any, Any, Any],
    ctx: Ctx,
    draft: letters.LetterDraft,
    *,
    error: Problem | None = None,
    due: str = "",
) -> Response[str]:
    lang = request_lang(request)
    return _page(
        request,
        "messenger/letter_new.html",
        ctx,
        status_code=error.status or 400 if error else 200,
        draft=draft,
        due=due,
        error=error,
        agencies=letters.addressable(ctx, lang=lang),
        subject_max=SUBJECT_MAX,
        body_max=BODY_MAX,
        max_files=MAX_ATTACHMENTS,
    )


@get("/messenger/letters/new")
async def letters_new(request: Request[Any, Any, Any], reply_to: str | None = None) -> Response[str]:
    ctx = await _ctx(request, "messenger.letters.write")
    lang = request_lang(request)
    if reply_to:
        draft = await asyncio.to_thread(letters.draft_reply, ctx, reply_to, lang=lang)
    else:
        draft = letters.LetterDraft(addressees=[], subject="", body="")
    return await asyncio.to_thread(_compose, request, ctx, draft)


@post("/messenger/letters")
async def letters_register(request: Request[Any, Any, Any]) -> Response[Any]:
    """Register and send a letter; a form error keeps everything typed."""
    ctx = await _ctx(request, "messenger.letters.write")
    form = await request.form()
    due_text = _field(form, "due", 10)
    files = [item for item in form.getall("files", []) if isinstance(item, UploadFile) and item.filename]
    attachments = [letters.Attachment(await f.read(), f.content_type, f.filename) for f in files]
    draft = letters.LetterDraft(
        addressees=_values(form, "addressees"),
        subject=_field(form, "subject", SUBJECT_MAX + 1),
        body=_field(form, "body", BODY_MAX + 1),
        dsp=bool(_field(form, "dsp")),
        in_reply_to=_field(form, "in_reply_to", 32) or None,
        addressee_account=_field(form, "addressee_account", 32) or None,
        attachments=attachments,
    )
    try:
        if due_text:
            try:
                draft.due = date.fromisoformat(due_text)
            except ValueError:
                raise Problem("validation.field", field="due") from None
        registered = await letters.do_register_letter(ctx, draft)
    except Problem as problem:
        if problem.code in ("auth.forbidden", "auth.required"):
            raise
        draft.attachments = []
        return await asyncio.to_thread(_compose, request, ctx, draft, error=problem, due=due_text)
    return Redirect(path=f"/messenger/letters/{registered.id}?registered=1", status_code=303)


@get("/messenger/letters/{letter_id:str}")
async def letters_view(request: Request[Any, Any, Any], letter_id: str, registered: str = "") -> Response[str]:
    """One letter: opening it as its addressee records the reading."""
    ctx = await _ctx(request, "messenger.letters.write")
    letter = await asyncio.to_thread(letters.letter_view, ctx, letter_id, lang=request_lang(request))
    return _page(request, "messenger/letter.html", ctx, letter=letter, just_registered=bool(registered))


@get("/messenger/letters/{letter_id:str}/files/{position:int}")
async def letters_file(request: Request[Any, Any, Any], letter_id: str, position: int) -> Response[bytes]:
    ctx = await _ctx(request, "messenger.letters.write")
    stored = await asyncio.to_thread(letters.letter_file, ctx, letter_id, position)
    name = stored.filename or f"attachment-{position + 1}"
    disposition = "inline" if stored.inline else "attachment"
    return Response(
        content=stored.content,
        media_type=stored.content_type,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name, safe='')}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
        },
    )


# --- notices ----------------------------------------------------------------------------------


@get("/messenger/notices")
async def notices_inbox(request: Request[Any, Any, Any]) -> Response[str]:
    """The official's notices, those still to confirm first."""
    ctx = await _ctx(request, "messenger.notices.receive")
    items = await asyncio.to_thread(notices.my_notices, ctx, lang=request_lang(request))
    return _page(request, "messenger/notices.html", ctx, items=items)


@post("/messenger/notices/{notice_id:str}/confirm")
async def notices_confirm(request: Request[Any, Any, Any], notice_id: str) -> Response[Any]:
    ctx = await _ctx(request, "messenger.notices.receive")
    await notices.do_confirm(ctx, notice_id[:32])
    if request.headers.get("x-requested-with") == "fetch":
        return Response(content=b"", status_code=204)
    return Redirect(path="/messenger/notices#n-" + notice_id[:32], status_code=303)


def _notice_form(
    request: Request[Any, Any, Any], ctx: Ctx, values: dict[str, Any], error: Problem | None = None
) -> Response[str]:
    return _page(
        request,
        "messenger/notice_new.html",
        ctx,
        status_code=error.status or 400 if error else 200,
        choices=notices.audience_choices(ctx, lang=request_lang(request)),
        values=values,
        error=error,
        title_max=notices.TITLE_MAX,
        body_max=notices.BODY_MAX,
    )


@get("/messenger/notices/new")
async def notices_new(request: Request[Any, Any, Any]) -> Response[str]:
    ctx = await _ctx(request, "messenger.notices.send")
    values = {"title": "", "body": "", "agencies": [], "roles": [], "regions": []}
    return await asyncio.to_thread(_notice_form, request, ctx, values)


@post("/messenger/notices")
async def notices_send(request: Request[Any, Any, Any]) -> Response[Any]:
    """Broadcast a notice to the chosen agencies, roles and regions."""
    ctx = await _ctx(request, "messenger.notices.send")
    form = await request.form()
    values: dict[str, Any] = {
        "title": _field(form, "title", notices.TITLE_MAX + 1),
        "body": _field(form, "body", notices.BODY_MAX + 1),
        "agencies": _values(form, "agencies"),
        "roles": _values(form, "roles"),
        "regions": _values(form, "regions"),
    }
    audience = notices.Audience(agencies=values["agencies"], roles=values["roles"], regions=values["regions"])
    try:
        notice_id = await notices.do_send_notice(ctx, values["title"], values["body"], audience)
    except Problem as problem:
        if problem.code in ("auth.forbidden", "auth.required"):
            raise
        return await asyncio.to_thread(_notice_form, request, ctx, values, problem)
    return Redirect(path=f"/messenger/notices/sent/{notice_id}", status_code=303)


@get("/messenger/notices/sent")
async def notices_sent(request: Request[Any, Any, Any]) -> Response[str]:
    ctx = await _ctx(request, "messenger.notices.send")
    items = await asyncio.to_thread(notices.sent_notices, ctx, lang=request_lang(request))
    return _page(request, "messenger/notices_sent.html", ctx, items=items)


@get("/messenger/notices/sent/{notice_id:str}")
async def notices_tracked(request: Request[Any, Any, Any], notice_id: str) -> Response[str]:
    """The sender's view: the share confirmed per agency, updating live."""
    ctx = await _ctx(request, "messenger.notices.send")
    notice = await asyncio.to_thread(notices.tracked_notice, ctx, notice_id, lang=request_lang(request))
    return _page(request, "messenger/notice_sent.html", ctx, notice=notice)


@get("/messenger/notices/sent/{notice_id:str}/shares")
async def notices_shares(request: Request[Any, Any, Any], notice_id: str) -> Response[str]:
    """The confirmed shares alone, for live refreshes."""
    ctx = await _ctx(request, "messenger.notices.send")
    notice = await asyncio.to_thread(notices.tracked_notice, ctx, notice_id, lang=request_lang(request))
    return _page(request, "messenger/_notice_shares.html", ctx, notice=notice)


@get("/messenger/notices/sent/{notice_id:str}/events")
async def notices_events(request: Request[Any, Any, Any], notice_id: str) -> ServerSentEvent:
    """Server-Sent Events: a `shares` message whenever the number of confirmations changes."""
    ctx = await _ctx(request, "messenger.notices.send")
    first = await asyncio.to_thread(notices.confirmed_count, ctx, notice_id)
    hub = request.app.state.hub

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        cursor, confirmed = hub.latest, first
        deadline = time.monotonic() + STREAM_SECONDS
        yield ServerSentEventMessage(event="ready", data="{}", retry=2000)
        while (left := deadline - time.monotonic()) > 0:
            latest = await hub.wait(cursor, min(KEEPALIVE_SECONDS, left))
            if latest <= cursor:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            cursor = latest
            # Every event on the bus wakes this stream; only a changed count is worth a message.
            now = await asyncio.to_thread(notices.confirmed_count, ctx, notice_id)
            if now != confirmed:
                confirmed = now
                yield ServerSentEventMessage(event="shares", data=json.dumps({"confirmed": confirmed}))

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# --- records: legal hold, exports -------------------------------------------------------------


def _zip(export: compliance.Export) -> Response[bytes]:
    return Response(
        content=export.content,
        media_type="application/zip",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(export.filename, safe='')}",
            "Cache-Control": "no-store",
        },
    )


@get("/messenger/compliance")
async def compliance_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The agency's rooms for its security officer or admin: kinds, retention, legal holds."""
    ctx = await _ctx(request, "messenger.compliance")
    rooms = await asyncio.to_thread(compliance.agency_rooms, ctx)
    return _page(
        request,
        "messenger/compliance.html",
        ctx,
        rooms=rooms,
        reasons=compliance.HOLD_REASON_LABELS,
        agency=compliance.agency_name(ctx, request_lang(request)),
        may_export=ctx.actor is not None and ctx.actor.role == "security_officer",
    )


@post("/messenger/compliance/rooms/{room_id:str}/hold")
async def compliance_hold(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    ctx = await _ctx(request, "messenger.compliance")
    form = await request.form()
    hold = _field(form, "action", 10) != "release"
    await compliance.do_set_legal_hold(ctx, room_id[:255], hold=hold, reason=_field(form, "reason", 32) or None)
    return Redirect(path="/messenger/compliance", status_code=303)


@post("/messenger/rooms/{room_id:str}/export", status_code=200)
async def room_export(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    """Download a room's history (ZIP); the export is written to the ledger."""
    ctx = await _ctx(request, "messenger.use")
    assert ctx.actor is not None
    export = await compliance.do_export_room(mx_ctx(ctx.kernel, ctx.actor), room_id[:255])
    return _zip(export)


@post("/messenger/letters/{letter_id:str}/export", status_code=200)
async def letter_export(request: Request[Any, Any, Any], letter_id: str) -> Response[bytes]:
    """Download a letter's file (ZIP) with its answers and attachments; written to the ledger."""
    ctx = await _ctx(request, "messenger.letters.write")
    export = await compliance.do_export_letter(ctx, letter_id[:32], lang=request_lang(request))
    return _zip(export)


ROUTES = [
    compliance_page,
    compliance_hold,
    room_export,
    letter_export,
    letters_registry,
    letters_new,
    letters_register,
    letters_view,
    letters_file,
    notices_inbox,
    notices_confirm,
    notices_new,
    notices_send,
    notices_sent,
    notices_tracked,
    notices_shares,
    notices_events,
]
