"""Two officials of one agency chat in two browser windows and see each other's messages arrive live."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import no_overflow, on_every_engine, shot, sign_in

pytestmark = pytest.mark.browser

LIVE_MS = 5000


def send(page: Any, text: str) -> None:
    page.get_by_test_id("compose").locator("textarea").fill(text)
    page.get_by_test_id("send").click()


@on_every_engine
def test_two_officials_chat_live_in_two_windows(browser: Any, live_url: str, demo: dict[str, Any]) -> None:
    desk = browser.new_context(viewport={"width": 1280, "height": 860}, extra_http_headers={"Accept-Language": "en"})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": "en"})
    nurlan, aigerim = desk.new_page(), phone.new_page()
    try:
        sign_in(nurlan, live_url, "nurlan.official", demo["nurlan.official"].password)
        sign_in(aigerim, live_url, "aigerim.admin", demo["aigerim.admin"].password)
        aigerim.get_by_role("link", name="Messenger Chats").click()
        aigerim.wait_for_url(live_url + "/messenger")
        shot(aigerim, "messenger-empty-phone-en")
        no_overflow(aigerim)

        # Nurlan creates a room and invites Aigerim from the agency directory.
        nurlan.get_by_role("link", name="Messenger Chats").click()
        nurlan.get_by_test_id("new-chat").click()
        nurlan.get_by_label("Name", exact=True).fill("Digital services rollout")
        nurlan.get_by_label("Topic").fill("Weekly coordination")
        nurlan.get_by_test_id("create-room").get_by_label("Айгерим Сапарова").check()
        shot(nurlan, "messenger-new-en")
        nurlan.get_by_role("button", name="Create chat").click()
        nurlan.get_by_test_id("room-name").filter(has_text="Digital services rollout").wait_for()

        # The invitation appears in Aigerim's room list without a reload; she joins.
        invite = aigerim.get_by_test_id("rooms").get_by_role("link", name="Digital services rollout")
        invite.wait_for(timeout=LIVE_MS)
        assert "Invitation" in invite.inner_text()
        invite.click()
        aigerim.get_by_test_id("invitation").get_by_role("button", name="Join").click()
        aigerim.get_by_test_id("room-name").filter(has_text="Digital services rollout").wait_for()
        nurlan.get_by_test_id("timeline").get_by_text("Айгерим Сапарова joined").wait_for(timeout=LIVE_MS)

        # They exchange messages; each arrives live on the other side.
        send(nurlan, "Good morning! The new portal goes live on Monday.")
        aigerim.get_by_test_id("timeline").get_by_text("The new portal goes live on Monday.").wait_for(timeout=LIVE_MS)
        send(aigerim, "Great, I will inform the regional offices.")
        nurlan.get_by_test_id("timeline").get_by_text("I will inform the regional offices.").wait_for(timeout=LIVE_MS)

        # Aigerim replies to Nurlan's message; Nurlan corrects his own: both seen live.
        aigerim.locator(".mx-msg", has_text="goes live on Monday").get_by_role("button", name="Reply").click()
        assert "Replying to" in aigerim.get_by_test_id("compose-context").inner_text()
        send(aigerim, "Which regions first?")
        quote = nurlan.locator(".mx-msg", has_text="Which regions first?").locator(".mx-quote")
        quote.wait_for(timeout=LIVE_MS)
        assert "goes live on Monday" in quote.inner_text()
        nurlan.locator(".mx-msg--mine", has_text="goes live on Monday").hover()
        nurlan.locator(".mx-msg--mine", has_text="goes live on Monday").get_by_role("button", name="Edit").click()
        send(nurlan, "Good morning! The new portal goes live on Tuesday.")
        aigerim.get_by_test_id("timeline").get_by_text("goes live on Tuesday.").wait_for(timeout=LIVE_MS)
        assert aigerim.locator(".mx-msg", has_text="goes live on Tuesday.").locator(".mx-edited").count() == 1
        shot(nurlan, "messenger-room-desktop-en")
        shot(aigerim, "messenger-room-phone-en")
        no_overflow(aigerim)

        # Aigerim goes back to the list on her phone; Nurlan writes again: the unread count rises live.
        aigerim.get_by_role("link", name="Back to chats").click()
        aigerim.wait_for_url(live_url + "/messenger")
        send(nurlan, "Please confirm by Friday.")
        badge = aigerim.get_by_test_id("rooms").get_by_test_id("unread")
        badge.wait_for(timeout=LIVE_MS)
        assert badge.inner_text().strip() == "1"
        shot(aigerim, "messenger-list-phone-en")
        aigerim.get_by_test_id("rooms").get_by_role("link", name="Digital services rollout").click()
        aigerim.get_by_test_id("timeline").get_by_text("Please confirm by Friday.").wait_for()

        # Members; and a direct chat started from the directory.
        nurlan.get_by_test_id("members").locator("summary").click()
        panel = nurlan.get_by_test_id("members")
        panel.get_by_text("Invited").wait_for(state="detached", timeout=LIVE_MS)
        assert "Айгерим Сапарова" in panel.inner_text()
        shot(nurlan, "messenger-members-en")
        nurlan.goto(live_url + "/messenger/new")
        nurlan.get_by_test_id("directory").get_by_role("button", name="Message").first.click()
        nurlan.get_by_test_id("timeline").wait_for()
        assert "/messenger/rooms/" in nurlan.url

        # Deleting a message is seen live by the other side.
        nurlan.get_by_test_id("rooms").get_by_role("link", name="Digital services rollout").click()
        nurlan.once("dialog", lambda dialog: dialog.accept())
        own = nurlan.locator(".mx-msg--mine", has_text="Please confirm by Friday.")
        own.hover()
        own.get_by_role("button", name="Delete").click()
        aigerim.get_by_test_id("timeline").get_by_text("Message deleted").wait_for(timeout=LIVE_MS)

        # The other languages.
        for lang in ("kk", "ru"):
            for page in (nurlan, aigerim):
                page.locator(f"form[action='/lang'] button[value={lang}]").click()
                page.wait_for_load_state()
            shot(nurlan, f"messenger-room-desktop-{lang}")
            shot(aigerim, f"messenger-room-phone-{lang}")
            no_overflow(aigerim)
            aigerim.goto(live_url + "/messenger")
            shot(aigerim, f"messenger-list-phone-{lang}")
            aigerim.go_back()
    finally:
        desk.close()
        phone.close()


def test_a_photo_sent_in_the_browser_shows_in_the_other_window_and_search_finds_text(
    browser: Any, live_url: str, demo: dict[str, Any]
) -> None:
    import io

    from PIL import Image

    desk = browser.new_context(viewport={"width": 1280, "height": 860}, extra_http_headers={"Accept-Language": "en"})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": "en"})
    nurlan, aigerim = desk.new_page(), phone.new_page()
    try:
        sign_in(nurlan, live_url, "nurlan.official", demo["nurlan.official"].password)
        sign_in(aigerim, live_url, "aigerim.admin", demo["aigerim.admin"].password)
        for page in (nurlan, aigerim):
            page.locator("form.langs button[value=en]").click()
            page.wait_for_load_state()
        nurlan.goto(live_url + "/messenger/new")
        nurlan.get_by_label("Name", exact=True).fill("Site inspection")
        nurlan.get_by_test_id("create-room").get_by_label("Айгерим Сапарова").check()
        nurlan.get_by_role("button", name="Create chat").click()
        nurlan.get_by_test_id("room-name").filter(has_text="Site inspection").wait_for()
        aigerim.goto(live_url + "/messenger")
        aigerim.get_by_test_id("rooms").get_by_role("link", name="Site inspection").click()
        aigerim.get_by_test_id("invitation").get_by_role("button", name="Join").click()
        aigerim.get_by_test_id("room-name").filter(has_text="Site inspection").wait_for()

        photo = io.BytesIO()
        Image.new("RGB", (320, 200), (0, 95, 143)).save(photo, "JPEG")
        nurlan.get_by_label("Attach a file").set_input_files(
            files=[{"name": "facade.jpg", "mimeType": "image/jpeg", "buffer": photo.getvalue()}]
        )
        nurlan.get_by_test_id("attach").get_by_role("button", name="Send the file").click()
        nurlan.get_by_test_id("timeline").get_by_test_id("image").wait_for()
        image = aigerim.get_by_test_id("timeline").get_by_test_id("image")
        image.wait_for(timeout=LIVE_MS)
        image.scroll_into_view_if_needed()
        aigerim.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=LIVE_MS
        )
        shot(aigerim, "messenger-photo-phone-en")
        no_overflow(aigerim)

        send(nurlan, "The facade repair on Abay avenue is finished")
        aigerim.get_by_test_id("timeline").get_by_text("facade repair").wait_for(timeout=LIVE_MS)
        aigerim.goto(live_url + "/messenger/search?q=abay+facade")
        aigerim.get_by_test_id("search-results").get_by_text("The facade repair on Abay avenue").wait_for()
        shot(aigerim, "messenger-search-phone-en")
        no_overflow(aigerim)
    finally:
        desk.close()
        phone.close()


def test_the_new_room_form_offers_history_for_new_members_in_every_language(
    browser: Any, live_url: str, demo: dict[str, Any]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, live_url, "nurlan.official", demo["nurlan.official"].password)
        for lang in ("kk", "ru", "en"):
            page.locator(f"form.langs button[value={lang}]").click()
            page.wait_for_load_state()
            page.goto(live_url + "/messenger/new")
            choice = page.get_by_test_id("history-visibility")
            radios = choice.locator("input[type=radio][name=history_visibility]")
            assert radios.count() == 3, lang
            assert [radios.nth(i).get_attribute("value") for i in range(3)] == ["shared", "invited", "joined"]
            assert radios.nth(0).is_checked()
            assert choice.locator("legend").inner_text().strip()
            choice.scroll_into_view_if_needed()
            shot(page, f"messenger-new-history-{lang}")
            no_overflow(page)
        page.screenshot(path="/work/hv_new_room.png", full_page=True)
        assert "History for new members" in page.get_by_test_id("history-visibility").inner_text()
        page.get_by_label("Name", exact=True).fill("Closed inquiry")
        page.get_by_test_id("history-visibility").get_by_label("From when they join").check()
        page.get_by_role("button", name="Create chat").click()
        page.get_by_test_id("room-name").filter(has_text="Closed inquiry").wait_for()
        page.get_by_test_id("members").locator("summary").click()
        shown = page.get_by_test_id("members").get_by_test_id("history-visibility").inner_text()
        assert "From when they join" in shown
    finally:
        context.close()
