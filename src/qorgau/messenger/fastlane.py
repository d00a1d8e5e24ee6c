"""The Matrix hot paths — `GET /sync` and `PUT /rooms/{id}/send/…` — served without the framework's layers.

A chatting client spends nearly all its requests on these two routes: at ten readers per room each
message costs one send and up to ten `/sync` answers. Through Litestar every one of them pays routing,
the middleware chain, signature parsing and a Response object (about half the event loop's time per
exchange, measured with py-spy in bench/matrix_sync.py). Here they are parsed straight from the ASGI
scope and answered by the same functions the framework routes call (`matrix.session_for`,
`matrix.sync_body`, `events.do_send_event`), with the same errors, request id, metrics and request log
line. Every other request, and anything unusual about these two (an encoded slash in a path segment,
an unknown method), goes on to the framework unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from qorgau.kernel.observability import Metrics, log, log_request, new_request_id
from qorgau.messenger import matrix
from qorgau.messenger.domain import mx_error
from qorgau.messenger.services import accounts
from qorgau.messenger.services import events as events_service

SYNC_PATH = matrix.V3 + "/sync"
SYNC_ROUTE = matrix.V3 + "/sync"
SEND_ROUTE = matrix.V3 + "/rooms/{room_id:str}/send/{event_type:str}/{txn_id:str}"
_ROOMS_PREFIX = matrix.V3 + "/rooms/"
# Events are at most 64 KiB in Matrix; the app-wide body limit still applies to be safe with clients.
MAX_BODY = 10 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def match(scope: Scope) -> tuple[str, tuple[str, ...]] | None:
    """(route template, path parameters) when the request is one of the hot paths, else None."""
    path: str = scope["path"]
    method: str = scope["method"]
    if method == "GET" and path == SYNC_PATH:
        return SYNC_ROUTE, ()
    if method == "PUT" and path.startswith(_ROOMS_PREFIX):
        parts = path[len(_ROOMS_PREFIX) :].split("/")
        if len(parts) == 4 and parts[1] == "send" and all(parts):
            return SEND_ROUTE, (parts[0], parts[2], parts[3])
    return None


# A long-polling client repeats the same long filter on every /sync; only `since` changes. Decoded pieces
# are kept (bounded) so each is percent-decoded once; access tokens are never kept.
_PIECES: dict[str, list[tuple[str, str]]] = {}
_PIECES_MAX = 4096
_PIECE_MIN_LENGTH = 24


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return {}
    query: dict[str, str] = {}
    for piece in raw.decode("latin-1").split("&"):
        if not piece:
            continue
        pairs = _PIECES.get(piece)
        if pairs is None:
            pairs = parse_qsl(piece, keep_blank_values=True, encoding="utf-8")
            if len(piece) >= _PIECE_MIN_LENGTH and not piece.startswith("access_token="):
                if len(_PIECES) >= _PIECES_MAX:
                    _PIECES.clear()
                _PIECES[piece] = pairs
        for key, value in pairs:
            query.setdefault(key, value)  # the first value wins, as with the framework's query_params.get
    return query


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise mx_error("M_TOO_LARGE", "The request is too large", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, request_id: str, headers: dict[str, str]) -> None:
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class MatrixFastLane:
    """Serves the two hot Matrix routes for an app whose state holds the kernel and the hub."""

    def __init__(self, state: Any, metrics: Metrics) -> None:
        self._state = state
        self._metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Serve `scope` if it is one of the hot paths; False (nothing sent) when the framework must."""
        found = match(scope)
        if found is None:
            return False
        await self.serve(scope, receive, send, *found)
        return True

    async def serve(self, scope: Scope, receive: Receive, send: Send, route: str, params: tuple[str, ...]) -> None:
        """Answer one hot-path request completely (errors in Matrix's shape, like the framework's handler)."""
        request_id = new_request_id()
        started = time.perf_counter()
        status = 200
        headers: dict[str, str] = {}
        try:
            body = await (self._send_event(scope, receive, params) if params else self._sync(scope))
        except Exception as exc:
            status, error, headers = matrix.matrix_error(exc)
            if status >= 500:
                # The type and route only: messages and locals can carry personal data.
                log.error("matrix_unhandled", error=type(exc).__name__, route=route)
            body = msgspec.json.encode(error)
        try:
            await _respond(send, status, body, request_id, headers)
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.observe(scope["method"], route, status, elapsed)
            log_request(request_id, scope["method"], route, status, elapsed)

    async def _ctx(self, scope: Scope, query: dict[str, str]) -> Any:
        kernel = self._state.kernel
        found = await matrix.session_for(kernel, matrix.access_token(_authorization(scope), query))
        return accounts.session_ctx(kernel, found)

    async def _sync(self, scope: Scope) -> bytes:
        query = _query(scope)
        ctx = await self._ctx(scope, query)
        return await matrix.sync_body(ctx, self._state.hub, query)

    async def _send_event(self, scope: Scope, receive: Receive, params: tuple[str, ...]) -> bytes:
        ctx = await self._ctx(scope, _query(scope))
        content = matrix.decode_object(await _body(receive))
        room_id, event_type, txn_id = params
        event_id = await events_service.do_send_event(ctx, room_id, event_type, content, txn_id)
        return msgspec.json.encode({"event_id": event_id})
