"""Officials use the messenger in the browser: the same rooms and events as their Matrix apps."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from qorgau.messenger import web as messenger_web
from tests.integration.messenger.conftest import Mx
from tests.integration.test_auth_http import csrf_from, sign_in


def signed_in(client: Any, demo: dict[str, Any], login: str) -> str:
    response = sign_in(client, login, demo[login].password)
    assert response.status_code in (302, 303), response.text[:300]
    return csrf_from(client.get("/account").text)


def room_path(room_id: str) -> str:
    return "/messenger/rooms/" + quote(room_id, safe="")


def create_room(client: Any, csrf: str, name: str, invite: list[str]) -> str:
    response = client.post(
        "/messenger/rooms", data={"_csrf": csrf, "name": name, "invite": invite}, follow_redirects=False
    )
    assert response.status_code == 303, response.text[:500]
    location = response.headers["location"]
    assert location.startswith("/messenger/rooms/")
    from urllib.parse import unquote

    return unquote(location.removeprefix("/messenger/rooms/"))


def test_official_creates_a_room_invites_a_colleague_and_they_talk(client: Any, app: Any, demo: dict[str, Any]) -> None:
    mx = Mx(client, demo)
    admin = mx.login("aigerim.admin")
    csrf = signed_in(client, demo, "nurlan.official")
    home = client.get("/")
    assert 'href="/messenger"' in home.text
    new = client.get("/messenger/new")
    assert new.status_code == 200 and "Айгерим Сапарова" in new.text
    room_id = create_room(client, csrf, "Цифровизация", [admin.user_id])

    page = client.get(room_path(room_id))
    assert page.status_code == 200 and "Цифровизация" in page.text
    sent = client.post(
        room_path(room_id) + "/send",
        data={"_csrf": csrf, "body": "Сәлеметсіз бе! Жоба бойынша", "txn": "t1"},
        headers={"X-Requested-With": "fetch"},
    )
    assert sent.status_code == 204
    # The same transaction id again (a double click) sends nothing new.
    client.post(room_path(room_id) + "/send", data={"_csrf": csrf, "body": "Сәлеметсіз бе! Жоба бойынша", "txn": "t1"})

    # The colleague, in a Matrix app: invited, joins, reads the browser's message and answers.
    sync = mx.ok("GET", "sync", admin)
    assert room_id in sync["rooms"]["invite"]
    mx.join(admin, room_id)
    history = mx.ok("GET", f"rooms/{room_id}/messages?dir=b&limit=20", admin)["chunk"]
    bodies = [e["content"].get("body") for e in history if e["type"] == "m.room.message"]
    assert bodies == ["Сәлеметсіз бе! Жоба бойынша"]
    mx.ok(
        "PUT", f"rooms/{room_id}/send/m.room.message/a1", admin, json={"msgtype": "m.text", "body": "Жақсы, келістік"}
    )

    # Back in the browser: the answer is in the timeline and counts as unread until viewed.
    listing = client.get("/messenger")
    assert "Цифровизация" in listing.text
    assert re.search(r'data-testid="unread"[^>]*>1<', listing.text), listing.text
    page = client.get(room_path(room_id))
    assert "Жақсы, келістік" in page.text and "Айгерим Сапарова" in page.text
    last = re.findall(r'data-event="([^"]+)"', page.text)[-1]
    read = client.post(
        room_path(room_id) + "/read", data={"_csrf": csrf, "event_id": last}, headers={"X-Requested-With": "fetch"}
    )
    assert read.status_code == 204
    assert 'data-testid="unread"' not in client.get("/messenger").text

    # Live updates: the timeline fragment after a position holds only what is new.
    stream = int(re.findall(r'data-last="(\d+)"', page.text)[0])
    assert client.get(room_path(room_id) + f"/timeline?after={stream}").text.strip() == ""
    mx.ok("PUT", f"rooms/{room_id}/send/m.room.message/a2", admin, json={"msgtype": "m.text", "body": "Тағы бір хабар"})
    fragment = client.get(room_path(room_id) + f"/timeline?after={stream}").text
    assert "Тағы бір хабар" in fragment and "Жақсы, келістік" not in fragment

    # Deleting one's own message; the colleague's Matrix app sees the redaction.
    mine = re.search(r'name="event_id" value="([^"]+)"', client.get(room_path(room_id)).text)
    assert mine
    deleted = client.post(room_path(room_id) + "/redact", data={"_csrf": csrf, "event_id": mine.group(1)})
    assert deleted.status_code == 200  # followed the redirect back to the room
    assert "Message deleted" in deleted.text or "Хабар жойылды" in deleted.text or "Сообщение удалено" in deleted.text
    event = mx.ok("GET", f"rooms/{room_id}/event/{mine.group(1)}", admin)
    assert event["content"] == {}


def test_replies_and_edits_are_matrix_relations(client: Any, demo: dict[str, Any]) -> None:
    mx = Mx(client, demo)
    admin = mx.login("aigerim.admin")
    nurlan = mx.login("nurlan.official")
    room_id = mx.room_with(admin, nurlan, name="Хаттар")
    asked = mx.ok(
        "PUT", f"rooms/{room_id}/send/m.room.message/q1", admin, json={"msgtype": "m.text", "body": "Есеп дайын ба?"}
    )
    csrf = signed_in(client, demo, "nurlan.official")
    path = room_path(room_id)
    fetch = {"X-Requested-With": "fetch"}
    client.post(
        path + "/send", data={"_csrf": csrf, "body": "Ертең дайын", "reply_to": asked["event_id"]}, headers=fetch
    )
    page = client.get(path).text
    assert 'class="mx-quote"' in page and "Есеп дайын ба?" in page
    answer = re.findall(r'<li class="mx-msg mx-msg--mine[^"]*" data-event="([^"]+)"', page)[-1]
    client.post(path + "/send", data={"_csrf": csrf, "body": "Бүгін кешке дайын", "edit": answer}, headers=fetch)

    history = mx.ok("GET", f"rooms/{room_id}/messages?dir=b&limit=5", admin)["chunk"]
    edit, reply = history[0]["content"], history[1]["content"]
    assert reply["m.relates_to"] == {"m.in_reply_to": {"event_id": asked["event_id"]}}
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": answer}
    assert edit["m.new_content"]["body"] == "Бүгін кешке дайын"

    page = client.get(path).text
    assert "Бүгін кешке дайын" in page and ">Ертең дайын<" not in page
    assert 'class="mx-edited"' in page
    # Someone else's "edit" of a message is not applied.
    mx.ok(
        "PUT",
        f"rooms/{room_id}/send/m.room.message/fake",
        admin,
        json={
            "msgtype": "m.text",
            "body": "* forged",
            "m.new_content": {"msgtype": "m.text", "body": "forged"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": answer},
        },
    )
    assert ">forged<" not in client.get(path).text


def test_invitation_is_accepted_in_the_browser_and_direct_chat_is_reused(client: Any, demo: dict[str, Any]) -> None:
    mx = Mx(client, demo)
    admin = mx.login("aigerim.admin")
    nurlan = mx.login("nurlan.official")
    room_id = mx.create_room(admin, name="Жедел топ", invite=[nurlan.user_id])
    csrf = signed_in(client, demo, "nurlan.official")
    invitation = client.get(room_path(room_id))
    assert invitation.status_code == 200 and 'data-testid="invitation"' in invitation.text
    joined = client.post(room_path(room_id) + "/join", data={"_csrf": csrf}, follow_redirects=False)
    assert joined.status_code == 303
    assert mx.ok("GET", f"rooms/{room_id}/joined_members", admin)["joined"].keys() == {admin.user_id, nurlan.user_id}

    first = client.post("/messenger/direct", data={"_csrf": csrf, "user_id": admin.user_id}, follow_redirects=False)
    second = client.post("/messenger/direct", data={"_csrf": csrf, "user_id": admin.user_id}, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]


def test_live_stream_names_changed_rooms_and_resumes_from_last_event_id(
    client: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messenger_web, "STREAM_SECONDS", 0.3)
    mx = Mx(client, demo)
    admin = mx.login("aigerim.admin")
    nurlan = mx.login("nurlan.official")
    room_id = mx.room_with(admin, nurlan, name="Тікелей")
    signed_in(client, demo, "nurlan.official")
    text = client.get("/messenger/events", headers={"Last-Event-ID": "0"}).text
    assert "event: rooms" in text and room_id in text
    ids = [int(i) for i in re.findall(r"^id: ?(\d+)", text, re.M)]
    latest = max(ids)
    quiet = client.get("/messenger/events", headers={"Last-Event-ID": str(latest)}).text
    assert "event: rooms" not in quiet


def test_people_outside_the_room_and_non_officials_are_refused(client: Any, demo: dict[str, Any]) -> None:
    mx = Mx(client, demo)
    admin = mx.login("aigerim.admin")
    room_id = mx.create_room(admin, name="Закрытая")
    csrf = signed_in(client, demo, "nurlan.official")
    assert client.get(room_path(room_id), headers={"Accept": "text/html"}).status_code == 403
    assert client.get(room_path(room_id) + "/timeline?after=0").status_code == 403
    sent = client.post(room_path(room_id) + "/send", data={"_csrf": csrf, "body": "x"})
    assert sent.status_code == 403
    assert not client.post(room_path(room_id) + "/send", data={"body": "no csrf"}).is_success


NON_OFFICIALS = ["admin", "asel.owner", "bolat.guard", "kairat.operator", "850808301077"]
ROOM_POSTS = ["send", "redact", "read", "join", "leave", "invite"]


@pytest.mark.parametrize("login", NON_OFFICIALS)
def test_only_officials_of_an_agency_use_the_messenger(client: Any, demo: dict[str, Any], login: str) -> None:
    mx = Mx(client, demo)
    admin = mx.login("aigerim.admin")
    room_id = mx.create_room(admin, name="Ішкі")
    csrf = signed_in(client, demo, login)
    assert 'href="/messenger"' not in client.get("/").text
    for path in ("/messenger", "/messenger/new", "/messenger/list", room_path(room_id), "/messenger/events"):
        assert client.get(path, headers={"Accept": "text/html"}).status_code == 403, path
    data = {"_csrf": csrf, "name": "x", "body": "x", "event_id": "$x", "user_id": admin.user_id}
    for path in ["/messenger/rooms", "/messenger/direct", *[f"{room_path(room_id)}/{p}" for p in ROOM_POSTS]]:
        assert client.post(path, data=data, follow_redirects=False).status_code == 403, path
    assert mx.ok("GET", f"rooms/{room_id}/joined_members", admin)["joined"].keys() == {admin.user_id}


def test_anonymous_visitors_are_sent_to_sign_in(client: Any) -> None:
    response = client.get("/messenger", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]


def test_static_assets_are_served(client: Any) -> None:
    assert client.get("/static/messenger/messenger.js").status_code == 200
    assert client.get("/static/messenger/messenger.css").status_code == 200
    assert client.get("/static/qorgau.css").status_code == 200


def test_a_file_sent_from_the_browser_reaches_members_only_and_search_finds_messages(
    client: Any, app: Any, demo: dict[str, Any]
) -> None:
    import io

    from PIL import Image

    mx = Mx(client, demo)
    dana = mx.login("dana.official")
    csrf = signed_in(client, demo, "nurlan.official")
    room_id = create_room(client, csrf, "Фотоотчёт", [dana.user_id])
    mx.join(dana, room_id)
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (43.0, 15.0, 30.0), 3: "E", 4: (76.0, 57.0, 0.0)}
    Image.new("RGB", (64, 48), (0, 95, 143)).save(photo, "JPEG", exif=exif)
    sent = client.post(
        room_path(room_id) + "/attach",
        data={"_csrf": csrf, "txn": "f1"},
        files={"file": ("объект.jpg", photo.getvalue(), "image/jpeg")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text[:300]
    history = mx.ok("GET", f"rooms/{room_id}/messages?dir=b&limit=5", dana)["chunk"]
    image = next(e for e in history if e["type"] == "m.room.message")
    assert image["content"]["msgtype"] == "m.image" and image["content"]["body"] == "объект.jpg"
    assert image["content"]["info"]["w"] == 64 and image["content"]["info"]["mimetype"] == "image/jpeg"
    media_id = image["content"]["url"].rsplit("/", 1)[1]

    page = client.get(room_path(room_id))
    assert f'src="/messenger/media/{media_id}?thumb=1"' in page.text
    full = client.get(f"/messenger/media/{media_id}")
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg" and b"Exif" not in full.content
    assert client.get(f"/messenger/media/{media_id}?thumb=1").status_code == 200
    # The member in a Matrix app may download it; an official outside the room may not.
    assert (
        mx.request("GET", f"/_matrix/client/v1/media/download/{image['content']['url'][6:]}", dana).status_code == 200
    )
    outsider = mx.login("aigerim.admin")
    assert (
        mx.request("GET", f"/_matrix/client/v1/media/download/{image['content']['url'][6:]}", outsider).status_code
        == 404
    )
    no_file = client.post(room_path(room_id) + "/attach", data={"_csrf": csrf}, follow_redirects=False)
    assert no_file.status_code == 400

    client.post(
        room_path(room_id) + "/send", data={"_csrf": csrf, "body": "Отчёт по объекту на Абая готов", "txn": "s1"}
    )
    found = client.get("/messenger/search", params={"q": "абая отчёт"})
    assert found.status_code == 200 and "Отчёт по объекту на Абая готов" in found.text and "Фотоотчёт" in found.text
    nothing = client.get("/messenger/search", params={"q": "несуществующее"})
    assert 'data-testid="no-results"' in nothing.text
