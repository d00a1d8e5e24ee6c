"""Letters and notices in the browser: one agency writes, another answers; an admin's notice is confirmed live."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from PIL import Image

from tests.browser.conftest import no_overflow, on_every_engine, shot, sign_in

pytestmark = pytest.mark.browser

LIVE_MS = 5000


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 95, 143)).save(out, "PNG")
    return out.getvalue()


@on_every_engine
def test_a_letter_goes_from_one_agency_to_another_and_is_answered(
    browser: Any, live_url: str, demo: dict[str, Any]
) -> None:
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers={"Accept-Language": "en"})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": "ru"})
    nurlan, dana = desk.new_page(), phone.new_page()
    try:
        sign_in(nurlan, live_url, "nurlan.official", demo["nurlan.official"].password)
        _english(nurlan)
        nurlan.goto(live_url + "/messenger")
        nurlan.get_by_test_id("nav-letters").click()
        nurlan.get_by_test_id("new-letter").click()
        nurlan.get_by_label("Almaty City Akimat").check()
        nurlan.get_by_label("Subject").fill("Connecting staff to the national messenger")
        nurlan.get_by_label("Text of the letter").fill("Please connect all staff by 1 March and report the numbers.")
        nurlan.get_by_label("Answer due by").fill((date.today() + timedelta(days=14)).isoformat())
        nurlan.get_by_label("Attachments").set_input_files(
            files=[{"name": "schedule.png", "mimeType": "image/png", "buffer": _png()}]
        )
        shot(nurlan, "letter-new-en")
        nurlan.get_by_test_id("register").click()
        nurlan.get_by_test_id("registered").wait_for()
        number = nurlan.get_by_test_id("reg-number").inner_text()
        assert re.fullmatch(r"№ УЦА-\d{4}/000001", number), number
        shot(nurlan, "letter-sent-en")

        # The addressee agency, on a phone in Russian: the registry shows it, opening it reads it.
        sign_in(dana, live_url, "dana.official", demo["dana.official"].password)
        dana.locator("form.langs button[value=ru]").click()
        dana.wait_for_load_state()
        dana.goto(live_url + "/messenger")
        dana.get_by_test_id("nav-letters").click()
        row = dana.get_by_test_id("letter-row").filter(has_text="Connecting staff")
        row.wait_for()
        shot(dana, "letters-registry-phone-ru")
        no_overflow(dana)
        row.get_by_role("link").first.click()
        dana.get_by_test_id("letter-body").filter(has_text="by 1 March").wait_for()
        assert dana.get_by_role("link", name="schedule.png").is_visible()
        shot(dana, "letter-phone-ru")
        no_overflow(dana)
        dana.get_by_test_id("reply").click()
        assert dana.get_by_label("Тема").input_value().startswith("Re: Connecting staff")
        dana.get_by_label("Текст письма").fill("Подключим всех сотрудников до 20 февраля.")
        dana.get_by_test_id("register").click()
        dana.get_by_test_id("registered").wait_for()

        # The sender sees the route: delivered, read, answered with a link to the answer.
        nurlan.reload()
        route = nurlan.get_by_test_id("route")
        assert "Answered" in route.inner_text()
        route.get_by_role("link").click()
        nurlan.get_by_test_id("letter-body").filter(has_text="до 20 февраля").wait_for()
    finally:
        desk.close()
        phone.close()


def _english(page: Any) -> None:
    """Demo officials prefer Kazakh; switch this session to English with the page's own switcher."""
    page.locator("form.langs button[value=en]").click()
    page.wait_for_load_state()


@on_every_engine
def test_an_admins_notice_is_confirmed_and_the_share_updates_live(
    browser: Any, live_url: str, demo: dict[str, Any]
) -> None:
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers={"Accept-Language": "en"})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": "kk"})
    aigerim, dana = desk.new_page(), phone.new_page()
    try:
        sign_in(aigerim, live_url, "aigerim.admin", demo["aigerim.admin"].password)
        _english(aigerim)
        aigerim.goto(live_url + "/messenger/notices/new")
        aigerim.get_by_label("Title").fill("Transition to the national messenger")
        aigerim.get_by_label("Text", exact=True).fill(
            "All officials join Qorgau by 1 March. Foreign messengers only for personal use."
        )
        aigerim.get_by_label("Almaty City Akimat").check()
        aigerim.get_by_label("Astana City Digitalisation Department").check()
        aigerim.get_by_label("Official", exact=True).check()
        shot(aigerim, "notice-new-en")
        aigerim.get_by_test_id("send-notice").click()
        total = aigerim.get_by_test_id("total")
        total.wait_for()
        assert total.get_attribute("data-confirmed") == "0"

        sign_in(dana, live_url, "dana.official", demo["dana.official"].password)
        dana.goto(live_url + "/messenger")
        assert dana.get_by_test_id("nav-notices").locator(".mx-unread").inner_text() == "1"
        dana.get_by_test_id("nav-notices").click()
        notice = dana.get_by_test_id("notice").filter(has_text="Transition to the national messenger")
        shot(dana, "notices-phone-kk")
        no_overflow(dana)
        notice.get_by_test_id("confirm").click()
        dana.get_by_test_id("confirmed").wait_for()

        # Without a reload, the sender's page counts the confirmation.
        aigerim.locator("[data-testid=total][data-confirmed='1']").wait_for(timeout=LIVE_MS)
        shot(aigerim, "notice-tracking-en")
    finally:
        desk.close()
        phone.close()


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_office_pages_fit_a_phone_in_every_language(
    browser: Any, live_url: str, demo: dict[str, Any], lang: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    try:
        sign_in(page, live_url, "aigerim.admin", demo["aigerim.admin"].password)
        # A room of the agency, so that the records page has a row to show.
        page.goto(live_url + "/messenger/new")
        page.locator("#room-name").fill("Qorgau rollout")
        page.get_by_test_id("create-room").locator("button[type=submit]").click()
        page.get_by_test_id("room-name").wait_for()
        page.locator(f"form.langs button[value={lang}]").click()
        page.wait_for_load_state()
        for path, name in (
            ("/messenger/letters", "letters"),
            ("/messenger/letters/new", "letter-new"),
            ("/messenger/notices", "notices"),
            ("/messenger/notices/new", "notice-new"),
            ("/messenger/notices/sent", "notices-sent"),
            ("/messenger/compliance", "compliance"),
        ):
            page.goto(live_url + path)
            assert page.locator("html").get_attribute("lang") == lang
            no_overflow(page)
            unlabeled = page.evaluate(
                """() => [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
                     .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"""
            )
            assert unlabeled == [], (path, unlabeled)
            shot(page, f"phone-{name}-{lang}")
    finally:
        context.close()
