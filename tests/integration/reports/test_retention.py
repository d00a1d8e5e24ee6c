"""The retention rule: finished reports lose their content after the period; statistics and receipts stay."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from qorgau.cli import app as cli
from qorgau.kernel.db import utc_now_ms
from qorgau.kernel.ledger.tables import ledger_entries
from qorgau.reports import protection
from qorgau.reports import tables as t
from qorgau.reports.domain import DAY_MS
from qorgau.reports.services.common import report_key
from tests.integration.reports.flows import (
    SENTENCE,
    as_anonymous,
    as_user,
    jpeg,
    open_with_receipt,
    post_form,
    submit,
    submit_anonymous,
)
from tests.integration.reports.flows import step as take_step

runner = CliRunner()


def purge(settings: Any, *extra: str) -> Any:
    return runner.invoke(
        cli,
        ["reports", "purge", *extra, "--data-dir", str(settings.data_dir), "--database-url", settings.database_url],
        catch_exceptions=False,
    )


def ids_in_order(kernel: Any) -> list[str]:
    with kernel.db.read() as conn:
        return [
            r.id for r in conn.execute(sa.select(t.reports.c.id).order_by(t.reports.c.submitted_at, t.reports.c.id))
        ]


def close(client: Any, report_id: str) -> None:
    """Ask the reporter a question, then confirm with an outcome and close."""
    assert post_form(client, f"/police/reports/{report_id}", f"/police/reports/{report_id}/messages",
                     kind="question", body="Which entrance was it?").status_code == 303  # fmt: skip
    for action, reason, extra in (
        ("triage", "within_competence", {}),
        ("start_verification", "site_visit", {}),
        ("confirm", "protocol", {"outcome": "The man was fined."}),
        ("close", "measures_taken", {}),
    ):
        assert take_step(client, report_id, action, reason, note="Internal note 7731.", **extra).status_code == 303


def counts(kernel: Any, report_id: str) -> dict[str, int]:
    with kernel.db.read() as conn:
        return {
            name: conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.report_id == report_id)
            ).scalar_one()
            for name, table in (("attachments", t.report_attachments), ("messages", t.report_messages))
        }


def ledger(kernel: Any) -> list[dict[str, Any]]:
    with kernel.db.read() as conn:
        return [json.loads(bytes(leaf)) for (leaf,) in conn.execute(sa.select(ledger_entries.c.leaf))]


def age(kernel: Any, report_id: str, days: int) -> None:
    kernel.db.run(
        lambda tx: tx.execute(
            t.reports.update().where(t.reports.c.id == report_id).values(closed_at=utc_now_ms() - days * DAY_MS)
        )
    )


def test_purge_removes_content_and_keeps_statistics(client: Any, kernel: Any, settings: Any, demo: Any) -> None:
    old_receipt = submit_anonymous(client, [jpeg()])  # closed 400 days ago: purged
    submit_anonymous(client, [jpeg()])  # closed yesterday: kept
    submit_anonymous(client, [jpeg()])  # open for 400 days: kept
    citizen = demo["850808301077"]
    as_user(client, "850808301077", citizen.password)
    assert submit(client, [jpeg()], named="1").status_code == 303  # named, closed 400 days ago: purged
    old, recent, still_open, named = ids_in_order(kernel)

    as_anonymous(client)
    page = open_with_receipt(client, old_receipt)
    assert page.status_code == 200

    as_user(client, "serik.police", demo["serik.police"].password)
    for report_id in (old, recent, named):
        close(client, report_id)
    age(kernel, old, 400)
    age(kernel, named, 400)
    age(kernel, recent, 1)
    kernel.db.run(
        lambda tx: tx.execute(
            t.reports.update()
            .where(t.reports.c.id == still_open)
            .values(submitted_at=utc_now_ms() - 400 * DAY_MS, closed_at=None)
        )
    )
    stats_before = client.get("/api/v1/reports/statistics?by=category").json()
    before = {rid: counts(kernel, rid) for rid in (old, recent, still_open, named)}
    assert before[old] == {"attachments": 1, "messages": 2}

    dry = purge(settings, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 reports are due" in dry.output
    assert counts(kernel, old) == before[old]

    result = purge(settings)
    assert result.exit_code == 0, result.output
    assert "2 reports purged" in result.output

    with kernel.db.read() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(t.reports))}
        notes = {
            h.report_id: h.note_enc
            for h in conn.execute(sa.select(t.report_history).where(t.report_history.c.action == "close"))
        }
        content = protection.decrypt_json(
            report_key(kernel, conn, rows[old]),
            rows[old].content_enc,
            table="reports",
            column="content_enc",
            row_id=old,
        )
        history = (
            conn.execute(
                sa.select(t.report_history.c.reason)
                .where(t.report_history.c.report_id == old)
                .order_by(t.report_history.c.at)
            )
            .scalars()
            .all()
        )
    for purged in (old, named):
        assert counts(kernel, purged) == {"attachments": 0, "messages": 0}
        assert rows[purged].purged_at and rows[purged].place_key is None and rows[purged].identity_enc is None
        assert notes[purged] is None
        # Metadata for statistics stays.
        assert rows[purged].category == "rudeness_fight" and rows[purged].region_code == "almaty"
        assert rows[purged].status == "closed" and rows[purged].submitted_at
    assert content == {"description": "", "address": "", "lat": None, "long": None, "occurred_at": None}
    assert history[-2:] == ["protocol", "measures_taken"]  # the outcome's reasons are kept
    for kept in (recent, still_open):
        assert counts(kernel, kept) == before[kept]
        assert rows[kept].purged_at is None and rows[kept].place_key
    assert notes[recent] is not None
    assert client.get("/api/v1/reports/statistics?by=category").json() == stats_before

    entries = [e for e in ledger(kernel) if e["action"] == "report.purge"]
    assert sorted(e["object"]["report"] for e in entries) == sorted([old, named])
    assert all(set(e["object"]) == {"report", "rule", "days"} for e in entries)
    assert SENTENCE not in json.dumps(entries)

    # Idempotent: nothing more to do, nothing logged twice.
    again = purge(settings)
    assert again.exit_code == 0 and "0 reports purged" in again.output
    assert len([e for e in ledger(kernel) if e["action"] == "report.purge"]) == 2

    # The unit still sees the report's record, with the rule's notice instead of the content.
    officer = client.get(f"/police/reports/{old}")
    assert officer.status_code == 200
    assert "Content deleted under the retention rule on" in officer.text
    assert SENTENCE not in officer.text and "Internal note 7731." not in officer.text
    assert "content deleted" in client.get("/police/reports?show=closed").text

    # The reporter's receipt still opens the report, which says it was purged.
    as_anonymous(client)
    follow_up = open_with_receipt(client, old_receipt)
    assert follow_up.status_code == 200
    assert "Content deleted under the retention rule on" in follow_up.text
    assert SENTENCE not in follow_up.text and "The man was fined." not in follow_up.text
    # And the named reporter sees the same in their account.
    as_user(client, "850808301077", citizen.password)
    mine = client.get(f"/reports/mine/{named}")
    assert mine.status_code == 200 and "Content deleted under the retention rule on" in mine.text


def test_the_period_is_a_setting(kernel: Any, settings: Any, client: Any, demo: Any) -> None:
    submit_anonymous(client)
    [report_id] = ids_in_order(kernel)
    as_user(client, "serik.police", demo["serik.police"].password)
    close(client, report_id)
    age(kernel, report_id, 10)
    assert "0 reports are due" in purge(settings, "--dry-run").output
    short = runner.invoke(
        cli,
        [
            "reports",
            "purge",
            "--dry-run",
            "--data-dir",
            str(settings.data_dir),
            "--database-url",
            settings.database_url,
        ],
        env={"QORGAU_REPORTS_RETENTION_DAYS": "7"},
        catch_exceptions=False,
    )
    assert short.exit_code == 0 and "1 reports are due" in short.output


def test_bad_settings_and_unmigrated_databases_exit_non_zero(tmp_path: Path) -> None:
    bad = runner.invoke(
        cli, ["reports", "purge", "--data-dir", str(tmp_path)], env={"QORGAU_REPORTS_RETENTION_DAYS": "0"}
    )
    assert bad.exit_code == 2 and "QORGAU_REPORTS_RETENTION_DAYS" in bad.output
    words = runner.invoke(
        cli, ["reports", "purge", "--data-dir", str(tmp_path)], env={"QORGAU_REPORTS_DUPLICATE_WINDOW_HOURS": "soon"}
    )
    assert words.exit_code == 2
    for name in ("QORGAU_REPORTS_DUPLICATE_WINDOW_HOURS", "QORGAU_REPORTS_RETENTION_DAYS"):
        negative = runner.invoke(cli, ["reports", "purge", "--data-dir", str(tmp_path)], env={name: "-3"})
        assert negative.exit_code == 2 and name in negative.output and "must be positive" in negative.output
    unmigrated = runner.invoke(cli, ["reports", "purge", "--data-dir", str(tmp_path)])
    assert unmigrated.exit_code == 1 and "migrate" in unmigrated.output


def test_the_app_applies_the_rule_in_the_background(client: Any, kernel: Any, demo: Any) -> None:
    import asyncio

    from qorgau.reports.services.retention import run_purger

    submit_anonymous(client)
    [report_id] = ids_in_order(kernel)
    as_user(client, "serik.police", demo["serik.police"].password)
    close(client, report_id)
    age(kernel, report_id, 400)

    def purged_at() -> Any:
        with kernel.db.read() as conn:
            return conn.execute(sa.select(t.reports.c.purged_at).where(t.reports.c.id == report_id)).scalar()

    async def run() -> None:
        task = asyncio.create_task(run_purger(kernel, interval=3600, first_after=0))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if purged_at() is not None:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert purged_at() is not None
    assert "Content deleted under the retention rule on" in client.get(f"/police/reports/{report_id}").text
