"""An agency admin invites an official by link; the official opens it in their own browser, sets a
password and lands in the messenger; the admin's onboarding dashboard shows them joined."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import no_overflow, on_every_engine, shot, sign_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
WORDS = {
    "en": {"invite": "Create account and get link", "set": "Set password and sign in", "joined": "Joined"},
    "ru": {"invite": "Создать учётную запись и получить ссылку", "set": "Задать пароль и войти", "joined": "Подключён"},
    "kk": {"invite": "Тіркелгі жасап, сілтеме алу", "set": "Құпиясөзді орнатып, кіру", "joined": "Қосылды"},
}


@on_every_engine
@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_admin_invites_official_who_joins_by_link(browser: Any, live_url: str, demo: dict[str, Any], lang: str) -> None:
    words = WORDS[lang]
    headers = {"Accept-Language": lang}
    admin_ctx = browser.new_context(
        viewport=DESKTOP, extra_http_headers=headers, permissions=["clipboard-read", "clipboard-write"]
    )
    person_ctx = browser.new_context(viewport=PHONE, extra_http_headers=headers)
    admin, person = admin_ctx.new_page(), person_ctx.new_page()
    try:
        sign_in(admin, live_url, "aigerim.admin", demo["aigerim.admin"].password)
        admin.goto(live_url + "/admin/users")
        admin.locator("#inv-name").fill("Бота Қасымова")
        admin.locator("#inv-username").fill("bota.kassymova")
        admin.get_by_role("button", name=words["invite"]).click()
        admin.get_by_test_id("new-invite").wait_for()
        link = admin.get_by_test_id("invite-link").input_value()
        assert link.startswith(live_url + "/invite/")
        admin.get_by_test_id("copy-invite").click()
        assert admin.evaluate("navigator.clipboard.readText()") == link
        shot(admin, f"onboarding-invite-link-desktop-{lang}")
        no_overflow(admin)

        # The official's own phone: a separate browser with no session.
        person.goto(link)
        assert person.get_by_test_id("invite-username").inner_text() == "bota.kassymova"
        shot(person, f"onboarding-set-password-phone-{lang}")
        no_overflow(person)
        person.locator("#password").fill("bota-strong-password")
        person.locator("#password_confirm").fill("bota-strong-password")
        person.get_by_role("button", name=words["set"]).click()
        person.wait_for_url(live_url + "/messenger")
        person.get_by_test_id("messenger").wait_for()
        shot(person, f"onboarding-joined-messenger-phone-{lang}")
        no_overflow(person)

        # The link is spent: opening it again explains so, with a way to sign in.
        person.goto(link)
        assert person.get_by_test_id("invite-invalid").is_visible()
        shot(person, f"onboarding-link-used-phone-{lang}")

        admin.goto(live_url + "/admin/onboarding")
        row = admin.get_by_test_id("ob-row-bota.kassymova")
        assert row.get_attribute("data-status") == "joined"
        assert words["joined"] in row.inner_text()
        # The demo agency still has two officials missing, listed first.
        assert admin.get_by_test_id("ob-missing").inner_text().strip() == "2"
        first = admin.get_by_test_id("ob-table").locator("tbody tr").first
        assert first.get_attribute("data-status") in ("expired", "pending", "not_invited")
        shot(admin, f"onboarding-dashboard-desktop-{lang}")
        no_overflow(admin)
        admin.set_viewport_size(PHONE)
        admin.reload()
        shot(admin, f"onboarding-dashboard-phone-{lang}")
        no_overflow(admin)
        admin.goto(live_url + "/admin/users")
        shot(admin, f"onboarding-accounts-phone-{lang}")
        no_overflow(admin)
    finally:
        admin_ctx.close()
        person_ctx.close()
