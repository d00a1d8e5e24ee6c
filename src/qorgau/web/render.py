"""HTML rendering: one Jinja2 environment, the request's language and actor in every template."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from litestar import Request, Response

from qorgau.kernel import i18n
from qorgau.kernel.auth.roles import AGENCY_KIND_LABELS, ROLE_LABELS, Role

TEMPLATE_DIRS = [Path(__file__).parent / "templates"]


def add_template_dir(path: Path) -> None:
    """Services add their templates/ folder; names must be prefixed by the service (reports/...)."""
    if path not in TEMPLATE_DIRS:
        TEMPLATE_DIRS.append(path)
        environment.cache_clear()


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in TEMPLATE_DIRS]),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["languages"] = list(i18n.all_languages())
    return env


def page_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    from qorgau.web.http import csrf_for, request_actor, request_lang

    lang = request_lang(request)
    actor = request_actor(request)

    def _(message: str, **params: object) -> str:
        return i18n.gettext(lang, message, **params)

    def role_label(role: str | Role) -> str:
        return i18n.gettext(lang, ROLE_LABELS[Role(role)])

    def kind_label(kind: Any) -> str:
        return i18n.gettext(lang, AGENCY_KIND_LABELS[kind])

    return {
        "_": _,
        "lang": lang,
        "actor": actor,
        "role_label": role_label,
        "kind_label": kind_label,
        "csrf_token": csrf_for(request),
        "format_ms": lambda ms: i18n.format_ms(lang, ms),
        "path": request.url.path,
        "query_string": request.url.query,
    }


def render(request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any) -> Response[str]:
    """Render a page with the layout's context (language, actor, CSRF token)."""
    ctx = page_context(request)
    ctx.update(context)
    from qorgau.web.http import after_request_cookies

    html = environment().get_template(template).render(**ctx)
    response: Response[str] = Response(
        content=html,
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers={"Content-Language": ctx["lang"]},
    )
    after_request_cookies(request, response)
    return response
