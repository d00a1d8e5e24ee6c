"""The officials' messenger in the browser: the same rooms, events and rules as the Matrix API.

Thin: each handler calls one messenger use case (or a read helper of `services.web_queries`) and
renders. Pages work without JavaScript (forms post and redirect); `static/messenger/messenger.js`
adds live updates over one Server-Sent Events stream per tab: the stream only says *which rooms*
changed (its ids are kernel stream ids, so a reconnect resumes with Last-Event-ID), and the page
fetches the new timeline lines as HTML rendered by the same templates.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect, ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from litestar.static_files import create_static_files_router

from qorgau.kernel import i18n
from qorgau.kernel.auth.policy import can, require
from qorgau.kernel.context import Ctx
from qorgau.kernel.errors import Problem
from qorgau.kernel.i18n import N_
from qorgau.messenger import media
from qorgau.messenger.domain import DSP_STATE, HISTORY_VISIBILITY_VALUES, is_room_id, is_user_id
from qorgau.messenger.services import ephemeral, events, notices, rooms, web_queries
from qorgau.messenger.services.access import MxCtx, mx_ctx
from qorgau.messenger.services.events import StoredEvent
from qorgau.messenger.services.rooms import CreateRoom
from qorgau.web.home import Section, register_section
from qorgau.web.http import kernel_of, request_actor, request_lang
from qorgau.web.render import add_template_dir, render

add_template_dir(Path(__file__).parent / "templates")
register_section(
    Section(
        "messenger",
        N_("Messenger"),
        N_("Chats, official letters and government notices"),
        "/messenger",
        "messenger.use",
    )
)

STATIC_DIR = Path(__file__).parent / "static"
# An open stream ends after this long and the browser reconnects with Last-Event-ID: a signed-out
# session or a changed role stops receiving updates within this time.
STREAM_SECONDS = 240.0
KEEPALIVE_SECONDS = 20.0
MESSAGE_MAX = 8000
NAME_MAX = 120
# What members who join later see of a room's history, as the new-room form offers it (the first is
# the default). world_readable is left out: without guest access it means the same as shared here.
HISTORY_CHOICES = (
    ("shared", N_("All history")),
    ("invited", N_("From their invitation")),
    ("joined", N_("From when they join")),
)
HISTORY_LABELS = {
    **dict(HISTORY_CHOICES),
    "world_readable": N_("All history"),
}


# --- plumbing ---------------------------------------------------------------------------------


async def _ctx(request: Request[Any, Any, Any]) -> MxCtx:
    """The messenger context of a signed-in official (401 anonymous, 403 anyone else)."""
    actor = await asyncio.to_thread(request_actor, request)
    require(actor, "messenger.use")
    assert actor is not None
    kernel = kernel_of(request)
    # Sends from the browser are idempotent per sign-in session and client-chosen transaction id.
    device_key = "web" + kernel.hasher.hash("messenger.web", actor.session_id or actor.user_id)[:29]
    return mx_ctx(kernel, actor, device_key=device_key)


def _helpers(request: Request[Any, Any, Any]) -> dict[str, Any]:
    lang = request_lang(request)
    zone = ZoneInfo(i18n.DISPLAY_TIME_ZONE)
    today = datetime.now(tz=zone).date()

    def when(ms: int) -> str:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone)
        clock = format_time(moment, format="short", locale=lang)
        if moment.date() == today:
            return clock
        return f"{format_date(moment, format='short', locale=lang)} {clock}"

    return {
        "when": when,
        "quote": lambda s: quote(s, safe=""),
        "message_max": MESSAGE_MAX,
        "edit_target": _replaced,
        "new_body": _new_body,
        "media_id": _media_id,
        "history_choices": HISTORY_CHOICES,
        "history_labels": HISTORY_LABELS,
    }


def _page(request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any) -> Response[str]:
    # Fragments ("messenger/_…": the room list and timeline lines fetched on every live update) have
    # no sidebar links: only whole pages pay for the badge's query.
    links = {} if template.startswith("messenger/_") else _office_links(request)
    values = {**_helpers(request), "show_main": False, **links, **context}
    response = render(request, template, status_code=status_code, **values)
    response.headers["Cache-Control"] = "no-store"
    return response


def _office_links(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What the sidebar's links to letters and notices need: the badge of notices to confirm."""
    actor = request_actor(request)
    ctx = Ctx(kernel=kernel_of(request), actor=actor)
    return {"notices_waiting": notices.unconfirmed_count(ctx), "may_send_notices": can(actor, "messenger.notices.send")}


