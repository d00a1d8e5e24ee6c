"""Open311 GeoReport v2 for city apps and agency systems (http://wiki.open311.org/GeoReport_v2).

Every report category is a service; the region a report goes to is the service attribute ``region``
(GeoReport has no notion of Kazakhstan's regions, and no geocoder is called). Submissions follow the
anonymous web flow: no account, nothing about the client kept; the personal fields GeoReport allows
(``email``, ``phone``, ``first_name``, ``last_name``, ``device_id``, ``account_id``) are ignored and
``media_url`` is never fetched. The reply carries the receipt, once, in the extension field
``receipt``; without an ``api_key`` it carries a ``token`` instead of the ``service_request_id``.

What the GET calls show is public: the category, the region (never the address or the point), the
status (open/closed), the redacted text and the responsible unit, with times to the day. The
``service_request_id`` is the report's random reference. Errors are GeoReport's error array, in JSON
or XML like the call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import anyio.to_thread
import sqlalchemy as sa
from litestar import Request, Response, Router, get, post

from qorgau.kernel import kz
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import require
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import random_token, row_aad, unseal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.i18n import DISPLAY_TIME_ZONE
from qorgau.reports import catalog, receipts
from qorgau.reports import services as svc
from qorgau.reports import tables as t
from qorgau.reports.domain import FINAL, Status
from qorgau.reports.statistics import published_region_cells
from qorgau.web.http import ctx_of
from qorgau.web.problems import to_problem

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
BASE = "/open311/v2"
_ZONE = ZoneInfo(DISPLAY_TIME_ZONE)
MAX_RESULTS = 1000
MAX_SPAN = timedelta(days=90)
_TOKEN_MAC = 16
# Reports the public never sees through Open311: the reporter took them back.
HIDDEN_STATUSES = frozenset({Status.WITHDRAWN})


class Open311Error(Exception):
    """An error in GeoReport's shape: ``[{"code": 400, "description": "..."}]``."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# --- integrations ------------------------------------------------------------------------------


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def do_create_integration(ctx: Ctx, name: str) -> tuple[str, str]:
    """Register a system allowed to file reports with an ``api_key``; the key is returned once."""
    actor = require(ctx.actor, "reports.integrations")
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise Problem("validation.field", field="name", detail="1 to 100 characters")
    integration_id = uuid.uuid4().hex
    key = "o311_" + random_token(32)

    def write(tx: Tx) -> None:
        tx.execute(
            t.report_integrations.insert().values(
                id=integration_id,
                name=name,
                key_hash=_key_hash(key),
                created_by=actor.user_id,
                created_at=utc_now_ms(),
            )
        )
        ctx.kernel.ledger.append(
            tx,
            entry_type="admin",
            actor=actor.user_id,
            action="reports.integration.create",
            subject=None,
            obj={"integration": integration_id, "name": name},
        )

    ctx.kernel.writer.run(write)
    return integration_id, key


def do_revoke_integration(ctx: Ctx, integration_id: str) -> None:
    actor = require(ctx.actor, "reports.integrations")

    def write(tx: Tx) -> None:
        tx.execute(
            t.report_integrations.update()
            .where(t.report_integrations.c.id == integration_id, t.report_integrations.c.revoked_at.is_(None))
            .values(revoked_at=utc_now_ms())
        )
        ctx.kernel.ledger.append(
            tx,
            entry_type="admin",
            actor=actor.user_id,
            action="reports.integration.revoke",
            subject=None,
            obj={"integration": integration_id},
        )

    ctx.kernel.writer.run(write)


def integration_for_key(kernel: Kernel, key: str) -> str | None:
    """The id of the live integration with this key, or None."""
    with kernel.db.read() as conn:
        return conn.execute(
            sa.select(t.report_integrations.c.id).where(
                t.report_integrations.c.key_hash == _key_hash(key), t.report_integrations.c.revoked_at.is_(None)
            )
        ).scalar_one_or_none()


# --- tokens: a MAC of the reference, so nothing more is stored ----------------------------------


def token_for(kernel: Kernel, ref: str) -> str:
    compact = ref.replace("-", "")
    return compact + kernel.hasher.hash("reports.open311.token", compact)[:_TOKEN_MAC]


