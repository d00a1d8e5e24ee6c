"""m.room.history_visibility: what a member who comes later sees of a room's history.

Nurlan writes before he invites Dana, between the invitation and her join, and after it. Dana reads the
room through every way history is read (/messages both ways and paged, /event, /context, /sync, /search,
the web timeline, her export) and sees exactly what the setting in force at each event allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.messenger.conftest import Mx, User, texts
from tests.integration.messenger.test_compliance import export, unzip
from tests.integration.messenger.test_letters import As
from tests.integration.messenger.test_web import create_room, room_path, signed_in

HV = "m.room.history_visibility"
WORD = "жоспар"  # in every message, so one search finds them all


def hv_state(value: str) -> dict[str, Any]:
    return {"type": HV, "state_key": "", "content": {"history_visibility": value}}


@dataclass
class Story:
    room_id: str
    nurlan: User
    dana: User
    ids: dict[str, str]  # message body -> event id


def say(mx: Mx, user: User, room_id: str, label: str, ids: dict[str, str]) -> None:
    ids[label] = mx.send(user, room_id, f"{label} {WORD}")


def story(mx: Mx, setting: str) -> Story:
    """Messages before Dana's invitation, while she is invited, and after she joined."""
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room_id = mx.create_room(nurlan, name="Жоба", initial_state=[hv_state(setting)])
    ids: dict[str, str] = {}
    say(mx, nurlan, room_id, "before", ids)
    mx.ok("POST", f"rooms/{room_id}/invite", nurlan, json={"user_id": dana.user_id})
    say(mx, nurlan, room_id, "invited", ids)
    mx.join(dana, room_id)
    say(mx, nurlan, room_id, "joined", ids)
    return Story(room_id, nurlan, dana, ids)


EXPECTED = {
    "shared": ["before", "invited", "joined"],
    "world_readable": ["before", "invited", "joined"],
    "invited": ["invited", "joined"],
    "joined": ["joined"],
}


