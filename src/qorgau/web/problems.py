"""Turning any exception into problem+json (API) or a friendly translated page (HTML)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from qorgau.kernel.errors import Problem
from qorgau.kernel.observability import log

JSON_PREFIXES = ("/api/", "/_matrix/", "/.well-known/", "/healthz", "/readyz", "/metrics", "/open311/")


def to_problem(exc: Exception) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ValidationException):
        extra = exc.extra if isinstance(exc.extra, list) else []
        first = extra[0] if extra and isinstance(extra[0], dict) else {}
        field_name = first.get("key")
        source = first.get("source")
        code = "validation.parameter" if source in ("query", "path", "header", "cookie") else "validation.field"
        if not field_name and "body" in str(exc.detail).lower():
            code = "validation.body"
        return Problem(code, field=field_name, detail=first.get("message") or None, status=400)
    if isinstance(exc, NotFoundException):
        return Problem("http.not_found", status=404)
    if isinstance(exc, MethodNotAllowedException):
        return Problem("http.method_not_allowed", status=405)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        code = {
            413: "http.too_large",
            415: "http.unsupported_media_type",
            401: "auth.required",
            403: "auth.forbidden",
        }
        if status >= 500:
            return Problem("internal", status=status)
        return Problem(code.get(status, "http.error"), status=status)
    return Problem("internal", status=500)


def wants_html(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    if path.startswith(JSON_PREFIXES):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "*/*" in accept or not accept


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The one exception handler: stable code, translated title, never a stack trace."""
    from qorgau.web.http import request_lang
    from qorgau.web.render import render

    problem = to_problem(exc)
    if problem.code == "internal":
        # Only the exception type and route: messages and locals can carry personal data.
        log.error("unhandled", error=type(exc).__name__, route=request.scope.get("path_template"), exc_info=False)
    try:
        lang = request_lang(request)
    except Exception:
        lang = "kk"
    status = problem.status or 500
    if wants_html(request):
        try:
            if problem.code == "auth.required":
                from litestar.response import Redirect

                return Redirect(path=f"/login?next={request.url.path}")
            return render(request, "error.html", status_code=status, problem=problem, title=problem.title(lang))
        except Exception as render_exc:  # never fail while reporting a failure
            log.error("error_page_failed", error=type(render_exc).__name__)
    return Response(
        content=problem.to_dict(lang, instance=request.url.path),
        status_code=status,
        media_type="application/problem+json",
        headers=problem.headers,
    )
