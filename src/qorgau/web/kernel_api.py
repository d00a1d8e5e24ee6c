"""JSON API of the kernel: who am I, API tokens, accounts, the event stream, health and metrics."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import Parameter

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import require
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import latest_stream_id, read_events
from qorgau.web.http import ctx_of, kernel_of

MAX_ID = 2**63 - 1


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["*"])


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    # Without a password the account is invited: the answer carries its one-time link.
    password: str | None = None
    role: str = "official"
    display_name: str | None = None
    agency: str | None = None


@get("/api/v1/me", sync_to_thread=True)
def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    ctx = ctx_of(request)
    actor = require(ctx.actor, "home.view")
    return {
        "id": actor.user_id,
        "username": actor.username,
        "display_name": actor.display_name,
        "role": actor.role.value,
        "agency_id": actor.agency_id,
        "via": actor.via,
    }


@get("/api/v1/auth/tokens", sync_to_thread=True)
def list_tokens(request: Request[Any, Any, Any]) -> dict[str, Any]:
    tokens = auth.list_api_tokens(ctx_of(request))
    return {"tokens": [dataclasses.asdict(t) for t in tokens]}


@post("/api/v1/auth/tokens", sync_to_thread=True, status_code=201)
def create_token(request: Request[Any, Any, Any], data: TokenIn) -> dict[str, Any]:
    token_id, token = auth.do_create_api_token(ctx_of(request), name=data.name, scopes=data.scopes)
    return {"id": token_id, "token": token, "scopes": sorted(set(data.scopes))}


@delete("/api/v1/auth/tokens/{token_id:str}", sync_to_thread=True, status_code=204)
def revoke_token(request: Request[Any, Any, Any], token_id: str) -> None:
    auth.do_revoke_api_token(ctx_of(request), token_id)


@get("/api/v1/users", sync_to_thread=True)
def users(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"users": [dataclasses.asdict(u) | {"role": u.role.value} for u in auth.list_users(ctx_of(request))]}


@post("/api/v1/users", sync_to_thread=True, status_code=201)
def create_user(request: Request[Any, Any, Any], data: UserIn) -> dict[str, Any]:
    ctx = ctx_of(request)
    if ctx.actor is None:
        raise Problem("auth.required")
    if data.password is None:
        from qorgau.kernel.auth.invites import do_invite_user
        from qorgau.web.invites import invite_json

        issued = do_invite_user(
            ctx, ctx.kernel, username=data.username, role=data.role, display_name=data.display_name, agency=data.agency
        )
        return {
            "id": issued.user_id,
            "username": data.username.strip().lower(),
            "role": data.role,
            "invite": invite_json(request, issued),
        }
    user_id = auth.do_create_user(
        ctx,
        ctx.kernel,
        username=data.username,
        password=data.password,
        role=data.role,
        display_name=data.display_name,
        agency=data.agency,
    )
    return {"id": user_id, "username": data.username.strip().lower(), "role": data.role}


@get("/api/v1/admin/events")
async def events(
    request: Request[Any, Any, Any],
    after: int = Parameter(default=0, ge=0, le=MAX_ID),
    timeout: float = Parameter(default=0.0, ge=0.0, le=60.0),
    limit: int = Parameter(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """The outbox after a stream id; with `timeout` it long-polls until something newer is committed."""
    ctx = ctx_of(request)
    require(ctx.actor, "events.read")
    kernel = ctx.kernel
    hub = request.app.state.hub
    if timeout > 0:
        await hub.wait(after, timeout)

    def read() -> list[Any]:
        with kernel.db.read() as conn:
            return read_events(conn, after, limit=limit)

    found = await asyncio.to_thread(read)
    return {
        "events": [{"stream_id": e.stream_id, "topic": e.topic, "created_at": e.created_at} for e in found],
        "next": found[-1].stream_id if found else after,
    }


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    kernel = kernel_of(request)
    db_ok = await asyncio.to_thread(kernel.db.ping)
    bus = request.app.state.bus
    bus_ok = await asyncio.to_thread(bus.ping)
    ok = db_ok and bus_ok
    return Response(
        {"status": "ok" if ok else "unavailable", "database": db_ok, "bus": bus_ok},
        status_code=200 if ok else 503,
    )


@get("/metrics", sync_to_thread=True, media_type="text/plain; version=0.0.4")
def metrics(request: Request[Any, Any, Any]) -> str:
    kernel = kernel_of(request)
    with kernel.db.read() as conn:
        latest = latest_stream_id(conn)
    gauges: dict[str, float] = {
        "qorgau_ledger_size": kernel.ledger.size(),
        "qorgau_events_latest_stream_id": latest,
        "qorgau_bus_lag": max(0, latest - request.app.state.hub.latest),
        "qorgau_group_commit_batches_total": kernel.writer.batches,
        "qorgau_group_commit_jobs_total": kernel.writer.jobs,
    }
    return request.app.state.metrics.render(gauges)


ROUTES = [me, list_tokens, create_token, revoke_token, users, create_user, events, healthz, readyz, metrics]
