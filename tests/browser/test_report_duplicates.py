"""The unit sees possible duplicates of a report (same category, same place, close in time) and merges
one into the report it is looking at; a purged report says so to the unit and to the reporter."""

from __future__ import annotations

from typing import Any

import pytest

from qorgau.kernel.auth import services as auth
from qorgau.kernel.context import Ctx
from qorgau.kernel.db import utc_now_ms
from qorgau.reports import services as reports
from qorgau.reports import tables as t
from qorgau.reports.domain import DAY_MS
from qorgau.reports.services.retention import purge_due
from tests.browser.conftest import no_overflow, shot, sign_in

pytestmark = pytest.mark.browser

FIGHT = "Two men are fighting at the bus stop on Abai Avenue; one of them has a bottle."
AGAIN = "A fight at the Abai Avenue bus stop right now, people are shouting."


def new_report(kernel: Any, description: str, lat: float, long: float) -> reports.Submitted:
    return reports.do_submit_report(
        Ctx(kernel, None),
        reports.NewReport(category="rudeness_fight", description=description, region_code="almaty", lat=lat, long=long),
    )


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_an_officer_merges_a_suggested_duplicate_on_a_phone(
    browser: Any, live_url: str, kernel: Any, demo: dict[str, Any], lang: str
) -> None:
    first = new_report(kernel, FIGHT, 43.2389, 76.8897)
    second = new_report(kernel, AGAIN, 43.2395, 76.8902)  # about 80 m away
    new_report(kernel, "A fight near the railway station, two men, one is bleeding.", 43.2710, 76.9400)  # far
    # An old closed report, purged under the retention rule.
    old = new_report(kernel, "Loud music from a car at night in the courtyard of block 12.", 43.25, 76.91)
    officer = Ctx(kernel, auth.do_sign_in(kernel, "serik.police", demo["serik.police"].password).actor)
    for action, reason in (
        ("triage", "within_competence"),
        ("start_verification", "site_visit"),
        ("confirm", "warning"),
        ("close", "measures_taken"),
    ):
        reports.do_transition_report(officer, old.report_id, action, reason, "Done.")
    kernel.db.run(
        lambda tx: tx.execute(
            t.reports.update().where(t.reports.c.id == old.report_id).values(closed_at=utc_now_ms() - 400 * DAY_MS)
        )
    )
    assert purge_due(kernel).count == 1

    context = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    try:
        sign_in(page, live_url, "serik.police", demo["serik.police"].password)
        page.goto(live_url + "/police/reports")
        assert page.get_by_test_id("dup-count").count() == 2
        shot(page, f"phone-reports-queue-duplicates-{lang}")
        no_overflow(page)

        page.goto(live_url + f"/police/reports/{first.report_id}")
        suggestions = page.get_by_test_id("duplicate")
        assert suggestions.count() == 1
        assert second.ref in suggestions.first.inner_text()
        suggestions.first.locator("summary").click()
        shot(page, f"phone-reports-duplicates-{lang}")
        no_overflow(page)
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(el => !el.labels || el.labels.length === 0).length"""
        )
        assert unlabelled == 0
        suggestions.first.locator("button[type=submit]").click()
        page.wait_for_load_state()
        merged = page.get_by_test_id("merged")
        assert second.ref in merged.inner_text()
        assert page.get_by_test_id("duplicate").count() == 0
        shot(page, f"phone-reports-merged-{lang}")
        no_overflow(page)

        page.goto(live_url + f"/police/reports/{second.report_id}")
        assert first.ref in page.locator(".facts").first.inner_text()

        page.goto(live_url + f"/police/reports/{old.report_id}")
        assert page.get_by_test_id("purged").is_visible()
        shot(page, f"phone-reports-officer-purged-{lang}")
        no_overflow(page)

        # The reporter of the purged report still opens it with the receipt.
        page.context.clear_cookies()
        page.goto(live_url + "/reports/follow-up")
        page.locator("#receipt").fill(old.receipt or "")
        page.locator("form[action='/reports/follow-up/open'] button").click()
        assert page.get_by_test_id("purged").is_visible()
        shot(page, f"phone-reports-reporter-purged-{lang}")
        no_overflow(page)
    finally:
        context.close()
