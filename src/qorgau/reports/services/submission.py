"""Submitting a report: check it, show what the public will see, seal it to its unit, hand out a receipt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from qorgau.kernel import kz
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import require
from qorgau.kernel.auth.roles import Role
from qorgau.kernel.context import Ctx
from qorgau.kernel.crypto import row_aad, seal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem, invalid
from qorgau.kernel.events import emit
from qorgau.kernel.i18n import DISPLAY_TIME_ZONE
from qorgau.reports import catalog, media, places, protection, receipts, redaction, statistics
from qorgau.reports import tables as t
from qorgau.reports.domain import (
    ADDRESS_MAX,
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    Status,
    due_after,
    point_in_country,
)
from qorgau.reports.services.common import (
    client_key,
    deadlines,
    limits,
    new_id,
    new_ref,
    problem_of,
    reporter_ref,
    route,
    unit_public_key,
)

FIELDS = ("category", "description", "region", "address", "lat", "long", "occurred_at", "named")
# A clock a little ahead of the server's must not make "just now" a time in the future.
_CLOCK_SKEW_MS = 10 * 60 * 1000


@dataclass(frozen=True)
class NewReport:
    """A report as the reporter wrote it, checked."""

    category: str
    description: str
    region_code: str
    address: str = ""
    lat: float | None = None
    long: float | None = None
    occurred_at: int | None = None  # ms since the epoch
    named: bool = False


def _float(form: Mapping[str, str], name: str) -> float | None:
    raw = (form.get(name) or "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise invalid(name, "a number such as 43.2389") from None


def _occurred(raw: str, now_ms: int) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid("occurred_at", "a date and time") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(DISPLAY_TIME_ZONE))
    ms = int(local.timestamp() * 1000)
    if ms > now_ms + _CLOCK_SKEW_MS or local.year < 2000:
        raise Problem("reports.occurred_in_future", field="occurred_at")
    return ms


def parse_new_report(form: Mapping[str, str], *, now_ms: int | None = None) -> NewReport:
    """Check a submitted form; a Problem names the first field at fault."""
    now_ms = utc_now_ms() if now_ms is None else now_ms
    category = (form.get("category") or "").strip()
    if catalog.category(category) is None:
        raise Problem("reports.unknown_category", field="category")
    description = (form.get("description") or "").replace("\r\n", "\n").strip()
    if not DESCRIPTION_MIN <= len(description) <= DESCRIPTION_MAX:
        raise Problem("reports.description_length", field="description")
    region_code = (form.get("region") or "").strip()
    try:
        kz.region(region_code)
    except kz.UnknownRegion:
        raise Problem("reports.unknown_region", field="region") from None
    address = " ".join((form.get("address") or "").split())
    if len(address) > ADDRESS_MAX:
        raise invalid("address", f"at most {ADDRESS_MAX} characters")
    lat, long = _float(form, "lat"), _float(form, "long")
    if (lat is None) != (long is None):
        raise invalid("long" if long is None else "lat", "give both latitude and longitude, or neither")
    if lat is not None and long is not None and not point_in_country(lat, long):
        raise Problem("reports.point_outside", field="lat")
    return NewReport(
        category=category,
        description=description,
        region_code=region_code,
        address=address,
        lat=lat,
        long=long,
        occurred_at=_occurred(form.get("occurred_at") or "", now_ms),
        named=(form.get("named") or "") in ("1", "on", "true", "yes"),
    )


def preview(report: NewReport) -> list[redaction.Segment]:
    """The description cut into what the public version keeps and what it hides."""
    return redaction.segments(report.description)


@dataclass(frozen=True)
class Submitted:
    report_id: str
    ref: str
    # Shown once to an anonymous reporter and never stored; None for a named report.
    receipt: str | None
    unit_id: str
    routed_by_fallback: bool


def clean_files(ctx: Ctx, files: Sequence[bytes]) -> list[media.Cleaned]:
    """Sniff and strip every file before anything is stored; the first refused file stops the report."""
    settings = ctx.kernel.settings
    files = [f for f in files if f]
    if len(files) > settings.reports_max_attachments:
        raise Problem("reports.too_many_attachments", field="files")
    try:
        return [media.clean(f, settings.reports_max_attachment_bytes) for f in files]
    except media.MediaError as exc:
        raise problem_of(exc) from None


def store_attachments(
    tx: Tx, data_key: bytes, report_id: str, files: Sequence[media.Cleaned], now: int, message_id: str | None = None
) -> None:
    for item in files:
        attachment_id = new_id()
        tx.execute(
            t.report_attachments.insert().values(
                id=attachment_id,
                report_id=report_id,
                message_id=message_id,
                at=now,
                kind=item.kind.value,
                media_type=item.media_type,
                size=len(item.data),
                scrubbed=item.scrubbed,
                data_enc=protection.encrypt(
                    data_key, item.data, table="report_attachments", column="data_enc", row_id=attachment_id
                ),
            )
        )


def do_submit_report(
    ctx: Ctx,
    report: NewReport,
    files: Sequence[bytes] = (),
    *,
    client_address: str | None = None,
    throttled: bool = True,
) -> Submitted:
    """File a report with its unit: encrypted under its own key, sealed to the unit, in the ledger.

    Anonymous (no actor, or a citizen who chose not to be named): a receipt is returned once. Named (a
    signed-in citizen who chose so): the identity is sealed into the report and the citizen finds it in
    their account. Nothing about the client (address, browser) is stored.
    """
    kernel = ctx.kernel
    actor = ctx.actor
    require(actor, "reports.submit")
    named = report.named and actor is not None and actor.role == Role.CITIZEN
    # ``throttled=False``: a registered Open311 integration, filing for many people from one address.
    if throttled and not limits(kernel).submissions.allow(client_key(kernel, client_address)):
        raise Problem("reports.too_many_submissions")
    cleaned = clean_files(ctx, files)
    target = route(kernel, report.region_code, report.category)
    public_key = unit_public_key(kernel, target.unit_id)

    report_id = new_id()
    data_key = protection.new_data_key()
    receipt = None if named else receipts.new_receipt()
    identity = None
    owner_ref = None
    if named:
        assert actor is not None
        known = auth.citizen_identity(kernel, actor) or {}
        identity = {"account": actor.user_id, "name": actor.display_name, **known}
        owner_ref = reporter_ref(kernel, actor.user_id)
    content = {
        "description": report.description,
        "address": report.address,
        "lat": report.lat,
        "long": report.long,
        "occurred_at": report.occurred_at,
    }
    values = {
        "id": report_id,
        "category": report.category,
        "region_code": report.region_code,
        "unit_id": target.unit_id,
        "routed_by_fallback": target.by_fallback,
        "named": named,
        "reporter_ref": owner_ref,
        "status": Status.NEW.value,
        "receipt_index": receipts.index_of(kernel.hasher, receipt) if receipt else None,
        "receipt_verifier": receipts.verifier_of(receipt) if receipt else None,
        "data_key_sealed": protection.seal_report_key(public_key, report_id, data_key),
        "content_enc": protection.encrypt_json(
            data_key, content, table="reports", column="content_enc", row_id=report_id
        ),
        "identity_enc": (
            protection.encrypt_json(data_key, identity, table="reports", column="identity_enc", row_id=report_id)
            if identity is not None
            else None
        ),
        "public_text_enc": seal_text(
            kernel.keyring, redaction.redact(report.description), row_aad("reports", "public_text_enc", report_id)
        ),
        "place_key": places.place_key(
            kernel.hasher, report.region_code, lat=report.lat, long=report.long, address=report.address
        ),
    }
    category = catalog.category(report.category)

    def write(tx: Tx) -> str:
        now = utc_now_ms()
        ref = new_ref()
        tx.execute(
            t.reports.insert().values(
                **values,
                ref=ref,
                submitted_at=now,
                status_at=now,
                due_at=due_after(Status.NEW, now, None, deadlines(kernel)),
            )
        )
        tx.execute(
            t.report_history.insert().values(
                id=new_id(),
                report_id=report_id,
                at=now,
                action="submit",
                from_status=None,
                to_status=Status.NEW.value,
                actor_kind="reporter",
            )
        )
        store_attachments(tx, data_key, report_id, cleaned, now)
        statistics.count_submission(tx, report.region_code, report.category, now)
        kernel.ledger.append(
            tx,
            entry_type="report",
            actor="reporter",
            action="report.submit",
            subject=None,
            obj={"report": report_id, "category": report.category, "region": report.region_code},
        )
        emit(tx, "reports.submitted", {"report": report_id, "unit": target.unit_id})
        if category is not None and category.regulator:
            emit(tx, "reports.unlawful_data_demand", {"report": report_id})
        return ref

    # Submissions are a hot path: the group-commit writer batches them. A clash of random
    # references (50 bits) is retried with a fresh one.
    for attempt in range(3):
        try:
            ref = kernel.writer.run(write)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return Submitted(report_id, ref, receipt, target.unit_id, target.by_fallback)
