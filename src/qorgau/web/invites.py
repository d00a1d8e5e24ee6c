"""Invitation links over HTTP: the admin's side (/admin/users, /api/v1/users/{id}/invite) and the
invited person's set-password page (/invite/<token>).

The token sits in the path only on the two /invite routes; their responses are `no-store` and send
no Referer, and request logs carry the path template, never the raw path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.response import Redirect

from qorgau.kernel.auth import invites
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import can
from qorgau.kernel.auth.roles import AGENCY_ROLES, Role
from qorgau.kernel.errors import Problem
from qorgau.web.http import ctx_of, kernel_of, session_cookie
from qorgau.web.pages import Form
from qorgau.web.render import render

PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
# Roles in the order the invitation form offers them (the policy still decides who may pick which).
INVITE_ROLES = [
    Role.OFFICIAL,
    Role.AGENCY_ADMIN,
    Role.POLICE_OFFICER,
    Role.REGULATOR_INSPECTOR,
    Role.SECURITY_OFFICER,
]


def _base_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def _private(response: Response[Any]) -> Response[Any]:
    response.headers.update(PRIVATE_HEADERS)
    return response


# --- the admin's side -------------------------------------------------------------------------


def users_page_response(
    request: Request[Any, Any, Any],
    *,
    new_invite: dict[str, Any] | None = None,
    error: Problem | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response[str]:
    """/admin/users: the agency's accounts, their invitation state, and the invitation form."""
    ctx = ctx_of(request)
    users = auth.list_users(ctx)
    agencies = {a.id: a for a in auth.list_agencies(ctx.kernel)}
    actor = ctx.actor
    assert actor is not None
    own = None if actor.role == Role.PLATFORM_ADMIN else actor.agency_id
    statuses = invites.invite_statuses(ctx.kernel, agency_id=own, agency_accounts=True)
    if actor.role == Role.PLATFORM_ADMIN:
        roles = INVITE_ROLES
        agency_choices = list(agencies.values())
    else:
        roles = [Role.OFFICIAL]
        agency_choices = [agencies[actor.agency_id]] if actor.agency_id in agencies else []
    invitable = {
        u.id
        for u in users
        if statuses.get(u.id) is not None
        and statuses[u.id].state != invites.InviteState.JOINED
        and u.role in AGENCY_ROLES
        and not u.disabled
        and can(actor, "users.invite", {"role": u.role, "agency_id": u.agency_id})
    }
    response = render(
        request,
        "users.html",
        invitable=invitable,
        status_code=status_code,
        users=users,
        agencies=agencies,
        statuses=statuses,
        invite_roles=roles,
        agency_choices=agency_choices,
        new_invite=new_invite,
        error=error,
        values=values or {},
    )
    return _private(response) if new_invite else response


def _shown_once(request: Request[Any, Any, Any], issued: invites.IssuedInvite, username: str) -> dict[str, Any]:
    return {"url": issued.url(_base_url(request)), "username": username, "expires_at": issued.expires_at}