def labels(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"].split()[0] for e in events if e["type"] == "m.room.message"]


def page_through(mx: Mx, user: User, room_id: str, direction: str, limit: int) -> list[dict[str, Any]]:
    """Every event /messages gives, page by page; each page but the last is full (exact limits)."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"dir": direction, "limit": limit}
    for _ in range(100):
        page = mx.ok("GET", f"rooms/{room_id}/messages", user, params=params)
        found.extend(page["chunk"])
        if "end" not in page:
            assert len(page["chunk"]) < limit
            return found if direction == "f" else list(reversed(found))
        assert len(page["chunk"]) == limit
        params["from"] = page["end"]
    raise AssertionError("no end to the pages")


def search_labels(mx: Mx, user: User, **spec: Any) -> list[dict[str, Any]]:
    body = {"search_categories": {"room_events": {"search_term": WORD, "keys": ["content.body"], **spec}}}
    return mx.ok("POST", "search", user, json=body)["search_categories"]["room_events"]["results"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("setting", ["shared", "world_readable", "invited", "joined"])
def test_a_new_member_reads_what_the_setting_allows(mx: Mx, setting: str) -> None:
    s = story(mx, setting)
    dana, room = s.dana, s.room_id
    expected = EXPECTED[setting]
    hidden = [k for k in s.ids if k not in expected]

    for limit in (1, 2, 50):
        backwards = page_through(mx, dana, room, "b", limit)
        forwards = page_through(mx, dana, room, "f", limit)
        assert labels(backwards) == labels(forwards) == expected, (limit, setting)
        assert [e["event_id"] for e in backwards] == [e["event_id"] for e in forwards]
    everything = page_through(mx, dana, room, "f", 50)
    types = [e["type"] for e in everything]
    # Her own join is hers to see. The events before the room's first setting (its creation) fall
    # under the specification's default, shared; the setting's own event falls under itself.
    assert any(e["type"] == "m.room.member" and e["state_key"] == dana.user_id for e in everything)
    assert "m.room.create" in types
    assert (HV in types) == (setting in ("shared", "world_readable"))
    # The sender sees everything.
    assert labels(page_through(mx, s.nurlan, room, "b", 2)) == ["before", "invited", "joined"]

    for label, event_id in s.ids.items():
        path = f"rooms/{room}/event/{quote(event_id)}"
        ctx_path = f"rooms/{room}/context/{quote(event_id)}"
        if label in expected:
            assert mx.ok("GET", path, dana)["event_id"] == event_id
            around = mx.ok("GET", ctx_path, dana, params={"limit": 20})
            assert around["event"]["event_id"] == event_id
            seen = [*labels(around["events_before"][::-1]), label, *labels(around["events_after"])]
            assert seen == expected
        else:
            mx.error("GET", path, dana, 404, "M_NOT_FOUND")
            mx.error("GET", ctx_path, dana, 404, "M_NOT_FOUND")

    # The first sync after joining (no since) and an incremental one across the join.
    assert texts(mx.sync(dana), room) == [f"{k} {WORD}" for k in expected]
    found = search_labels(mx, dana, event_context={"before_limit": 5, "after_limit": 5})
    assert sorted(labels([r["result"] for r in found])) == sorted(expected)
    for r in found:
        context = r["context"]
        assert not set(labels(context["events_before"] + context["events_after"])) & set(hidden)
    # The current state stays visible (it is the room's present, not its history).
    state = mx.ok("GET", f"rooms/{room}/state", dana)
    assert {e["type"] for e in state} >= {"m.room.create", HV, "m.room.name"}


@pytest.mark.parametrize("setting", ["shared", "invited", "joined"])
def test_the_first_sync_after_joining_shows_only_visible_history(mx: Mx, setting: str) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room_id = mx.create_room(nurlan, name="Жоба", initial_state=[hv_state(setting)])
    ids: dict[str, str] = {}
    for n in range(3):
        say(mx, nurlan, room_id, f"before{n}", ids)
    since = mx.sync(dana)["next_batch"]
    mx.ok("POST", f"rooms/{room_id}/invite", nurlan, json={"user_id": dana.user_id})
    invited = mx.sync(dana, since=since)
    assert room_id in invited["rooms"]["invite"]
    say(mx, nurlan, room_id, "invited", ids)
    mx.join(dana, room_id)
    say(mx, nurlan, room_id, "joined", ids)
    answer = mx.sync(dana, since=invited["next_batch"], filter={"room": {"timeline": {"limit": 2}}})
    section = answer["rooms"]["join"][room_id]
    shown = [e["content"]["body"].split()[0] for e in section["timeline"]["events"] if e["type"] == "m.room.message"]
    all_visible = {"shared": ["before0", "before1", "before2", "invited", "joined"], "invited": ["invited", "joined"]}
    visible = all_visible.get(setting, ["joined"])
    assert shown == [v for v in visible if v in shown] and shown[-1] == "joined"
    # Paging back from prev_batch goes on with visible history only, and ends.
    rest = page_through_from(mx, dana, room_id, section["timeline"]["prev_batch"])
    assert labels(rest) + shown == visible
    # Unread counts leave hidden messages out.
    assert section["unread_notifications"]["notification_count"] == len(visible)


def page_through_from(mx: Mx, user: User, room_id: str, token: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"dir": "b", "limit": 1, "from": token}
    while True:
        page = mx.ok("GET", f"rooms/{room_id}/messages", user, params=params)
        found.extend(page["chunk"])
        if "end" not in page:
            return list(reversed(found))
        params["from"] = page["end"]


def test_a_change_of_setting_governs_the_events_after_it_only(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room_id = mx.create_room(nurlan, name="Жоба")
    ids: dict[str, str] = {}
    say(mx, nurlan, room_id, "shared1", ids)
    mx.ok("PUT", f"rooms/{room_id}/state/{HV}/", nurlan, json={"history_visibility": "joined"})
    say(mx, nurlan, room_id, "joined1", ids)
    mx.ok("POST", f"rooms/{room_id}/invite", nurlan, json={"user_id": dana.user_id})
    say(mx, nurlan, room_id, "joined2", ids)
    mx.join(dana, room_id)
    say(mx, nurlan, room_id, "joined3", ids)
    mx.ok("PUT", f"rooms/{room_id}/state/{HV}/", nurlan, json={"history_visibility": "shared"})
    say(mx, nurlan, room_id, "shared2", ids)
    expected = ["shared1", "joined3", "shared2"]
    assert labels(page_through(mx, dana, room_id, "b", 1)) == expected
    assert labels(page_through(mx, dana, room_id, "f", 2)) == expected
    assert texts(mx.sync(dana), room_id) == [f"{k} {WORD}" for k in expected]
    assert sorted(labels([r["result"] for r in search_labels(mx, dana)])) == sorted(expected)
    mx.error("GET", f"rooms/{room_id}/event/{quote(ids['joined2'])}", dana, 404, "M_NOT_FOUND")
    # Going back to shared did not reveal what was sent under joined.
    assert mx.ok("GET", f"rooms/{room_id}/state/{HV}/", dana) == {"history_visibility": "shared"}


def test_under_joined_what_happens_while_away_stays_hidden(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room_id = mx.room_with(nurlan, dana, name="Жоба", initial_state=[hv_state("joined")])
    ids: dict[str, str] = {}
    say(mx, nurlan, room_id, "first", ids)
    say(mx, dana, room_id, "mine", ids)
    mx.ok("POST", f"rooms/{room_id}/leave", dana, json={})
    say(mx, nurlan, room_id, "away", ids)
    mx.ok("POST", f"rooms/{room_id}/invite", nurlan, json={"user_id": dana.user_id})
    say(mx, nurlan, room_id, "reinvited", ids)
    mx.join(dana, room_id)
    say(mx, nurlan, room_id, "back", ids)
    expected = ["first", "mine", "back"]
    for limit in (1, 3):
        assert labels(page_through(mx, dana, room_id, "b", limit)) == expected
        assert labels(page_through(mx, dana, room_id, "f", limit)) == expected
    assert texts(mx.sync(dana), room_id) == [f"{k} {WORD}" for k in expected]
    mx.error("GET", f"rooms/{room_id}/event/{quote(ids['away'])}", dana, 404, "M_NOT_FOUND")
    assert sorted(labels([r["result"] for r in search_labels(mx, dana)])) == sorted(expected)


def test_a_member_always_sees_their_own_events(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room_id = mx.room_with(nurlan, dana, name="Жоба", initial_state=[hv_state("joined")])
    ids: dict[str, str] = {}
    say(mx, dana, room_id, "hers", ids)
    mx.ok("POST", f"rooms/{room_id}/leave", dana, json={})
    say(mx, nurlan, room_id, "away", ids)
    mx.ok("POST", f"rooms/{room_id}/invite", nurlan, json={"user_id": dana.user_id})
    mx.join(dana, room_id)
    assert labels(page_through(mx, dana, room_id, "b", 1)) == ["hers"]


def test_only_the_four_values_are_accepted(mx: Mx) -> None:
    nurlan = mx.login("nurlan.official")
    room_id = mx.create_room(nurlan, name="Жоба", initial_state=[hv_state("invited")])
    path = f"rooms/{room_id}/state/{HV}/"
    for bad in ("everyone", "", None, 1, ["joined"]):
        body = mx.error("PUT", path, nurlan, 400, "M_BAD_JSON", json={"history_visibility": bad})
        assert "history_visibility" in body["error"] and "joined" in body["error"]
    mx.error("PUT", path, nurlan, 400, "M_BAD_JSON", json={})
    assert mx.ok("GET", path, nurlan) == {"history_visibility": "invited"}
    mx.error("POST", "createRoom", nurlan, 400, "M_BAD_JSON", json={"initial_state": [hv_state("public")]})
    for good in ("world_readable", "shared", "joined", "invited"):
        mx.ok("PUT", path, nurlan, json={"history_visibility": good})
        assert mx.ok("GET", path, nurlan) == {"history_visibility": good}


def test_the_web_app_hides_the_same_history_and_offers_the_choice(mx: Mx, client: Any, demo: dict[str, Any]) -> None:
    dana = mx.login("dana.official")
    csrf = signed_in(client, demo, "nurlan.official")
    new = client.get("/messenger/new")
    assert new.status_code == 200
    assert 'name="history_visibility" value="shared" checked' in new.text
    assert 'value="invited"' in new.text and 'value="joined"' in new.text
    response = client.post(
        "/messenger/rooms",
        data={"_csrf": csrf, "name": "Құпия жоба", "invite": [dana.user_id], "history_visibility": "joined"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    from urllib.parse import unquote

    room_id = unquote(response.headers["location"].removeprefix("/messenger/rooms/"))
    nurlan = mx.login("nurlan.official")
    assert mx.ok("GET", f"rooms/{room_id}/state/{HV}/", nurlan) == {"history_visibility": "joined"}
    page = client.get(room_path(room_id))
    assert "Қосылған сәттен бастап" in page.text  # "From when they join", in the official's Kazakh
    mx.send(nurlan, room_id, "ерте хабар")
    mx.join(dana, room_id)
    mx.send(nurlan, room_id, "кейінгі хабар")
    # A value outside the four is refused.
    refused = client.post("/messenger/rooms", data={"_csrf": csrf, "name": "X", "history_visibility": "all"})
    assert refused.status_code == 400
    # A room created without choosing is shared.
    shared = create_room(client, csrf, "Ашық жоба", [])
    assert mx.ok("GET", f"rooms/{shared}/state/{HV}/", nurlan) == {"history_visibility": "shared"}

    client.cookies.clear()
    signed_in(client, demo, "dana.official")
    page = client.get(room_path(room_id))
    assert page.status_code == 200
    assert "кейінгі хабар" in page.text and "ерте хабар" not in page.text
    assert "Қосылған сәттен бастап" in page.text  # "From when they join", in the official's Kazakh
    listing = client.get("/messenger")
    assert "ерте хабар" not in listing.text
    after_zero = client.get(room_path(room_id) + "/timeline", params={"after": 0})
    assert "кейінгі хабар" in after_zero.text and "ерте хабар" not in after_zero.text
    found = client.get("/messenger/search", params={"q": "хабар"})
    assert "кейінгі хабар" in found.text and "ерте хабар" not in found.text


def test_a_members_export_leaves_hidden_history_out_the_security_officers_does_not(
    mx: Mx, client: Any, demo: dict[str, Any]
) -> None:
    s = story(mx, "joined")
    member = unzip(export(As(client, demo, "dana.official"), s.room_id))
    events = json.loads(member["events.json"])
    assert labels(events) == ["joined"]
    officer = unzip(export(As(client, demo, "erlan.security"), s.room_id))
    assert labels(json.loads(officer["events.json"])) == ["before", "invited", "joined"]