def ref_of_token(kernel: Kernel, token: str) -> str | None:
    compact, mac = token[:-_TOKEN_MAC], token[-_TOKEN_MAC:]
    if len(compact) != svc.common.REF_LENGTH or not compact.isalnum():
        return None
    expected = kernel.hasher.hash("reports.open311.token", compact)[:_TOKEN_MAC]
    if not hmac.compare_digest(mac, expected):
        return None
    return f"{compact[:5]}-{compact[5:]}"


# --- what is published ----------------------------------------------------------------------


def _w3(ms: int) -> str:
    """A moment as a W3C date-time, to the day (Kazakhstan time): exact times could single people out."""
    local = datetime.fromtimestamp(ms / 1000, UTC).astimezone(_ZONE)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).isoformat()


def _parse_w3(raw: str, name: str) -> int:
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time such as 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_ZONE)
    return int(moment.timestamp() * 1000)


def services(lang: str) -> list[dict[str, Any]]:
    return [
        {
            "service_code": c.code,
            "service_name": c.name(lang),
            "description": c.hint(lang),
            "metadata": True,
            "type": "realtime",
            "keywords": "",
            "group": "police",
        }
        for c in catalog.categories()
    ]


def service_definition(code: str, lang: str) -> dict[str, Any]:
    if catalog.category(code) is None:
        raise Open311Error(404, f"no service with service_code {code}")
    return {
        "service_code": code,
        "attributes": [
            {
                "variable": True,
                "code": "region",
                "datatype": "singlevaluelist",
                "required": True,
                "datatype_description": "The region or city of republican significance where it happened",
                "order": 1,
                "description": "Region",
                "values": [{"key": r.code, "name": r.name(lang)} for r in kz.regions()],
            }
        ],
    }


def _public_request(kernel: Kernel, row: Any, units: Mapping[str, Any], lang: str) -> dict[str, Any]:
    status = Status(row.status)
    category = catalog.category(row.category)
    try:
        region = kz.region(row.region_code).name(lang)
    except kz.UnknownRegion:
        region = row.region_code
    unit = units.get(row.unit_id)
    return {
        "service_request_id": row.ref,
        "status": "closed" if status in FINAL else "open",
        "status_notes": status.value,
        "service_name": category.name(lang) if category else row.category,
        "service_code": row.category,
        "description": unseal_text(kernel.keyring, row.public_text_enc, row_aad("reports", "public_text_enc", row.id)),
        "agency_responsible": unit.name(lang) if unit else "",
        "service_notice": "",
        "requested_datetime": _w3(row.submitted_at),
        "updated_datetime": _w3(row.status_at),
        "expected_datetime": _w3(row.due_at) if row.due_at and status not in FINAL else None,
        "address": region,
        "address_id": row.region_code,
        "zipcode": None,
        "media_url": None,
    }


_COLUMNS = (
    t.reports.c.id,
    t.reports.c.ref,
    t.reports.c.category,
    t.reports.c.region_code,
    t.reports.c.unit_id,
    t.reports.c.status,
    t.reports.c.submitted_at,
    t.reports.c.status_at,
    t.reports.c.due_at,
    t.reports.c.public_text_enc,
)


def _units(kernel: Kernel) -> dict[str, Any]:
    return {a.id: a for a in auth.list_agencies(kernel)}


def _split(raw: str | None) -> list[str]:
    return [v.strip() for v in (raw or "").split(",") if v.strip()]


