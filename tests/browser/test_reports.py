"""A citizen reports an offence with a photo and follows it up with the receipt; the police work it through."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from qorgau.kernel.context import Ctx
from qorgau.reports import services as reports
from tests.browser.conftest import no_overflow, on_every_engine, shot, sign_in

pytestmark = pytest.mark.browser

DESCRIPTION = (
    "Two men are fighting at the bus stop on Abai Avenue near the Kazakh National University. "
    "One of them has a knife. A witness, Aigul, phoned 8 701 555 66 77."
)


def photo(tmp_path: Path) -> Path:
    path = tmp_path / "evidence.jpg"
    img = Image.new("RGB", (640, 480), (90, 120, 160))
    for x in range(200, 440):
        for y in range(180, 300):
            img.putpixel((x, y), (230, 200, 40))
    out = io.BytesIO()
    img.save(out, "JPEG")
    path.write_bytes(out.getvalue())
    return path


@on_every_engine
def test_anonymous_report_with_photo_followed_up_to_the_outcome(
    browser: Any, live_url: str, demo: dict[str, Any], tmp_path: Path
) -> None:
    citizen = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": "en"})
    police = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers={"Accept-Language": "en"})
    me, officer = citizen.new_page(), police.new_page()
    try:
        # The citizen, on a phone, without an account.
        me.goto(live_url + "/")
        me.get_by_role("link", name="Citizen reports").click()
        shot(me, "reports-index-en")
        me.get_by_role("link", name="Report an offence").first.click()
        me.get_by_text("Rudeness and fights").click()
        me.get_by_label("Describe what happened").fill(DESCRIPTION)
        me.get_by_label("Region or city").select_option("almaty")
        me.get_by_label("Address or landmark").fill("Abai Avenue 71, bus stop")
        shot(me, "reports-new-en")
        no_overflow(me)
        me.get_by_role("button", name="Continue").click()
        preview = me.get_by_test_id("redaction-preview")
        assert "PHONE" in preview.inner_text()
        me.get_by_label("Attach files").set_input_files(str(photo(tmp_path)))
        shot(me, "reports-check-en")
        no_overflow(me)
        me.get_by_role("button", name="Send report").click()
        receipt = me.get_by_test_id("receipt").inner_text()
        assert re.fullmatch(r"(\d{4}\s*){7}", receipt.strip()), receipt
        shot(me, "reports-receipt-en")
        no_overflow(me)

        # The police officer triages and asks a question.
        sign_in(officer, live_url, "serik.police", demo["serik.police"].password)
        officer.goto(live_url + "/police/reports")
        shot(officer, "reports-queue-en")
        officer.get_by_test_id("queue").get_by_role("link").first.click()
        assert "knife" in officer.get_by_test_id("original").inner_text()
        officer.get_by_text("Accept for review", exact=True).first.click()
        step = officer.locator("#step-triage")
        step.get_by_label("Reason").select_option("urgent")
        step.get_by_label("Note for the file").fill("Patrol 7 is two minutes away.")
        step.get_by_role("button", name="Accept for review").click()
        officer.get_by_label("Message", exact=True).fill("Did you see where the man with the knife went?")
        officer.get_by_role("button", name="Send to the reporter").click()
        shot(officer, "reports-officer-en")

        # The citizen answers with the receipt.
        me.goto(live_url + "/reports/follow-up")
        me.get_by_label("Receipt").fill(receipt)
        me.get_by_role("button", name="Open my report").click()
        assert me.get_by_text("Did you see where the man with the knife went?").is_visible()
        me.get_by_label("Your answer or additional information").fill("Towards the university park, on foot.")
        me.get_by_role("button", name="Send", exact=True).click()
        assert me.get_by_text("Towards the university park, on foot.").is_visible()
        shot(me, "reports-follow-up-en")
        no_overflow(me)

        # The officer verifies, confirms with an outcome, and closes.
        officer.reload()
        assert officer.get_by_text("Towards the university park, on foot.").is_visible()
        for action, reason, note in (
            ("start_verification", "site_visit", "Patrol 7 on site."),
            ("confirm", "criminal_case", "Detained; knife seized."),
            ("close", "measures_taken", "Case file 2025-118."),
        ):
            officer.locator(f"#step-{action} summary").click()
            step = officer.locator(f"#step-{action}")
            step.get_by_label("Reason").select_option(reason)
            step.get_by_label("Note for the file").fill(note)
            if action == "confirm":
                step.get_by_label("Outcome for the reporter (optional)").fill(
                    "The man was detained and the knife seized. Thank you for your report."
                )
            step.locator("button[type=submit]").click()
            officer.wait_for_load_state()
        assert "Closed" in officer.locator(".rp-head").inner_text()
        shot(officer, "reports-officer-closed-en")

        # The citizen sees the outcome.
        me.goto(live_url + "/reports/follow-up")
        me.get_by_label("Receipt").fill(receipt)
        me.get_by_role("button", name="Open my report").click()
        assert "The man was detained and the knife seized." in me.get_by_test_id("outcome").inner_text()
        assert "Closed" in me.locator(".rp-head").inner_text()
        shot(me, "reports-outcome-en")
        no_overflow(me)
    finally:
        citizen.close()
        police.close()


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_report_pages_in_every_language_fit_a_phone(
    browser: Any, live_url: str, kernel: Any, demo: dict[str, Any], lang: str
) -> None:
    from qorgau.kernel.auth import services as auth

    sent = reports.do_submit_report(
        Ctx(kernel, None),
        reports.NewReport(
            category="traffic_violation", description=DESCRIPTION, region_code="almaty", address="Abai 71"
        ),
    )
    officer = auth.do_sign_in(kernel, "serik.police", demo["serik.police"].password).actor
    reports.do_send_report_message(Ctx(kernel, officer), sent.report_id, "question", "Which car? Plate number?")
    context = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    try:
        for path, name in (("/reports", "index"), ("/reports/new", "new"), ("/reports/follow-up", "follow-up")):
            page.goto(live_url + path)
            assert page.locator("html").get_attribute("lang") == lang
            shot(page, f"phone-reports-{name}-{lang}")
            no_overflow(page)
            unlabelled = page.evaluate(
                """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                     .filter(el => !el.labels || el.labels.length === 0).length"""
            )
            assert unlabelled == 0, path
        page.locator("#receipt").fill(sent.receipt or "")
        page.locator("form[action='/reports/follow-up/open'] button").click()
        assert page.get_by_text("Which car? Plate number?").is_visible()
        shot(page, f"phone-reports-reporter-{lang}")
        no_overflow(page)
        sign_in(page, live_url, "serik.police", demo["serik.police"].password)
        page.goto(live_url + "/police/reports")
        shot(page, f"phone-reports-queue-{lang}")
        no_overflow(page)
        page.goto(live_url + f"/police/reports/{sent.report_id}")
        shot(page, f"phone-reports-officer-{lang}")
        no_overflow(page)
    finally:
        context.close()
