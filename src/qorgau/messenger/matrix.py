"""The Matrix client-server API (v1.11 shapes): thin transport over the messenger's services.

Each handler authenticates the access token (header or `?access_token=`), parses the JSON body
itself (so bad input gets Matrix's own M_NOT_JSON / M_BAD_JSON), calls one service function and
encodes the answer. Every error on these routes is `{"errcode": "M_…", "error": "…"}`: the router's
exception handler (and the app's, for unknown /_matrix paths) turns Problems into that shape.
Database work runs in threads or through the group-commit writer; the event loop only waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, Router, get, post, put
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from qorgau.kernel.context import Kernel
from qorgau.kernel.errors import Problem, title_for
from qorgau.kernel.observability import log
from qorgau.messenger import media as media_service
from qorgau.messenger.domain import (
    ROOM_VERSION,
    SPEC_VERSIONS,
    EventFilter,
    bad_json,
    dsp_view_is_ledgered,
    invalid_param,
    mx_error,
    parse_stream_token,
)
from qorgau.messenger.runtime import runtime, tune_process
from qorgau.messenger.services import accounts, e2ee, ephemeral, rooms, search
from qorgau.messenger.services import events as events_service
from qorgau.messenger.services.access import MxCtx, note_sync_dsp_views
from qorgau.messenger.sync import SyncRequest, encode_sync

T = TypeVar("T")

V3 = "/_matrix/client/v3"
MEDIA_V1 = "/_matrix/client/v1/media"
MEDIA_V3 = "/_matrix/media/v3"
PATH_PREFIXES = ("/_matrix/", "/.well-known/matrix/")
MAX_SYNC_TIMEOUT_MS = 120_000
JSON = "application/json"

_encode = msgspec.json.encode

# Kernel problem codes on Matrix routes: (HTTP status, errcode).
_ERRCODES: dict[str, tuple[int, str]] = {
    "auth.forbidden": (403, "M_FORBIDDEN"),
    "auth.required": (401, "M_MISSING_TOKEN"),
    "auth.token_invalid": (401, "M_UNKNOWN_TOKEN"),
    "auth.invalid_credentials": (403, "M_FORBIDDEN"),
    "auth.locked": (429, "M_LIMIT_EXCEEDED"),
    "auth.disabled": (403, "M_USER_DEACTIVATED"),
    "auth.username_taken": (400, "M_USER_IN_USE"),
    "auth.weak_password": (400, "M_WEAK_PASSWORD"),
    "http.not_found": (404, "M_NOT_FOUND"),
    "http.too_large": (413, "M_TOO_LARGE"),
    "validation.field": (400, "M_BAD_JSON"),
    "validation.body": (400, "M_NOT_JSON"),
    "validation.parameter": (400, "M_INVALID_PARAM"),
    "unavailable": (503, "M_UNKNOWN"),
}


# --- errors -----------------------------------------------------------------------------------


def matrix_error(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of the Matrix error for `exc`."""
    if isinstance(exc, Problem):
        extra = dict(exc.extra)
        errcode = extra.pop("errcode", None)
        status = exc.status or 400
        if errcode is None:
            status, errcode = _ERRCODES.get(exc.code, (status, "M_UNKNOWN"))
        body: dict[str, Any] = {"errcode": errcode, "error": exc.detail or title_for(exc.code, "en")}
        if exc.code == "auth.locked":
            retry = int(extra.pop("retry_after", 1) or 1)
            body["retry_after_ms"] = retry * 1000
        body.update(extra)
        return status, body, dict(exc.headers)
    if isinstance(exc, NotFoundException):
        return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, {}
    if isinstance(exc, MethodNotAllowedException):
        return 405, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request method"}, {}
    if isinstance(exc, ValidationException):
        return 400, {"errcode": "M_INVALID_PARAM", "error": "A parameter is missing or invalid"}, {}
    if isinstance(exc, HTTPException):
        if exc.status_code == 413:
            return 413, {"errcode": "M_TOO_LARGE", "error": "The request is too large"}, {}
        if exc.status_code < 500:
            return exc.status_code, {"errcode": "M_UNKNOWN", "error": "The request could not be processed"}, {}
    return 500, {"errcode": "M_UNKNOWN", "error": "Internal server error"}, {}


