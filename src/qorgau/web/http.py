"""Request plumbing shared by every transport: the kernel, the actor, the language, CSRF, cookies.

The actor is resolved once per request from the session cookie or a bearer token. State-changing
requests authenticated by cookie must carry the CSRF token (form field `_csrf` or header
`X-CSRF-Token`); bearer-token requests need none, since browsers never send those on their own.
"""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie

from qorgau.kernel import i18n
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.roles import Actor
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import constant_time_equals
from qorgau.kernel.errors import Problem

SESSION_COOKIE = "qorgau_session"
LANG_COOKIE = "qorgau_lang"
PRE_COOKIE = "qorgau_pre"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNSET = object()


def kernel_of(request: Request[Any, Any, Any]) -> Kernel:
    return request.app.state.kernel  # type: ignore[no-any-return]


def request_actor(request: Request[Any, Any, Any]) -> Actor | None:
    """The signed-in actor (session cookie or `Authorization: Bearer`), cached on the request."""
    found = request.scope.get("qorgau_actor", _UNSET)
    if found is not _UNSET:
        return found  # type: ignore[return-value]
    kernel = kernel_of(request)
    actor: Actor | None = None
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        actor = auth.resolve_api_token(kernel, header[7:].strip())
        if actor is None:
            raise Problem("auth.token_invalid")
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            actor = auth.resolve_session(kernel, token)
    request.scope["qorgau_actor"] = actor  # type: ignore[typeddict-unknown-key]
    return actor


def request_lang(request: Request[Any, Any, Any]) -> str:
    """The user's saved choice, then the language cookie, then Accept-Language, then the default."""
    found = request.scope.get("qorgau_lang")
    if found:
        return found  # type: ignore[return-value]
    lang = None
    try:
        actor = request_actor(request)
    except Problem:
        actor = None
    if actor is not None and actor.locale in i18n.LANGUAGES:
        lang = actor.locale
    if lang is None:
        cookie = request.cookies.get(LANG_COOKIE)
        if cookie in i18n.LANGUAGES:
            lang = cookie
    if lang is None:
        lang = i18n.negotiate(request.headers.get("accept-language"), kernel_of(request).settings.default_language)
    request.scope["qorgau_lang"] = lang  # type: ignore[typeddict-unknown-key]
    return lang


def ctx_of(request: Request[Any, Any, Any]) -> Ctx:
    return Ctx(
        kernel=kernel_of(request),
        actor=request_actor(request),
        lang=request_lang(request),
        request_id=request.scope.get("qorgau_request_id", ""),  # type: ignore[arg-type]
    )


def _csrf_binding(request: Request[Any, Any, Any], *, create: bool) -> str | None:
    actor = request_actor(request)
    if actor is not None and actor.session_id:
        return "s:" + actor.session_id
    pre = request.cookies.get(PRE_COOKIE) or request.scope.get("qorgau_new_pre")
    if not pre and create:
        pre = secrets.token_urlsafe(24)
        request.scope["qorgau_new_pre"] = pre  # type: ignore[typeddict-unknown-key]
    return "p:" + pre if pre else None


def csrf_for(request: Request[Any, Any, Any]) -> str:
    """The CSRF token for forms on this page (creating a pre-session cookie if needed)."""
    binding = _csrf_binding(request, create=True)
    return auth.csrf_token(kernel_of(request).settings.secret_bytes, binding or "")


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    """Reject a cookie-authenticated or form state change without a valid CSRF token."""
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("authorization", "")[:7].lower() == "bearer ":
        return
    path = request.url.path
    if path.startswith("/_matrix/"):
        return
    binding = _csrf_binding(request, create=False)
    has_cookie_identity = bool(request.cookies.get(SESSION_COOKIE)) or binding is not None
    if not has_cookie_identity and path.startswith(("/api/", "/open311/")):
        # No cookie at all: a plain API client acting anonymously; nothing for an attacker to ride on.
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("_csrf")
        sent = value if isinstance(value, str) else None
    expected = auth.csrf_token(kernel_of(request).settings.secret_bytes, binding or "")
    if not binding or not sent or not constant_time_equals(sent, expected):
        raise Problem("auth.csrf")


def cookie_secure(request: Request[Any, Any, Any]) -> bool:
    configured = kernel_of(request).settings.cookie_secure
    if configured is not None:
        return configured
    return request.url.scheme == "https"


def session_cookie(request: Request[Any, Any, Any], token: str | None) -> Cookie:
    kernel = kernel_of(request)
    return Cookie(
        key=SESSION_COOKIE,
        value=token or "",
        max_age=kernel.settings.session_ttl_minutes * 60 if token else 0,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
    )


def after_request_cookies(request: Request[Any, Any, Any], response: Response[Any]) -> None:
    pre = request.scope.get("qorgau_new_pre")
    if pre:
        response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="lax", secure=cookie_secure(request), path="/")
