"""The web shell: sign-in, citizen sign-up, language switch, per-role home, account and API tokens."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from qorgau.kernel import i18n
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.roles import Role
from qorgau.kernel.errors import Problem
from qorgau.web.home import sections_for, service_sections
from qorgau.web.http import LANG_COOKIE, ctx_of, kernel_of, request_actor, session_cookie
from qorgau.web.render import render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _safe_next(target: str | None) -> str:
    """Only same-site paths may be a post-sign-in destination (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@get("/", sync_to_thread=True)
def home(request: Request[Any, Any, Any]) -> Response[str]:
    actor = request_actor(request)
    if actor is None:
        return render(request, "landing.html", services=service_sections())
    return render(request, "home.html", sections=sections_for(actor))


@get("/login", sync_to_thread=False)
def login_page(request: Request[Any, Any, Any], next: str | None = None) -> Response[str]:
    return render(request, "login.html", next=_safe_next(next), error=None, login="")


@post("/login", sync_to_thread=True)
def login_submit(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    kernel = kernel_of(request)
    login = (data.get("login") or "").strip()
    password = data.get("password") or ""
    target = _safe_next(data.get("next"))
    throttle = request.app.state.client_throttle
    client_key = kernel.hasher.hash("client", request.client.host if request.client else "-")
    wait = throttle.retry_after(client_key)
    if wait:
        problem = Problem("auth.locked", headers={"Retry-After": str(wait)})
        page = render(request, "login.html", status_code=429, next=target, error=problem, login=login)
        page.headers.update(problem.headers)
        return page
    try:
        signed_in = auth.do_sign_in(kernel, login, password)
    except Problem as problem:
        if problem.code == "auth.invalid_credentials":
            throttle.failure(client_key)
        page = render(request, "login.html", status_code=problem.status or 400, next=target, error=problem, login=login)
        page.headers.update(problem.headers)
        return page
    throttle.success(client_key)
    response = Redirect(path=target)
    response.set_cookie(session_cookie(request, signed_in.session_token))
    lang = request.cookies.get(LANG_COOKIE)
    if lang in i18n.LANGUAGES and signed_in.actor.locale is None:
        auth.do_set_locale(kernel, signed_in.actor, lang)
    return response


@post("/logout", sync_to_thread=True)
def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    token = request.cookies.get("qorgau_session")
    if token:
        auth.do_sign_out(kernel_of(request), token)
    response = Redirect(path="/")
    response.set_cookie(session_cookie(request, None))
    return response


@get("/signup", sync_to_thread=False)
def signup_page(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "signup.html", error=None, values={})


@post("/signup", sync_to_thread=True)
def signup_submit(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    kernel = kernel_of(request)
    values = {k: (data.get(k) or "").strip() for k in ("iin", "phone", "display_name")}
    password = data.get("password") or ""
    if password != (data.get("password_confirm") or ""):
        problem = Problem("validation.field", field="password_confirm", detail="passwords differ")
        return render(request, "signup.html", status_code=400, error=problem, values=values)
    try:
        auth.do_sign_up_citizen(
            kernel,
            iin=values["iin"],
            phone=values["phone"],
            password=password,
            display_name=values["display_name"],
        )
        signed_in = auth.do_sign_in(kernel, values["iin"], password)
    except Problem as problem:
        return render(request, "signup.html", status_code=problem.status or 400, error=problem, values=values)
    response = Redirect(path="/")
    response.set_cookie(session_cookie(request, signed_in.session_token))
    return response


@post("/lang", sync_to_thread=True)
def switch_language(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    lang = data.get("lang", "")
    if lang not in i18n.LANGUAGES:
        raise Problem("validation.field", field="lang")
    actor = request_actor(request)
    if actor is not None:
        auth.do_set_locale(kernel_of(request), actor, lang)
    response = Redirect(path=_safe_next(data.get("next")))
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax", path="/")
    return response


@get("/account", sync_to_thread=True)
def account_page(request: Request[Any, Any, Any]) -> Response[str]:
    ctx = ctx_of(request)
    tokens = auth.list_api_tokens(ctx)
    identity = auth.citizen_identity(ctx.kernel, ctx.actor) if ctx.actor and ctx.actor.role == Role.CITIZEN else None
    return render(request, "account.html", tokens=tokens, new_token=None, identity=identity)


@post("/account/tokens", sync_to_thread=True)
def account_create_token(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    ctx = ctx_of(request)
    scopes = (data.get("scopes") or "*").replace(",", " ").split()
    _token_id, token = auth.do_create_api_token(ctx, name=data.get("name") or "", scopes=scopes)
    return render(request, "account.html", tokens=auth.list_api_tokens(ctx), new_token=token, identity=None)


@post("/account/tokens/{token_id:str}/revoke", sync_to_thread=True)
def account_revoke_token(request: Request[Any, Any, Any], token_id: str) -> Response[Any]:
    auth.do_revoke_api_token(ctx_of(request), token_id)
    return Redirect(path="/account")


@get("/admin/users", sync_to_thread=True)
def users_page(request: Request[Any, Any, Any]) -> Response[str]:
    from qorgau.web.invites import users_page_response

    return users_page_response(request)


ROUTES = [
    home,
    login_page,
    login_submit,
    logout,
    signup_page,
    signup_submit,
    switch_language,
    account_page,
    account_create_token,
    account_revoke_token,
    users_page,
]
