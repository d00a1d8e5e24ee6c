"""A person signs in, switches the interface to Kazakh, checks a ledger entry, and signs out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import shot

pytestmark = pytest.mark.browser


def test_official_signs_in_switches_to_kazakh_and_signs_out(page: Any, live_url: str, demo: dict[str, Any]) -> None:
    account = demo["nurlan.official"]
    page.goto(live_url + "/")
    page.get_by_role("button", name="English").click()
    shot(page, "landing-en")
    page.get_by_role("link", name="Sign in").first.click()
    page.get_by_label("Username or IIN").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_url + "/")
    assert page.get_by_text("Нұрлан Ахметов").first.is_visible()
    shot(page, "home-en")

    page.get_by_role("button", name="Қазақша").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "kk"
    assert page.get_by_role("button", name="Шығу").is_visible()  # "Sign out" in Kazakh
    shot(page, "home-kk")

    page.get_by_role("button", name="Русский").click()
    page.wait_for_load_state()
    assert page.get_by_role("button", name="Выйти").is_visible()
    shot(page, "home-ru")

    page.get_by_role("button", name="Выйти").click()
    page.wait_for_url(live_url + "/")
    assert page.get_by_role("link", name="Войти").first.is_visible()


def test_anyone_checks_an_entry_in_the_browser(page: Any, live_url: str, kernel: Any, demo: dict[str, Any]) -> None:
    kernel.ledger.sign_if_grown(force=True)
    page.goto(live_url + "/transparency")
    page.get_by_role("button", name="English").click()
    page.get_by_label("Entry number").fill("2")
    page.get_by_role("button", name="Check inclusion").click()
    verdict = page.get_by_test_id("browser-verdict")
    verdict.wait_for()
    page.wait_for_function("document.getElementById('browser-verdict').dataset.result !== undefined")
    assert verdict.get_attribute("data-result") == "ok"
    assert "Included" in page.get_by_test_id("server-verdict").inner_text()
    shot(page, "transparency-en")


def test_login_error_is_shown_in_russian(page: Any, live_url: str, demo: dict[str, Any]) -> None:
    page.goto(live_url + "/login")
    page.get_by_role("button", name="Русский").click()
    page.get_by_label("Имя пользователя или ИИН").fill("nurlan.official")
    page.get_by_label("Пароль").fill("wrong-password")
    page.get_by_role("button", name="Войти").click()
    assert page.get_by_role("alert").is_visible()
    shot(page, "login-error-ru")


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_pages_fit_a_phone_screen_in_every_language(
    browser: Any, live_url: str, demo: dict[str, Any], lang: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    try:
        for path in ("/", "/login", "/signup", "/transparency?index=1"):
            page.goto(live_url + path)
            assert page.locator("html").get_attribute("lang") == lang
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (path, overflow)
            # Every form field has a visible label (accessibility).
            unlabelled = page.evaluate(
                """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                     .filter(el => !el.labels || el.labels.length === 0).length"""
            )
            assert unlabelled == 0, path
        shot(page, f"phone-transparency-{lang}")
        page.goto(live_url + "/signup")
        shot(page, f"phone-signup-{lang}")
    finally:
        context.close()
