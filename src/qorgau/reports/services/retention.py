"""The retention rule: finished reports lose their content after ``reports_retention_days``.

What goes: the text and place (``content_enc``, ``place_key``), the redacted public text, the sealed
identity of a named reporter, every message and answer, every attachment (the rows and their bytes),
the officers' internal notes and reveal justifications. What stays, for the public statistics and the
regulation's record: category, region, unit, the times (hence the month), the status and the reasons of
each step (the outcome), and the receipt's hashes so that a reporter who comes back learns that the
content was deleted and when. Each purge is one ledger entry, without content.

Which reports: closed or withdrawn ones whose ``closed_at`` is older than the period, and reports
merged into another once that other one is finished too (a merged report's content may still help while
the incident is being verified). Run by ``qorgau reports purge`` and hourly inside the app.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import sqlalchemy as sa

from qorgau.kernel.context import Kernel
from qorgau.kernel.crypto import row_aad, seal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.events import emit
from qorgau.kernel.observability import log
from qorgau.reports import protection
from qorgau.reports import tables as t
from qorgau.reports.domain import DAY_MS, FINAL, Status
from qorgau.reports.services.common import report_key

PURGE_INTERVAL_SECONDS = 3600
# What a purged report's content holds: every field a report has, all empty.
PURGED_CONTENT = {"description": "", "address": "", "lat": None, "long": None, "occurred_at": None}


@dataclass(frozen=True)
class PurgeResult:
    cutoff: int  # reports finished before this time (ms) are due
    report_ids: list[str]
    dry_run: bool

    @property
    def count(self) -> int:
        return len(self.report_ids)


def cutoff_ms(kernel: Kernel, now_ms: int | None = None) -> int:
    now_ms = utc_now_ms() if now_ms is None else now_ms
    return now_ms - kernel.settings.reports_retention_days * DAY_MS


def _due(cutoff: int) -> sa.Select:
    r = t.reports
    primary = r.alias("primary_report")
    primary_finished = (
        sa.select(primary.c.id)
        .where(primary.c.id == r.c.duplicate_of, primary.c.status.in_([s.value for s in FINAL]))
        .exists()
    )
    return (
        sa.select(r.c.id)
        .where(
            r.c.purged_at.is_(None),
            r.c.closed_at.is_not(None),
            r.c.closed_at <= cutoff,
            sa.or_(
                r.c.status.in_([Status.CLOSED.value, Status.WITHDRAWN.value]),
                sa.and_(r.c.status == Status.MERGED_DUPLICATE.value, primary_finished),
            ),
        )
        .order_by(r.c.closed_at, r.c.id)
    )


def due_for_purge(kernel: Kernel, now_ms: int | None = None) -> list[str]:
    """The ids of the reports whose content the retention rule deletes now, oldest first."""
    with kernel.db.read() as conn:
        return [row.id for row in conn.execute(_due(cutoff_ms(kernel, now_ms)))]


def _purge_one(kernel: Kernel, tx: Tx, report_id: str, cutoff: int, now: int) -> bool:
    row = tx.execute(sa.select(t.reports).where(t.reports.c.id == report_id)).first()
    # Checked again inside the transaction: reopened, or purged by another process meanwhile.
    if row is None or row.purged_at is not None or row.closed_at is None or row.closed_at > cutoff:
        return False
    if Status(row.status) not in FINAL:
        return False
    data_key = report_key(kernel, tx, row)
    tx.execute(t.report_attachments.delete().where(t.report_attachments.c.report_id == report_id))
    tx.execute(t.report_messages.delete().where(t.report_messages.c.report_id == report_id))
    tx.execute(t.report_history.update().where(t.report_history.c.report_id == report_id).values(note_enc=None))
    for reveal_id in tx.execute(
        sa.select(t.report_reveals.c.id).where(t.report_reveals.c.report_id == report_id)
    ).scalars():
        tx.execute(
            t.report_reveals.update()
            .where(t.report_reveals.c.id == reveal_id)
            .values(
                justification_enc=protection.encrypt_text(
                    data_key, "", table="report_reveals", column="justification_enc", row_id=reveal_id
                ),
                decision_note_enc=None,
            )
        )
    tx.execute(
        t.reports.update()
        .where(t.reports.c.id == report_id)
        .values(
            # Empty values under the report's own key keep every reader's code path; nothing is left to read.
            content_enc=protection.encrypt_json(
                data_key, PURGED_CONTENT, table="reports", column="content_enc", row_id=report_id
            ),
            identity_enc=None,
            public_text_enc=seal_text(kernel.keyring, "", row_aad("reports", "public_text_enc", report_id)),
            place_key=None,
            unread_reply=False,
            purged_at=now,
        )
    )
    kernel.ledger.append(
        tx,
        entry_type="decision",
        actor="platform",
        action="report.purge",
        subject=None,
        obj={"report": report_id, "rule": "retention", "days": kernel.settings.reports_retention_days},
    )
    emit(tx, "reports.purged", {"report": report_id})
    return True


def purge_due(kernel: Kernel, *, dry_run: bool = False, now_ms: int | None = None) -> PurgeResult:
    """Delete the content of every report due under the retention rule (one transaction per report)."""
    now = utc_now_ms() if now_ms is None else now_ms
    cutoff = cutoff_ms(kernel, now)
    due = due_for_purge(kernel, now)
    if dry_run:
        return PurgeResult(cutoff, due, True)
    purged: list[str] = []
    for report_id in due:
        if kernel.db.run(lambda tx, rid=report_id: _purge_one(kernel, tx, rid, cutoff, now)):
            purged.append(report_id)
    return PurgeResult(cutoff, purged, False)


async def run_purger(kernel: Kernel, interval: float = PURGE_INTERVAL_SECONDS, first_after: float = 60) -> None:
    """Apply the retention rule in the background every `interval` seconds; survives any error.

    The first run waits `first_after` seconds, so that starting the app stays quick.
    """
    await asyncio.sleep(first_after)
    while True:
        try:
            result = await asyncio.to_thread(purge_due, kernel)
            if result.count:
                log.info("reports_purged", count=result.count)
                await asyncio.to_thread(kernel.ledger.sign_if_grown)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("reports_purge_failed", error=type(exc).__name__)
        await asyncio.sleep(interval)
