"""A do-nothing Matrix homeserver in memory: what the machine allows bench/matrix_sync.py, no server at all.

It answers exactly the requests bench/matrix_sync.py makes (register with m.login.dummy, createRoom,
join, /sync with since/timeout, send) from a list in memory: no database, no encryption, no access
checks, no logs. It runs on the same HTTP server as Qorgau (uvicorn with httptools; uvloop when
installed), so the difference between its figures and Qorgau's is what Qorgau's own work costs, and
its figures are the ceiling of this machine on this day. Each waiting /sync is answered as soon as a
message arrives, or after gathering for ``--gather-ms`` (the coalescing the issue describes)::

    .venv/bin/python bench/null_homeserver.py --port 8009 &
    .venv/bin/python bench/matrix_sync.py --url http://127.0.0.1:8009 --server-pid $! --runs 3
    .venv/bin/python bench/null_homeserver.py --port 8009 --gather-ms 5 &   # replies gather for 5 ms
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import secrets
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec

V3 = "/_matrix/client/v3"
_encode = msgspec.json.encode


class NullHomeserver:
    """One process, everything in memory; enough of the client-server API for the benchmark."""

    def __init__(self, gather_seconds: float) -> None:
        self.gather = gather_seconds
        self.events: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}
        self.rooms: set[str] = set()
        self.waiters: list[asyncio.Future[None]] = []
        self.wake_pending = False
        self.ids = itertools.count(1)

    def _wake(self) -> None:
        self.wake_pending = False
        waiters, self.waiters = self.waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def _notify(self) -> None:
        if self.gather <= 0:
            self._wake()
        elif not self.wake_pending:
            self.wake_pending = True
            asyncio.get_running_loop().call_later(self.gather, self._wake)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, answer = await self.route(scope, body)
        payload = _encode(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _user(self, scope: dict[str, Any]) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return self.tokens.get(value.decode()[7:])
        return None

    async def route(self, scope: dict[str, Any], body: bytes) -> tuple[int, Any]:
        path, method = scope["path"], scope["method"]
        if path == "/_matrix/client/versions":
            return 200, {"versions": ["v1.11"]}
        if path == V3 + "/register" and method == "POST":
            username = msgspec.json.decode(body).get("username") or f"u{next(self.ids)}"
            token = secrets.token_urlsafe(24)
            user_id = f"@{username}:null"
            self.tokens[token] = user_id
            return 200, {"access_token": token, "user_id": user_id, "device_id": "NULL"}
        user = self._user(scope)
        if user is None:
            return 401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown token"}
        if path == V3 + "/createRoom":
            room_id = f"!r{next(self.ids)}:null"
            self.rooms.add(room_id)
            return 200, {"room_id": room_id}
        if path.startswith(V3 + "/join/"):
            return 200, {"room_id": path.rsplit("/", 1)[1]}
        if path == V3 + "/sync":
            return 200, await self.sync(parse_qs(scope["query_string"].decode()))
        if "/send/" in path and method == "PUT":
            parts = path.split("/")
            room_id = parts[5]
            event_id = f"$e{next(self.ids)}"
            event = {
                "event_id": event_id,
                "type": parts[7],
                "sender": user,
                "content": msgspec.json.decode(body),
                "origin_server_ts": int(time.time() * 1000),
                "room_id": room_id,
            }
            self.events.append(event)
            self._notify()
            return 200, {"event_id": event_id}
        return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}

    async def sync(self, query: dict[str, list[str]]) -> dict[str, Any]:
        since = int(query["since"][0]) if "since" in query else None
        timeout = int(query.get("timeout", ["0"])[0]) / 1000
        if since is None:
            return {"next_batch": str(len(self.events)), "rooms": {"join": {}}}
        if since >= len(self.events) and timeout > 0:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiters.append(future)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, timeout)
        new = self.events[since:]
        joined: dict[str, Any] = {}
        for event in new:
            room = joined.setdefault(event["room_id"], {"timeline": {"events": [], "limited": False}})
            room["timeline"]["events"].append({k: v for k, v in event.items() if k != "room_id"})
        return {"next_batch": str(len(self.events)), "rooms": {"join": joined}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8009)
    parser.add_argument("--gather-ms", type=float, default=0.0, help="let /sync replies gather for this long")
    args = parser.parse_args()
    # bench/http.py would shadow the standard library's http module, which uvicorn imports.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    import uvicorn

    print(f"null homeserver at http://{args.host}:{args.port} (gather {args.gather_ms} ms)", flush=True)
    uvicorn.run(
        NullHomeserver(args.gather_ms / 1000),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        http="httptools",
    )


if __name__ == "__main__":
    main()