@post("/admin/users/invite", sync_to_thread=True)
def invite_new_user(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    ctx = ctx_of(request)
    if ctx.actor is None:
        raise Problem("auth.required")
    values = {k: (data.get(k) or "").strip() for k in ("username", "display_name", "role", "agency")}
    if ctx.actor.role != Role.PLATFORM_ADMIN:
        values["agency"] = ctx.actor.agency_id or ""
    try:
        issued = invites.do_invite_user(
            ctx,
            ctx.kernel,
            username=values["username"],
            role=values["role"] or Role.OFFICIAL.value,
            display_name=values["display_name"] or None,
            agency=values["agency"] or None,
        )
    except Problem as problem:
        if problem.code in ("auth.required", "auth.forbidden"):
            raise
        return users_page_response(request, error=problem, values=values, status_code=problem.status or 400)
    shown = _shown_once(request, issued, values["username"].lower())
    return users_page_response(request, new_invite=shown, status_code=201)


@post("/admin/users/{user_id:str}/invite", sync_to_thread=True)
def reissue_invite(request: Request[Any, Any, Any], user_id: str) -> Response[str]:
    ctx = ctx_of(request)
    if ctx.actor is None:
        raise Problem("auth.required")
    try:
        issued = invites.do_issue_invite(ctx, ctx.kernel, user_id)
    except Problem as problem:
        if problem.code in ("auth.required", "auth.forbidden", "http.not_found"):
            raise
        return users_page_response(request, error=problem, status_code=problem.status or 400)
    username = next((u.username for u in auth.list_users(ctx) if u.id == user_id), "")
    return users_page_response(request, new_invite=_shown_once(request, issued, username))


# --- the API ----------------------------------------------------------------------------------


def _status_json(status: invites.InviteStatus) -> dict[str, Any]:
    return {
        "user_id": status.user_id,
        "state": status.state.value,
        "invited_at": status.invited_at,
        "expires_at": status.expires_at,
    }


@get("/api/v1/users/{user_id:str}/invite")
async def api_invite_status(request: Request[Any, Any, Any], user_id: str) -> dict[str, Any]:
    # Async with an explicit thread: Litestar 2 mishandles several sync_to_thread handlers on one path.
    status = await asyncio.to_thread(lambda: invites.invite_status(ctx_of(request), user_id))
    return _status_json(status)


@post("/api/v1/users/{user_id:str}/invite", status_code=201)
async def api_issue_invite(request: Request[Any, Any, Any], user_id: str) -> Response[dict[str, Any]]:
    def issue() -> invites.IssuedInvite:
        ctx = ctx_of(request)
        if ctx.actor is None:
            raise Problem("auth.required")
        return invites.do_issue_invite(ctx, ctx.kernel, user_id)

    issued = await asyncio.to_thread(issue)
    body = {"user_id": user_id, "url": issued.url(_base_url(request)), "expires_at": issued.expires_at}
    return Response(body, status_code=201, headers=PRIVATE_HEADERS)


@delete("/api/v1/users/{user_id:str}/invite", status_code=204)
async def api_withdraw_invite(request: Request[Any, Any, Any], user_id: str) -> None:
    def withdraw() -> None:
        ctx = ctx_of(request)
        if ctx.actor is None:
            raise Problem("auth.required")
        invites.do_withdraw_invite(ctx, user_id)

    await asyncio.to_thread(withdraw)


def invite_json(request: Request[Any, Any, Any], issued: invites.IssuedInvite) -> dict[str, Any]:
    """The once-shown link in an API answer (also used by POST /api/v1/users without a password)."""
    return {"url": issued.url(_base_url(request)), "expires_at": issued.expires_at}


# --- the invited person's side ----------------------------------------------------------------


def _throttle_key(request: Request[Any, Any, Any]) -> str:
    return kernel_of(request).hasher.hash("client", request.client.host if request.client else "-")


def _invite_page(
    request: Request[Any, Any, Any], token: str, *, error: Problem | None = None, status_code: int = 200
) -> Response[Any]:
    """The set-password form, or the page that says why this link cannot be used."""
    kernel = kernel_of(request)
    throttle = request.app.state.client_throttle
    key = _throttle_key(request)
    wait = throttle.retry_after(key)
    if wait:
        problem = Problem("auth.locked", headers={"Retry-After": str(wait)})
        page = render(request, "invite_invalid.html", status_code=429, problem=problem)
        page.headers.update(problem.headers)
        return _private(page)
    try:
        invite = invites.open_invite(kernel, token)
    except Problem as problem:
        if problem.code == "auth.invite_unknown":
            # Wrong tokens count like wrong passwords: guessing links is throttled per client.
            throttle.failure(key)
        return _private(render(request, "invite_invalid.html", status_code=problem.status or 400, problem=problem))
    agency = auth.get_agency(kernel, invite.agency_id) if invite.agency_id else None
    page = render(
        request,
        "invite_accept.html",
        status_code=status_code,
        invite=invite,
        agency=agency,
        token=token,
        error=error,
        min_length=auth.MIN_PASSWORD_LENGTH,
    )
    return _private(page)


@get("/invite/{token:str}")
async def invite_page(request: Request[Any, Any, Any], token: str) -> Response[Any]:
    # Async with an explicit thread: Litestar 2 mishandles two sync_to_thread handlers on one path.
    return await asyncio.to_thread(_invite_page, request, token)


@post("/invite/{token:str}", sync_to_thread=True)
def invite_accept(request: Request[Any, Any, Any], token: str, data: Form) -> Response[Any]:
    kernel = kernel_of(request)
    password = data.get("password") or ""
    if password != (data.get("password_confirm") or ""):
        problem = Problem("auth.password_mismatch", field="password_confirm")
        return _invite_page(request, token, error=problem, status_code=400)
    if request.app.state.client_throttle.retry_after(_throttle_key(request)):
        return _invite_page(request, token)
    try:
        signed_in = invites.do_accept_invite(kernel, token, password)
    except Problem as problem:
        if problem.code == "auth.weak_password":
            return _invite_page(request, token, error=problem, status_code=400)
        return _invite_page(request, token)
    request.app.state.client_throttle.success(_throttle_key(request))
    target = "/messenger" if signed_in.actor.role in AGENCY_ROLES else "/"
    response = Redirect(path=target)
    response.set_cookie(session_cookie(request, signed_in.session_token))
    response.headers.update(PRIVATE_HEADERS)
    return response


ROUTES = [
    invite_new_user,
    reissue_invite,
    api_invite_status,
    api_issue_invite,
    api_withdraw_invite,
    invite_page,
    invite_accept,
]