def matrix_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """The exception handler of every Matrix route: `{"errcode", "error"}` with the right status."""
    status, body, headers = matrix_error(exc)
    if status >= 500:
        # The type and route only: messages and locals can carry personal data.
        log.error("matrix_unhandled", error=type(exc).__name__, route=request.scope.get("path_template"))
    return Response(content=_encode(body), status_code=status, media_type=JSON, headers=headers)


def ok(body: Any, status: int = 200) -> Response[bytes]:
    return Response(content=_encode(body), status_code=status, media_type=JSON)


# --- request plumbing -------------------------------------------------------------------------


def _kernel(request: Request[Any, Any, Any]) -> Kernel:
    return request.app.state.kernel  # type: ignore[no-any-return]


def access_token(authorization: str | None, query: Mapping[str, str]) -> str | None:
    """The access token of a request: `Authorization: Bearer …`, else `?access_token=` (matrix-nio's way)."""
    if authorization is not None:
        if authorization[:7].lower() != "bearer ":
            raise mx_error("M_MISSING_TOKEN", "Expected 'Authorization: Bearer <token>'", 401)
        return authorization[7:].strip()
    return query.get("access_token")


async def session_for(kernel: Kernel, token: str | None) -> accounts.Session:
    """The signed-in device behind an access token (M_MISSING_TOKEN / M_UNKNOWN_TOKEN)."""
    if not token:
        raise mx_error("M_MISSING_TOKEN", "Missing access token", 401)
    found = runtime(kernel).sessions.get(accounts.token_digest(token))
    if found is None:
        found = await asyncio.to_thread(accounts.resolve_token, kernel, token)
    if found is None:
        raise mx_error("M_UNKNOWN_TOKEN", "Unknown or expired access token", 401, soft_logout=False)
    return found  # type: ignore[no-any-return]


async def session(request: Request[Any, Any, Any]) -> accounts.Session:
    """The signed-in device behind the request's access token (M_MISSING_TOKEN / M_UNKNOWN_TOKEN)."""
    token = access_token(request.headers.get("authorization"), request.query_params)
    return await session_for(_kernel(request), token)


async def mctx(request: Request[Any, Any, Any]) -> MxCtx:
    return accounts.session_ctx(_kernel(request), await session(request))


async def json_object(request: Request[Any, Any, Any], *, allow_empty: bool = False) -> dict[str, Any]:
    return decode_object(await request.body(), allow_empty=allow_empty)