def _room_url(room_id: str) -> str:
    return "/messenger/rooms/" + quote(room_id, safe="")


def _by_script(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


def _done(request: Request[Any, Any, Any], target: str) -> Response[Any]:
    if _by_script(request):
        return Response(content=b"", status_code=204)
    return Redirect(path=target, status_code=303)


async def _form(request: Request[Any, Any, Any]) -> Any:
    return await request.form()


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _check_room(room_id: str) -> str:
    if not is_room_id(room_id):
        raise Problem("http.not_found", status=404)
    return room_id


def _check_user(value: str) -> str:
    if not is_user_id(value):
        raise Problem("validation.field", field="user_id", status=400)
    return value


@dataclass
class Line:
    """How a message shows: its current text (after edits) and what it answers."""

    body: str
    edited: bool = False
    reply_to: StoredEvent | None = None


def _relation(e: StoredEvent) -> dict[str, Any]:
    found = e.content.get("m.relates_to")
    return found if isinstance(found, dict) else {}


def _replaced(e: StoredEvent) -> str | None:
    rel = _relation(e)
    return rel.get("event_id") if rel.get("rel_type") == "m.replace" else None


def _replied(e: StoredEvent) -> str | None:
    reply = _relation(e).get("m.in_reply_to")
    return reply.get("event_id") if isinstance(reply, dict) and isinstance(reply.get("event_id"), str) else None


def _new_body(e: StoredEvent) -> str:
    new = e.content.get("m.new_content")
    return str(new.get("body") or "") if isinstance(new, dict) else str(e.content.get("body") or "")


def _media_id(e: StoredEvent) -> str | None:
    url = e.content.get("url")
    if isinstance(url, str) and url.startswith("mxc://") and url.count("/") == 3:
        return url.rsplit("/", 1)[1]
    return None


def _reply_body(body: str) -> str:
    # Replies from Matrix apps may carry the quoted original as "> " lines before the answer.
    lines = body.split("\n")
    if lines and lines[0].startswith("> "):
        while lines and lines[0].startswith(">"):
            lines.pop(0)
        if lines and not lines[0].strip():
            lines.pop(0)
    return "\n".join(lines)


def _arrange(ctx: MxCtx, room_id: str, timeline: list[StoredEvent]) -> dict[str, Line]:
    """Each message's line: the last edit by its own sender wins; replies know their original."""
    lines: dict[str, Line] = {}
    by_id = {e.event_id: e for e in timeline}
    for e in timeline:
        if e.type == "m.room.message" and _replaced(e) is None:
            lines[e.event_id] = Line(body=_reply_body(str(e.content.get("body") or "")))
    for e in timeline:
        target = _replaced(e)
        original = by_id.get(target or "")
        if target and original is not None and original.sender == e.sender and target in lines:
            lines[target].body = _new_body(e)
            lines[target].edited = True
    wanted = [r for e in timeline if (r := _replied(e)) and e.event_id in lines]
    known = web_queries.room_events_by_id(ctx, room_id, [r for r in wanted if r not in by_id])
    for e in timeline:
        r = _replied(e)
        if r and e.event_id in lines:
            lines[e.event_id].reply_to = by_id.get(r) or known.get(r)
    return lines


def _quote_text(lines: dict[str, Line], e: StoredEvent) -> str:
    line = lines.get(e.event_id)
    return line.body if line else _reply_body(str(e.content.get("body") or ""))


# --- pages ------------------------------------------------------------------------------------


@get("/messenger")
async def messenger_index(request: Request[Any, Any, Any]) -> Response[str]:
    ctx = await _ctx(request)
    summaries = await asyncio.to_thread(web_queries.room_list, ctx)
    return _page(request, "messenger/index.html", rooms=summaries, current=None, me=ctx.user_id)


@get("/messenger/list")
async def messenger_list(request: Request[Any, Any, Any], current: str | None = None) -> Response[str]:
    """The room list alone, for live refreshes."""
    ctx = await _ctx(request)
    summaries = await asyncio.to_thread(web_queries.room_list, ctx)
    return _page(request, "messenger/_rooms.html", rooms=summaries, current=current, me=ctx.user_id)


@get("/messenger/rooms/{room_id:str}")
async def messenger_room(request: Request[Any, Any, Any], room_id: str) -> Response[str]:
    ctx = await _ctx(request)
    _check_room(room_id)

    def load() -> tuple[Any, Any, Any, Any]:
        summaries = web_queries.room_list(ctx)
        mine = next((s for s in summaries if s.room_id == room_id), None)
        if mine is not None and mine.membership == "invite":
            return summaries, None, None, mine
        view = web_queries.room_view(ctx, room_id)
        timeline = web_queries.timeline(ctx, room_id)
        return summaries, view, (timeline, _arrange(ctx, room_id, timeline)), None

    summaries, view, loaded, invite = await asyncio.to_thread(load)
    if invite is not None:
        return _page(request, "messenger/invite.html", rooms=summaries, current=room_id, invite=invite, me=ctx.user_id)
    directory = await asyncio.to_thread(web_queries.agency_officials, ctx)
    candidates = [o for o in directory if o.user_id not in view.members and o.user_id not in view.invited]
    timeline, lines = loaded
    return _page(
        request,
        "messenger/room.html",
        rooms=summaries,
        current=room_id,
        room=view,
        timeline=timeline,
        lines=lines,
        quote_text=lambda e: _quote_text(lines, e),
        last_stream=timeline[-1].stream_id if timeline else 0,
        candidates=candidates,
        me=ctx.user_id,
        txn=secrets.token_urlsafe(12),
    )


@get("/messenger/rooms/{room_id:str}/timeline")
async def messenger_timeline(request: Request[Any, Any, Any], room_id: str, after: int = 0) -> Response[str]:
    """Timeline lines after a stream position, for live updates."""
    ctx = await _ctx(request)
    _check_room(room_id)

    def load() -> tuple[Any, Any, Any]:
        timeline = web_queries.timeline(ctx, room_id, after=max(0, after))
        return web_queries.room_view(ctx, room_id), timeline, _arrange(ctx, room_id, timeline)

    view, timeline, lines = await asyncio.to_thread(load)
    response = _page(
        request,
        "messenger/_events.html",
        room=view,
        timeline=timeline,
        lines=lines,
        quote_text=lambda e: _quote_text(lines, e),
        me=ctx.user_id,
    )
    response.headers["X-Room-Members"] = str(len(view.members))
    return response


@get("/messenger/new")
async def messenger_new(request: Request[Any, Any, Any]) -> Response[str]:
    ctx = await _ctx(request)

    def load() -> tuple[Any, Any]:
        return web_queries.room_list(ctx), web_queries.agency_officials(ctx)

    summaries, directory = await asyncio.to_thread(load)
    return _page(
        request, "messenger/new.html", rooms=summaries, current=None, directory=directory, error=None, show_main=True
    )


# --- changes ----------------------------------------------------------------------------------


@post("/messenger/rooms")
async def messenger_create(request: Request[Any, Any, Any]) -> Response[Any]:
    """Create a group room and invite officials picked from the agency directory."""
    ctx = await _ctx(request)
    form = await _form(request)
    name = _text(form, "name")[:NAME_MAX]
    topic = _text(form, "topic")[:500]
    invite = [_check_user(v) for v in form.getall("invite", []) if isinstance(v, str) and v]
    if not name:
        directory = await asyncio.to_thread(web_queries.agency_officials, ctx)
        summaries = await asyncio.to_thread(web_queries.room_list, ctx)
        error = Problem(
            "validation.field", field="name", detail=i18n.gettext(request_lang(request), N_("Give the room a name"))
        )
        return _page(
            request,
            "messenger/new.html",
            status_code=400,
            rooms=summaries,
            current=None,
            directory=directory,
            error=error,
            show_main=True,
        )
    initial = [{"type": DSP_STATE, "state_key": "", "content": {"dsp": True}}] if _text(form, "dsp") else []
    history = _text(form, "history_visibility") or HISTORY_CHOICES[0][0]
    if history not in HISTORY_VISIBILITY_VALUES:
        raise Problem("validation.field", field="history_visibility", status=400)
    initial.append({"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": history}})
    room_id = await rooms.do_create_room(
        ctx, CreateRoom(name=name, topic=topic or None, invite=invite, initial_state=initial)
    )
    return Redirect(path=_room_url(room_id), status_code=303)


