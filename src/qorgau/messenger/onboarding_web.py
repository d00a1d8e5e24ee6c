"""The onboarding dashboard pages: /admin/onboarding (HTML) and /admin/onboarding.csv (the same table)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date
from litestar import Request, Response, get, post
from litestar.params import Parameter
from litestar.response import Redirect

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import can
from qorgau.kernel.auth.roles import Role
from qorgau.kernel.errors import Problem
from qorgau.kernel.i18n import N_, gettext
from qorgau.messenger.services import notices, onboarding
from qorgau.web.http import ctx_of
from qorgau.web.render import add_template_dir, render

add_template_dir(Path(__file__).parent / "templates")

StatusFilter = Parameter(query="status", default="all", max_length=20)
AgencyFilter = Parameter(default="", max_length=64)


def _load(
    request: Request[Any, Any, Any], agency: str, status: str
) -> tuple[Any, onboarding.Onboarding, dict[str, Any]]:
    ctx = ctx_of(request)
    if ctx.actor is None:
        raise Problem("auth.required")
    agencies = {a.id: a for a in auth.list_agencies(ctx.kernel)}
    agency_id: str | None = None
    if agency:
        found = auth.get_agency(ctx.kernel, agency)
        if found is None:
            raise Problem("validation.parameter", field="agency", detail="unknown agency")
        agency_id = found.id
    data = onboarding.onboarding(ctx, agency_id=agency_id, status=status)
    return ctx, data, agencies


@get("/admin/onboarding", sync_to_thread=True)
def onboarding_page(
    request: Request[Any, Any, Any], show: str = StatusFilter, agency: str = AgencyFilter
) -> Response[str]:
    ctx, data, agencies = _load(request, agency, show)
    assert ctx.actor is not None
    query = [("status", show)] if show != "all" else []
    if data.agency_id and ctx.actor.role == Role.PLATFORM_ADMIN:
        query.append(("agency", agencies[data.agency_id].code))
    csv_href = "/admin/onboarding.csv" + ("?" + urlencode(query) if query else "")
    response = render(
        request,
        "messenger/onboarding.html",
        data=data,
        summary=data.summary,
        agencies=agencies,
        agency_choices=sorted(agencies.values(), key=lambda a: a.name(ctx.lang))
        if ctx.actor.role == Role.PLATFORM_ADMIN
        else [],
        current_agency=agencies.get(data.agency_id or ""),
        status=show,
        filters=onboarding.FILTERS,
        status_labels=onboarding.STATUS_LABELS,
        flag_labels=onboarding.FLAG_LABELS,
        csv_href=csv_href,
        near_days=onboarding.NEAR_DAYS,
        format_day=lambda day: format_date(day, format="long", locale=ctx.lang),
        may_remind=can(ctx.actor, "messenger.notices.send"),
        reminder_title=gettext(ctx.lang, REMINDER_TITLE),
        reminder_body=gettext(ctx.lang, REMINDER_BODY)
        % {"deadline": format_date(data.summary.deadline, format="long", locale=ctx.lang)},
        remind_action="/admin/onboarding/remind"
        + ("?" + urlencode({"agency": agencies[data.agency_id].code}) if data.agency_id else ""),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@get("/admin/onboarding.csv", sync_to_thread=True)
def onboarding_csv(
    request: Request[Any, Any, Any], show: str = StatusFilter, agency: str = AgencyFilter
) -> Response[bytes]:
    ctx, data, agencies = _load(request, agency, show)
    names = {a.id: a.name(ctx.lang) for a in agencies.values()}
    scope = agencies[data.agency_id].code if data.agency_id in agencies else "all"
    filename = f"onboarding-{scope}-{onboarding.local_today().isoformat()}.csv"
    return Response(
        content=onboarding.to_csv(data, lang=ctx.lang, agency_names=names),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


REMINDER_TITLE = N_("Reminder: join the national messenger")
REMINDER_BODY = N_(
    "Official communication moves to the national messenger Qorgau. You have not joined yet: please "
    "open the invitation link your agency's administrator sent you and set your password by %(deadline)s."
)


@post("/admin/onboarding/remind")
async def onboarding_remind(request: Request[Any, Any, Any], agency: str = AgencyFilter) -> Response[Any]:
    """Send a reminder notice to the officials in the admin's scope who have not joined yet."""
    ctx = await asyncio.to_thread(ctx_of, request)
    if ctx.actor is None:
        raise Problem("auth.required")
    form = await request.form()
    title = form.get("title") if isinstance(form.get("title"), str) else ""
    body = form.get("body") if isinstance(form.get("body"), str) else ""

    def missing() -> list[str]:
        agency_id = None
        if agency:
            found = auth.get_agency(ctx.kernel, agency)
            if found is None:
                raise Problem("validation.parameter", field="agency", detail="unknown agency")
            agency_id = found.id
        return [row.user_id for row in onboarding.onboarding(ctx, agency_id=agency_id, status="missing").officials]

    recipients = await asyncio.to_thread(missing)
    notice_id = await notices.do_send_notice(
        ctx, str(title)[:250], str(body)[:5000], notices.Audience(accounts=recipients)
    )
    return Redirect(path=f"/messenger/notices/sent/{notice_id}", status_code=303)


ROUTES = [onboarding_page, onboarding_csv, onboarding_remind]