def decode_object(raw: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    """A request body that must be a JSON object (M_NOT_JSON / M_BAD_JSON otherwise)."""
    if allow_empty and not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise mx_error("M_NOT_JSON", "Content not JSON") from None
    if not isinstance(body, dict):
        raise bad_json("The body must be a JSON object")
    return body


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise mx_error("M_MISSING_PARAM", f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be a string")
    return value


def _int_param(query: Mapping[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_param(f"'{name}' must be an integer") from None
    return max(lo, min(hi, value))


def _bool_param(query: Mapping[str, str], name: str) -> bool:
    return (query.get(name) or "").lower() in ("true", "1")


def _filter_param(query: Mapping[str, str]) -> EventFilter:
    raw = query.get("filter")
    if not raw:
        return EventFilter()
    try:
        return EventFilter.parse(msgspec.json.decode(raw))
    except msgspec.DecodeError:
        raise mx_error("M_NOT_JSON", "'filter' is not JSON") from None


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


# --- discovery --------------------------------------------------------------------------------


@get("/_matrix/client/versions")
async def versions() -> Response[bytes]:
    return ok({"versions": list(SPEC_VERSIONS), "unstable_features": {}})


@get("/.well-known/matrix/client")
async def well_known(request: Request[Any, Any, Any]) -> Response[bytes]:
    base = str(request.base_url).rstrip("/")
    return ok({"m.homeserver": {"base_url": base}})


@get(V3 + "/capabilities")
async def capabilities(request: Request[Any, Any, Any]) -> Response[bytes]:
    await session(request)
    return ok(
        {
            "capabilities": {
                "m.change_password": {"enabled": False},
                "m.room_versions": {"default": ROOM_VERSION, "available": {ROOM_VERSION: "stable"}},
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": False},
                "m.3pid_changes": {"enabled": False},
            }
        }
    )


# --- accounts ---------------------------------------------------------------------------------


@get(V3 + "/login")
async def login_flows() -> Response[bytes]:
    return ok({"flows": [{"type": "m.login.password"}]})


@post(V3 + "/login")
async def login(request: Request[Any, Any, Any]) -> Response[bytes]:
    kernel = _kernel(request)
    body = await json_object(request)
    if body.get("type") != "m.login.password":
        raise mx_error("M_UNKNOWN", "Only m.login.password is supported")
    identifier = body.get("identifier")
    if isinstance(identifier, dict):
        if identifier.get("type") != "m.id.user":
            raise mx_error("M_UNKNOWN", "Only m.id.user identifiers are supported")
        user = _string(identifier, "user", required=True)
    else:
        user = _string(body, "user", required=True)
    password = _string(body, "password", required=True)
    device_id = _string(body, "device_id")
    device_name = _string(body, "initial_device_display_name")
    throttle = request.app.state.client_throttle
    client_key = kernel.hasher.hash("client", request.client.host if request.client else "-")
    wait = throttle.retry_after(client_key)
    if wait:
        raise Problem("auth.locked", headers={"Retry-After": str(wait)}, extra={"retry_after": wait})
    try:
        result = await run(
            accounts.do_login,
            kernel,
            login=user or "",
            password=password or "",
            device_id=device_id,
            device_name=device_name,
        )
    except Problem as problem:
        if problem.code == "auth.invalid_credentials":
            throttle.failure(client_key)
        raise
    throttle.success(client_key)
    return ok(
        {
            "user_id": result.user_id,
            "access_token": result.access_token,
            "device_id": result.device_id,
            "home_server": kernel.settings.server_name,
        }
    )


@post(V3 + "/logout")
async def logout(request: Request[Any, Any, Any]) -> Response[bytes]:
    found = await session(request)
    await run(accounts.do_logout, _kernel(request), found)
    return ok({})


@post(V3 + "/logout/all")
async def logout_all(request: Request[Any, Any, Any]) -> Response[bytes]:
    found = await session(request)
    await run(accounts.do_logout, _kernel(request), found, every_device=True)
    return ok({})


@get(V3 + "/account/whoami")
async def whoami(request: Request[Any, Any, Any]) -> Response[bytes]:
    found = await session(request)
    return ok({"user_id": found.user_id, "device_id": found.device_id, "is_guest": False})


@post(V3 + "/register")
async def register(request: Request[Any, Any, Any]) -> Response[bytes]:
    kernel = _kernel(request)
    body = await json_object(request, allow_empty=True)
    result = await run(accounts.do_register, kernel, body, kind=request.query_params.get("kind") or "user")
    if isinstance(result, accounts.InteractiveAuth):
        return ok(result.body(), 401)
    return ok(result)


# --- rooms ------------------------------------------------------------------------------------


@post(V3 + "/createRoom")
async def create_room(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    invite = body.get("invite", [])
    initial_state = body.get("initial_state", [])
    if not isinstance(invite, list) or not all(isinstance(i, str) for i in invite):
        raise bad_json("'invite' must be a list of user ids")
    if not isinstance(initial_state, list):
        raise bad_json("'initial_state' must be a list")
    for name in ("power_level_content_override", "creation_content"):
        if body.get(name) is not None and not isinstance(body.get(name), dict):
            raise bad_json(f"'{name}' must be an object")
    is_direct = body.get("is_direct", False)
    if not isinstance(is_direct, bool):
        raise bad_json("'is_direct' must be a boolean")
    cmd = rooms.CreateRoom(
        name=_string(body, "name"),
        topic=_string(body, "topic"),
        invite=invite,
        preset=_string(body, "preset"),
        is_direct=is_direct,
        initial_state=initial_state,
        room_alias_name=_string(body, "room_alias_name"),
        visibility=_string(body, "visibility") or "private",
        power_level_content_override=body.get("power_level_content_override"),
        creation_content=body.get("creation_content"),
    )
    room_id = await rooms.do_create_room(ctx, cmd)
    return ok({"room_id": room_id})


async def _membership(
    request: Request[Any, Any, Any], room: str, action: str, *, needs_target: bool
) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request, allow_empty=True)
    # join and leave always act for the caller; the others name their target.
    target = _string(body, "user_id", required=True) if needs_target else None
    reason = _string(body, "reason")
    room_id = await rooms.do_change_membership(ctx, room, action, target, reason)
    return ok({"room_id": room_id} if action == "join" else {})


@post(V3 + "/rooms/{room_id:str}/invite")
async def invite(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    return await _membership(request, room_id, "invite", needs_target=True)


@post(V3 + "/rooms/{room_id:str}/join")
async def join_room(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    return await _membership(request, room_id, "join", needs_target=False)


@post(V3 + "/join/{room_ref:str}")
async def join_by_id_or_alias(request: Request[Any, Any, Any], room_ref: str) -> Response[bytes]:
    return await _membership(request, room_ref, "join", needs_target=False)


@post(V3 + "/rooms/{room_id:str}/leave")
async def leave(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    return await _membership(request, room_id, "leave", needs_target=False)


@post(V3 + "/rooms/{room_id:str}/kick")
async def kick(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    return await _membership(request, room_id, "kick", needs_target=True)


@post(V3 + "/rooms/{room_id:str}/ban")
async def ban(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    return await _membership(request, room_id, "ban", needs_target=True)


@post(V3 + "/rooms/{room_id:str}/unban")
async def unban(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    return await _membership(request, room_id, "unban", needs_target=True)


@get(V3 + "/joined_rooms")
async def joined_rooms(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    return ok({"joined_rooms": await run(rooms.joined_rooms, ctx)})


@get(V3 + "/rooms/{room_id:str}/members")
async def members(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    q = request.query_params
    found = await run(
        rooms.room_members, ctx, room_id, membership=q.get("membership"), not_membership=q.get("not_membership")
    )
    return ok({"chunk": [e.to_dict() for e in found]})


@get(V3 + "/rooms/{room_id:str}/joined_members")
async def joined_members(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok({"joined": await run(rooms.joined_members, ctx, room_id)})


@get(V3 + "/rooms/{room_id:str}/state")
async def room_state(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(rooms.get_state, ctx, room_id))


@get(V3 + "/rooms/{room_id:str}/state/{event_type:str}")
async def state_event_no_key(request: Request[Any, Any, Any], room_id: str, event_type: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(rooms.get_state_content, ctx, room_id, event_type, ""))


@get(V3 + "/rooms/{room_id:str}/state/{event_type:str}/{state_key:str}")
async def state_event(
    request: Request[Any, Any, Any], room_id: str, event_type: str, state_key: str
) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(rooms.get_state_content, ctx, room_id, event_type, state_key))


@put(V3 + "/rooms/{room_id:str}/state/{event_type:str}")
async def set_state_no_key(request: Request[Any, Any, Any], room_id: str, event_type: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    return ok({"event_id": await rooms.do_set_state(ctx, room_id, event_type, "", body)})


@put(V3 + "/rooms/{room_id:str}/state/{event_type:str}/{state_key:str}")
async def set_state(request: Request[Any, Any, Any], room_id: str, event_type: str, state_key: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    return ok({"event_id": await rooms.do_set_state(ctx, room_id, event_type, state_key, body)})


@get(V3 + "/directory/room/{alias:str}")
async def directory_room(request: Request[Any, Any, Any], alias: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(rooms.resolve_alias, ctx, alias))


# --- events -----------------------------------------------------------------------------------


@put(V3 + "/rooms/{room_id:str}/send/{event_type:str}/{txn_id:str}")
async def send_event(request: Request[Any, Any, Any], room_id: str, event_type: str, txn_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    return ok({"event_id": await events_service.do_send_event(ctx, room_id, event_type, body, txn_id)})


@put(V3 + "/rooms/{room_id:str}/redact/{event_id:str}/{txn_id:str}")
async def redact(request: Request[Any, Any, Any], room_id: str, event_id: str, txn_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request, allow_empty=True)
    reason = _string(body, "reason")
    return ok({"event_id": await events_service.do_redact_event(ctx, room_id, event_id, reason, txn_id)})


@get(V3 + "/rooms/{room_id:str}/messages")
async def messages(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    q = request.query_params
    page = await run(
        events_service.room_messages,
        ctx,
        room_id,
        from_token=q.get("from"),
        to_token=q.get("to"),
        direction=q.get("dir") or "b",
        limit=_int_param(request.query_params, "limit", None, 0, 1000),
        event_filter=_filter_param(request.query_params),
    )
    return ok(page)


@get(V3 + "/rooms/{room_id:str}/event/{event_id:str}")
async def get_event(request: Request[Any, Any, Any], room_id: str, event_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(events_service.get_event, ctx, room_id, event_id))


@get(V3 + "/rooms/{room_id:str}/context/{event_id:str}")
async def event_context(request: Request[Any, Any, Any], room_id: str, event_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    q = request.query_params
    limit = _int_param(q, "limit", 10, 0, 100) or 0
    return ok(await run(events_service.event_context, ctx, room_id, event_id, limit, _filter_param(q)))


# --- sync, filters, ephemeral -----------------------------------------------------------------


@get(V3 + "/sync")
async def sync(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    body = await sync_body(ctx, request.app.state.hub, request.query_params)
    return Response(content=body, media_type=JSON)


async def sync_body(ctx: MxCtx, hub: Any, q: Mapping[str, str]) -> bytes:
    """The encoded `/sync` answer for the query `q` (since, timeout, filter, full_state), after the long poll."""
    since = parse_stream_token(q["since"], "since") if q.get("since") else None
    timeout = _int_param(q, "timeout", 0, 0, MAX_SYNC_TIMEOUT_MS) or 0
    spec = q.get("filter")
    rt = runtime(ctx.kernel)
    if spec and rt.filters.get((ctx.user_id, spec)) is None and not spec.startswith("{"):
        sync_filter = await run(accounts.load_filter, ctx, spec)  # a stored filter: read once, then cached
    else:
        sync_filter = accounts.load_filter(ctx, spec)
    engine = rt.sync_engine(hub)
    answer = await engine.sync(SyncRequest(ctx, since, timeout, sync_filter, full_state=_bool_param(q, "full_state")))
    if dsp_view_is_ledgered(ctx.actor):
        # A security officer's client receiving ДСП messages is a view like any other: ledger it first.
        await run(note_sync_dsp_views, ctx, answer)
    return encode_sync(answer)


@post(V3 + "/user/{user_id:str}/filter")
async def create_filter(request: Request[Any, Any, Any], user_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    return ok({"filter_id": await run(accounts.do_create_filter, ctx, user_id, body)})


@get(V3 + "/user/{user_id:str}/filter/{filter_id:str}")
async def get_filter(request: Request[Any, Any, Any], user_id: str, filter_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(accounts.get_filter_definition, ctx, user_id, filter_id))


@post(V3 + "/rooms/{room_id:str}/receipt/{receipt_type:str}/{event_id:str}")
async def receipt(request: Request[Any, Any, Any], room_id: str, receipt_type: str, event_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request, allow_empty=True)
    await ephemeral.do_set_receipt(ctx, room_id, receipt_type, event_id, _string(body, "thread_id"))
    return ok({})


@post(V3 + "/rooms/{room_id:str}/read_markers")
async def read_markers(request: Request[Any, Any, Any], room_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request, allow_empty=True)
    await ephemeral.do_set_read_markers(
        ctx,
        room_id,
        fully_read=_string(body, "m.fully_read"),
        read=_string(body, "m.read"),
        read_private=_string(body, "m.read.private"),
    )
    return ok({})


@put(V3 + "/rooms/{room_id:str}/typing/{user_id:str}")
async def typing(request: Request[Any, Any, Any], room_id: str, user_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    is_typing = body.get("typing")
    timeout = body.get("timeout")
    if not isinstance(is_typing, bool):
        raise bad_json("'typing' must be a boolean")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
        raise bad_json("'timeout' must be an integer")
    await ephemeral.do_set_typing(ctx, room_id, user_id, is_typing, timeout)
    return ok({})


# --- profiles, directory, account data --------------------------------------------------------


@get(V3 + "/profile/{user_id:str}")
async def profile(request: Request[Any, Any, Any], user_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(accounts.get_profile, ctx, user_id))


@get(V3 + "/profile/{user_id:str}/displayname")
async def get_displayname(request: Request[Any, Any, Any], user_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    found = await run(accounts.get_profile, ctx, user_id)
    return ok({"displayname": found.get("displayname")})


@put(V3 + "/profile/{user_id:str}/displayname")
async def set_displayname(request: Request[Any, Any, Any], user_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    name = _string(body, "displayname", required=True)
    await accounts.do_set_displayname(ctx, user_id, name or "")
    return ok({})


async def _directory(request: Request[Any, Any, Any], body: dict[str, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    term = body.get("search_term")
    limit = body.get("limit", 10)
    if not isinstance(term, str):
        raise bad_json("'search_term' must be a string")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise bad_json("'limit' must be an integer")
    return ok(await run(accounts.search_directory, ctx, term, limit))


@post(V3 + "/user_directory/search")
async def directory_search(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _directory(request, await json_object(request))


@get(V3 + "/user_directory/search")
async def directory_search_get(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _directory(
        request,
        {
            "search_term": request.query_params.get("search_term", ""),
            "limit": _int_param(request.query_params, "limit", 10, 1, 50),
        },
    )


@put(V3 + "/user/{user_id:str}/account_data/{data_type:str}")
async def set_account_data(request: Request[Any, Any, Any], user_id: str, data_type: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    await ephemeral.do_set_account_data(ctx, user_id, None, data_type, body)
    return ok({})


@get(V3 + "/user/{user_id:str}/account_data/{data_type:str}")
async def account_data(request: Request[Any, Any, Any], user_id: str, data_type: str) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(ephemeral.get_account_data, ctx, user_id, None, data_type))


@put(V3 + "/user/{user_id:str}/rooms/{room_id:str}/account_data/{data_type:str}")
async def set_room_account_data(
    request: Request[Any, Any, Any], user_id: str, room_id: str, data_type: str
) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    await ephemeral.do_set_account_data(ctx, user_id, room_id, data_type, body)
    return ok({})


@get(V3 + "/user/{user_id:str}/rooms/{room_id:str}/account_data/{data_type:str}")
async def room_account_data(
    request: Request[Any, Any, Any], user_id: str, room_id: str, data_type: str
) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(ephemeral.get_account_data, ctx, user_id, room_id, data_type))


# --- end-to-end encryption --------------------------------------------------------------------


@post(V3 + "/keys/upload")
async def keys_upload(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    counts = await e2ee.do_upload_keys(ctx, await json_object(request))
    return ok({"one_time_key_counts": counts})


@post(V3 + "/keys/query")
async def keys_query(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await run(e2ee.query_keys, ctx, await json_object(request)))


@post(V3 + "/keys/claim")
async def keys_claim(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    return ok(await e2ee.do_claim_keys(ctx, await json_object(request)))


@get(V3 + "/keys/changes")
async def keys_changes(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    q = request.query_params
    if not q.get("from") or not q.get("to"):
        raise mx_error("M_MISSING_PARAM", "'from' and 'to' are required")
    return ok(await run(e2ee.key_changes, ctx, q["from"], q["to"]))


@put(V3 + "/sendToDevice/{event_type:str}/{txn_id:str}")
async def send_to_device(request: Request[Any, Any, Any], event_type: str, txn_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    await e2ee.do_send_to_device(ctx, event_type, txn_id, body.get("messages"))
    return ok({})


@post(V3 + "/search")
async def search_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    body = await json_object(request)
    return ok(await run(search.search, ctx, body, request.query_params.get("next_batch")))


# --- media ------------------------------------------------------------------------------------


async def _read_upload(request: Request[Any, Any, Any], limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise mx_error("M_TOO_LARGE", "the file is larger than this server accepts", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise mx_error("M_TOO_LARGE", "the file is larger than this server accepts", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _upload(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    data = await _read_upload(request, ctx.kernel.settings.matrix_media_max_bytes)
    uri = await run(
        media_service.do_upload_media,
        ctx,
        data,
        request.headers.get("content-type"),
        request.query_params.get("filename"),
    )
    return ok({"content_uri": uri})


@post(MEDIA_V3 + "/upload", request_max_body_size=None)
async def upload(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _upload(request)


async def _download(
    request: Request[Any, Any, Any], server: str, media_id: str, file_name: str | None
) -> Response[bytes]:
    ctx = await mctx(request)
    found = await run(media_service.get_media, ctx, server, media_id)
    return media_service.media_response(found, file_name)


@get([MEDIA_V1 + "/download/{server:str}/{media_id:str}", MEDIA_V3 + "/download/{server:str}/{media_id:str}"])
async def download(request: Request[Any, Any, Any], server: str, media_id: str) -> Response[bytes]:
    return await _download(request, server, media_id, None)


@get(
    [
        MEDIA_V1 + "/download/{server:str}/{media_id:str}/{file_name:str}",
        MEDIA_V3 + "/download/{server:str}/{media_id:str}/{file_name:str}",
    ]
)
async def download_named(
    request: Request[Any, Any, Any], server: str, media_id: str, file_name: str
) -> Response[bytes]:
    return await _download(request, server, media_id, file_name)


@get([MEDIA_V1 + "/thumbnail/{server:str}/{media_id:str}", MEDIA_V3 + "/thumbnail/{server:str}/{media_id:str}"])
async def thumbnail(request: Request[Any, Any, Any], server: str, media_id: str) -> Response[bytes]:
    ctx = await mctx(request)
    width = _int_param(request.query_params, "width", None, 1, 10_000)
    height = _int_param(request.query_params, "height", None, 1, 10_000)
    if width is None or height is None:
        raise mx_error("M_MISSING_PARAM", "'width' and 'height' are required")
    method = request.query_params.get("method") or "scale"
    if method not in ("scale", "crop"):
        raise invalid_param("'method' must be 'scale' or 'crop'")
    found = await run(media_service.get_thumbnail, ctx, server, media_id, width, height, method)
    return media_service.media_response(found, None)


@get([MEDIA_V1 + "/config", MEDIA_V3 + "/config"])
async def media_config(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx = await mctx(request)
    return ok({"m.upload.size": ctx.kernel.settings.matrix_media_max_bytes})


ROUTES = [
    versions,
    well_known,
    capabilities,
    login_flows,
    login,
    logout,
    logout_all,
    whoami,
    register,
    create_room,
    invite,
    join_room,
    join_by_id_or_alias,
    leave,
    kick,
    ban,
    unban,
    joined_rooms,
    members,
    joined_members,
    room_state,
    state_event_no_key,
    state_event,
    set_state_no_key,
    set_state,
    directory_room,
    send_event,
    redact,
    messages,
    get_event,
    event_context,
    sync,
    create_filter,
    get_filter,
    receipt,
    read_markers,
    typing,
    profile,
    get_displayname,
    set_displayname,
    directory_search,
    directory_search_get,
    set_account_data,
    account_data,
    set_room_account_data,
    room_account_data,
    keys_upload,
    keys_query,
    keys_claim,
    keys_changes,
    send_to_device,
    search_events,
    upload,
    download,
    download_named,
    thumbnail,
    media_config,
]


def router() -> Router:
    """The Matrix routes, with Matrix's error format for everything they raise."""
    tune_process()
    return Router(path="/", route_handlers=ROUTES, exception_handlers={Exception: matrix_error_response})


def is_matrix_path(path: str) -> bool:
    return path.startswith(PATH_PREFIXES)


async def shutdown(kernel: Kernel) -> None:
    """Stop this process's sync engine (wakes its waiters so their requests end)."""
    engine = runtime(kernel).sync
    if engine is not None:
        engine.close()