def find_requests(
    kernel: Kernel, query: Mapping[str, str], lang: str, *, now_ms: int | None = None
) -> list[dict[str, Any]]:
    """GET requests: by ``service_request_id`` (comma-separated), or by the filters (90 days at most)."""
    stmt = sa.select(*_COLUMNS).where(t.reports.c.status.not_in([s.value for s in HIDDEN_STATUSES]))
    ids = _split(query.get("service_request_id"))
    if ids:
        stmt = stmt.where(t.reports.c.ref.in_(ids[:MAX_RESULTS]))
    else:
        now_ms = utc_now_ms() if now_ms is None else now_ms
        codes = _split(query.get("service_code"))
        unknown = [c for c in codes if catalog.category(c) is None]
        if unknown:
            raise Open311Error(400, f"unknown service_code {unknown[0]}")
        statuses = _split(query.get("status"))
        if any(s not in ("open", "closed") for s in statuses):
            raise Open311Error(400, "status must be open or closed")
        end = _parse_w3(query["end_date"], "end_date") if query.get("end_date") else now_ms
        start = (
            _parse_w3(query["start_date"], "start_date")
            if query.get("start_date")
            else end - int(MAX_SPAN.total_seconds() * 1000)
        )
        if start > end:
            raise Open311Error(400, "start_date is after end_date")
        if end - start > MAX_SPAN.total_seconds() * 1000:
            raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
        stmt = stmt.where(t.reports.c.submitted_at >= start, t.reports.c.submitted_at <= end)
        if codes:
            stmt = stmt.where(t.reports.c.category.in_(codes))
        final = [s.value for s in FINAL]
        if statuses == ["open"]:
            stmt = stmt.where(t.reports.c.status.not_in(final))
        elif statuses == ["closed"]:
            stmt = stmt.where(t.reports.c.status.in_(final))
    stmt = stmt.order_by(t.reports.c.submitted_at.desc(), t.reports.c.ref).limit(MAX_RESULTS)
    with kernel.db.read() as conn:
        rows = conn.execute(stmt).all()
    if not ids:
        # A filtered list counts reports per region and category: keep to the cells the public statistics
        # show, so the list never reveals a count that the statistics suppress.
        shown = published_cells(kernel)
        rows = [row for row in rows if (row.region_code, row.category) in shown]
    units = _units(kernel)
    return [_public_request(kernel, row, units, lang) for row in rows]


def published_cells(kernel: Kernel) -> set[tuple[str, str]]:
    """(region, category) pairs whose count the public statistics show (not suppressed).

    Only the region x category table is needed here: the protection is computed exactly as for the
    published tables, without building the named tables for the page.
    """
    return published_region_cells(kernel)


def find_request(kernel: Kernel, ref: str, lang: str) -> dict[str, Any]:
    found = find_requests(kernel, {"service_request_id": ref}, lang)
    if not found:
        raise Open311Error(404, f"no service request {ref}")
    return found[0]


def submit(ctx: Ctx, form: Mapping[str, str], client_address: str | None) -> list[dict[str, Any]]:
    """POST requests: file the report like the anonymous web form does."""
    kernel = ctx.kernel
    if ctx.actor is not None:
        # A session or bearer token would tie the report to an account: Open311 filing is anonymous.
        raise Open311Error(403, "Open311 reports are filed anonymously: send no credentials but api_key")
    api_key = (form.get("api_key") or "").strip()
    integration = integration_for_key(kernel, api_key) if api_key else None
    if api_key and integration is None:
        raise Open311Error(403, "api_key is invalid or revoked")
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code is required")
    if catalog.category(code) is None:
        raise Open311Error(404, f"no service with service_code {code}")
    region = (form.get("attribute[region]") or "").strip()
    if not region:
        raise Open311Error(400, "attribute[region] is required (see the service definition)")
    web_form = {
        "category": code,
        "description": form.get("description") or "",
        "region": region,
        "address": form.get("address_string") or "",
        "lat": form.get("lat") or "",
        "long": form.get("long") or "",
    }
    try:
        report = svc.parse_new_report(web_form)
        # A registered system files for many people from one address: the per-client limit is for the web.
        sent = svc.do_submit_report(
            Ctx(kernel, None, ctx.lang), report, client_address=client_address, throttled=integration is None
        )
    except Problem as problem:
        raise Open311Error(problem.status or 400, _field_description(problem, ctx.lang)) from None
    notice = "Keep the receipt: it is the only way to follow up this report. It is shown once."
    receipt = " ".join(receipts.grouped(sent.receipt)) if sent.receipt else None
    answer: dict[str, Any] = {"service_notice": notice, "account_id": None, "receipt": receipt}
    if integration is not None:
        return [{"service_request_id": sent.ref, **answer}]
    return [{"token": token_for(kernel, sent.ref), **answer}]


_FIELD_NAMES = {"category": "service_code", "region": "attribute[region]", "address": "address_string"}


def _field_description(problem: Problem, lang: str) -> str:
    text = problem.title(lang)
    if problem.field:
        text = f"{_FIELD_NAMES.get(problem.field, problem.field)}: {text}"
    return text


# --- formats ---------------------------------------------------------------------------------