@post("/messenger/direct")
async def messenger_direct(request: Request[Any, Any, Any]) -> Response[Any]:
    """Open the direct chat with an official, starting it (and inviting them) if there is none."""
    ctx = await _ctx(request)
    other = _check_user(_text(await _form(request), "user_id"))
    if other == ctx.user_id:
        raise Problem("validation.field", field="user_id", status=400)
    room_id = await asyncio.to_thread(web_queries.direct_room_with, ctx, other)
    if room_id is None:
        room_id = await rooms.do_create_room(
            ctx, CreateRoom(invite=[other], is_direct=True, preset="trusted_private_chat")
        )
    return Redirect(path=_room_url(room_id), status_code=303)


@post("/messenger/rooms/{room_id:str}/send")
async def messenger_send(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    ctx = await _ctx(request)
    _check_room(room_id)
    form = await _form(request)
    body = _text(form, "body")[:MESSAGE_MAX]
    if body:
        txn = _text(form, "txn")[:64] or None
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        edit, reply_to = _text(form, "edit")[:255], _text(form, "reply_to")[:255]
        if edit:
            # A Matrix edit: clients that know m.replace show the new text, others the starred fallback.
            content = {
                "msgtype": "m.text",
                "body": "* " + body,
                "m.new_content": {"msgtype": "m.text", "body": body},
                "m.relates_to": {"rel_type": "m.replace", "event_id": edit},
            }
        elif reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        await events.do_send_event(ctx, room_id, "m.room.message", content, txn)
    return _done(request, _room_url(room_id))


@post("/messenger/rooms/{room_id:str}/redact")
async def messenger_redact(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    """Delete one's own message (the room's rules decide; others' need the redact power level)."""
    ctx = await _ctx(request)
    _check_room(room_id)
    event_id = _text(await _form(request), "event_id")
    await events.do_redact_event(ctx, room_id, event_id, None, None)
    return _done(request, _room_url(room_id))


@post("/messenger/rooms/{room_id:str}/read")
async def messenger_read(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    """Mark the room read up to an event (a read receipt, as Matrix clients send it)."""
    ctx = await _ctx(request)
    _check_room(room_id)
    event_id = _text(await _form(request), "event_id")
    await ephemeral.do_set_receipt(ctx, room_id, "m.read", event_id)
    return _done(request, _room_url(room_id))


@post("/messenger/rooms/{room_id:str}/join")
async def messenger_join(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    ctx = await _ctx(request)
    await rooms.do_change_membership(ctx, _check_room(room_id), "join")
    return Redirect(path=_room_url(room_id), status_code=303)


@post("/messenger/rooms/{room_id:str}/leave")
async def messenger_leave(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    """Leave a room, or decline an invitation."""
    ctx = await _ctx(request)
    await rooms.do_change_membership(ctx, _check_room(room_id), "leave")
    return Redirect(path="/messenger", status_code=303)


@post("/messenger/rooms/{room_id:str}/invite")
async def messenger_invite(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    ctx = await _ctx(request)
    _check_room(room_id)
    target = _check_user(_text(await _form(request), "user_id"))
    await rooms.do_change_membership(ctx, room_id, "invite", target)
    return Redirect(path=_room_url(room_id), status_code=303)


@post("/messenger/rooms/{room_id:str}/attach")
async def messenger_attach(request: Request[Any, Any, Any], room_id: str) -> Response[Any]:
    """Send a file to a room: stored like a Matrix upload (cleaned, sealed), then a file message."""
    ctx = await _ctx(request)
    _check_room(room_id)
    form = await _form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Problem("validation.field", field="file", status=400)
    data = await upload.read()
    uri = await asyncio.to_thread(media.do_upload_media, ctx, data, upload.content_type, upload.filename)
    stored = await asyncio.to_thread(web_queries.media_info, ctx, uri)
    content: dict[str, Any] = {
        "msgtype": _msgtype(stored["mimetype"]),
        "body": upload.filename[:255],
        "url": uri,
        "info": stored,
    }
    await events.do_send_event(ctx, room_id, "m.room.message", content, _text(form, "txn")[:64] or None)
    return Redirect(path=_room_url(room_id), status_code=303)


def _msgtype(mimetype: str) -> str:
    for prefix, kind in (("image/", "m.image"), ("video/", "m.video"), ("audio/", "m.audio")):
        if mimetype.startswith(prefix):
            return kind
    return "m.file"


@get("/messenger/media/{media_id:str}")
async def messenger_media(request: Request[Any, Any, Any], media_id: str, thumb: bool = False) -> Response[bytes]:
    """A file shared in the official's rooms (a thumbnail with ?thumb=1), as the Matrix API serves it."""
    ctx = await _ctx(request)
    server = ctx.kernel.settings.server_name
    if thumb:
        found = await asyncio.to_thread(media.get_thumbnail, ctx, server, media_id[:64], 320, 240, "scale")
    else:
        found = await asyncio.to_thread(media.get_media, ctx, server, media_id[:64])
    return media.media_response(found, None)


@get("/messenger/search")
async def messenger_search(request: Request[Any, Any, Any], q: str = "") -> Response[str]:
    """Search the messages of the official's rooms (plaintext rooms: the server cannot read encrypted ones)."""
    ctx = await _ctx(request)
    term = q.strip()[:200]

    def load() -> tuple[Any, list[Any]]:
        found = web_queries.search_messages(ctx, term) if term else []
        return web_queries.room_list(ctx), found

    summaries, results = await asyncio.to_thread(load)
    return _page(
        request, "messenger/search.html", rooms=summaries, current=None, q=term, results=results, show_main=True
    )


# --- live updates -----------------------------------------------------------------------------


def _start_position(request: Request[Any, Any, Any], hub_latest: int) -> int:
    for raw in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if raw and raw.isdigit():
            return min(int(raw), hub_latest) if hub_latest else int(raw)
    return hub_latest


@get("/messenger/events")
async def messenger_events(request: Request[Any, Any, Any]) -> ServerSentEvent:
    """Server-Sent Events: `rooms` messages name the rooms that changed; ids resume the stream."""
    ctx = await _ctx(request)
    hub = request.app.state.hub
    cursor = _start_position(request, hub.latest)

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        nonlocal cursor
        deadline = time.monotonic() + STREAM_SECONDS
        yield ServerSentEventMessage(event="ready", data="{}", id=str(cursor), retry=2000)
        while (left := deadline - time.monotonic()) > 0:
            latest = await hub.wait(cursor, min(KEEPALIVE_SECONDS, left))
            if latest <= cursor:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            changed = await asyncio.to_thread(web_queries.changed_rooms, ctx, cursor, latest)
            cursor = latest
            if changed:
                payload = json.dumps({"rooms": [room for room, _ in changed]})
                yield ServerSentEventMessage(event="rooms", data=payload, id=str(cursor))

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


ROUTES = [
    messenger_index,
    messenger_list,
    messenger_new,
    messenger_room,
    messenger_timeline,
    messenger_create,
    messenger_direct,
    messenger_send,
    messenger_redact,
    messenger_read,
    messenger_join,
    messenger_leave,
    messenger_invite,
    messenger_events,
    messenger_attach,
    messenger_media,
    messenger_search,
    create_static_files_router(path="/static/messenger", directories=[STATIC_DIR], send_as_attachment=False),
]