def _xml(root: str, item: str | None, data: Any) -> bytes:
    def fill(element: ET.Element, value: Any, child: str | None = None) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                sub = ET.SubElement(element, key)
                fill(sub, inner, _CHILDREN.get(key))
        elif isinstance(value, list | tuple):
            for inner in value:
                fill(ET.SubElement(element, child or "item"), inner, None)
        elif value is None:
            return
        elif isinstance(value, bool):
            element.text = "true" if value else "false"
        else:
            element.text = str(value)

    top = ET.Element(root)
    fill(top, data, item)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="utf-8", xml_declaration=False)


# A list inside an element: the element each entry is written as.
_CHILDREN = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}


def _respond(fmt: str, root: str, item: str | None, data: Any, status: int = 200) -> Response[Any]:
    if fmt == "xml":
        return Response(_xml(root, item, data), status_code=status, media_type="text/xml; charset=utf-8")
    return Response(data, status_code=status, media_type="application/json")


def _errors(fmt: str, status: int, description: str) -> Response[Any]:
    return _respond(fmt, "errors", "error", [{"code": status, "description": description}], status)


_NAME = re.compile(r"^(?P<stem>[^/]+)\.(?P<fmt>json|xml)$")


def _name(name: str) -> tuple[str, str]:
    found = _NAME.match(name)
    if not found:
        raise Open311Error(404, "ask for .json or .xml")
    return found["stem"], found["fmt"]


def _format_of(path: str) -> str:
    return "xml" if path.endswith(".xml") else "json"


def open311_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Any failure under /open311/ as GeoReport's error array, in the format of the call."""
    fmt = _format_of(request.url.path)
    if isinstance(exc, Open311Error):
        return _errors(fmt, exc.status, exc.description)
    problem = to_problem(exc)
    lang = ctx_of(request).lang if problem.code != "internal" else "en"
    return _errors(fmt, problem.status or 500, _field_description(problem, lang))


async def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if isinstance(v, str)}


def discovery(base_url: str) -> dict[str, Any]:
    return {
        "changeset": "2026-12-01T00:00:00+05:00",
        "contact": "Qorgau platform operator",
        "key_service": "Ask the platform administrator to register your system for an api_key.",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base_url + BASE,
                "changeset": "2026-12-01T00:00:00+05:00",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }


# --- routes ----------------------------------------------------------------------------------


@get("/{name:str}")
async def open311_get(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    stem, fmt = _name(name)
    ctx = ctx_of(request)
    if stem == "discovery":
        base = f"{request.url.scheme}://{request.url.netloc}"
        return _respond(fmt, "discovery", None, discovery(base))
    if stem == "services":
        return _respond(fmt, "services", "service", services(ctx.lang))
    if stem == "requests":
        found = await _run(find_requests, ctx.kernel, _query(request), ctx.lang)
        return _respond(fmt, "service_requests", "request", found)
    raise Open311Error(404, f"no resource {name}")


@post("/{name:str}", status_code=201)
async def open311_post(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    stem, fmt = _name(name)
    if stem != "requests":
        raise Open311Error(404, f"no resource {name}")
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise Open311Error(400, "send the service request form-encoded (application/x-www-form-urlencoded)")
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    ctx = ctx_of(request)
    client = request.client.host if request.client else None
    answer = await _run(submit, ctx, form, client)
    return _respond(fmt, "service_requests", "request", answer, 201)


@get("/services/{name:str}")
async def open311_service(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    code, fmt = _name(name)
    return _respond(fmt, "service_definition", None, service_definition(code, ctx_of(request).lang))


@get("/requests/{name:str}")
async def open311_request(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    ref, fmt = _name(name)
    ctx = ctx_of(request)
    found = await _run(find_request, ctx.kernel, ref, ctx.lang)
    return _respond(fmt, "service_requests", "request", [found])


@get("/tokens/{name:str}")
async def open311_token(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    token, fmt = _name(name)
    ctx = ctx_of(request)
    ref = ref_of_token(ctx.kernel, token)
    if ref is None:
        raise Open311Error(404, "unknown token")
    found = await _run(find_requests, ctx.kernel, {"service_request_id": ref}, ctx.lang)
    if not found:
        raise Open311Error(404, "unknown token")
    return _respond(fmt, "service_requests", "request", [{"service_request_id": ref, "token": token}])


def router() -> Router:
    return Router(
        path=BASE,
        route_handlers=[open311_get, open311_post, open311_service, open311_request, open311_token],
        exception_handlers={Exception: open311_error_response},
    )


def routes() -> Iterable[Any]:
    return [router()]
