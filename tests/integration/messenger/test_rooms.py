"""Rooms over the Matrix API: creation, membership decisions (in the ledger), state and power levels."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from tests.integration.messenger.conftest import SERVER, Mx, mxid, texts


def _ledger_actions(kernel: Any) -> list[str]:
    with kernel.db.read() as conn:
        leaves = conn.execute(sa.text("SELECT leaf FROM ledger_entries ORDER BY leaf_index")).scalars().all()
    return [json.loads(bytes(leaf))["action"] for leaf in leaves]


def test_room_creation_and_membership_decisions_are_in_the_ledger_but_messages_are_not(mx: Mx, kernel: Any) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    before = _ledger_actions(kernel)
    room = mx.room_with(nurlan, dana, name="Хаттар")
    for i in range(3):
        mx.send(nurlan, room, f"хабар {i}")
    mx.ok("POST", f"rooms/{room}/kick", nurlan, json={"user_id": dana.user_id, "reason": "тексеру"})
    actions = _ledger_actions(kernel)[len(before) :]
    assert actions == [
        "messenger.room.create",
        "messenger.room.invite",
        "messenger.room.join",
        "messenger.room.kick",
    ]
    with kernel.db.read() as conn:
        leaves = conn.execute(sa.text("SELECT leaf FROM ledger_entries ORDER BY leaf_index")).scalars().all()
    text = b"".join(bytes(leaf) for leaf in leaves)
    # Accounts appear as keyed hashes, never by name.
    assert b"nurlan" not in text and b"dana" not in text


def test_invite_join_leave_and_ban(mx: Mx) -> None:
    nurlan, dana, madina = mx.login("nurlan.official"), mx.login("dana.official"), mx.login("madina.inspector")
    room = mx.create_room(nurlan, name="Жоба")
    mx.error("POST", f"join/{room}", dana, 403, "M_FORBIDDEN", json={})  # not invited
    mx.ok("POST", f"rooms/{room}/invite", nurlan, json={"user_id": dana.user_id})
    mx.error("POST", f"rooms/{room}/invite", dana, 403, "M_FORBIDDEN", json={"user_id": madina.user_id})
    mx.ok("POST", f"rooms/{room}/join", dana, json={})
    assert mx.ok("GET", "joined_rooms", dana)["joined_rooms"] == [room]
    mx.ok("POST", f"rooms/{room}/join", dana, json={})  # joining twice changes nothing
    joined = mx.ok("GET", f"rooms/{room}/joined_members", nurlan)["joined"]
    assert joined[dana.user_id]["display_name"] == "Дана Касымова"
    members = mx.ok("GET", f"rooms/{room}/members", dana)["chunk"]
    assert {m["state_key"]: m["content"]["membership"] for m in members} == {
        nurlan.user_id: "join",
        dana.user_id: "join",
    }
    # Dana (level 0) may not kick or ban the creator (level 100), nor invite unknown people or citizens.
    mx.error("POST", f"rooms/{room}/kick", dana, 403, "M_FORBIDDEN", json={"user_id": nurlan.user_id})
    mx.error("POST", f"rooms/{room}/invite", nurlan, 404, "M_NOT_FOUND", json={"user_id": mxid("nobody")})
    mx.error("POST", f"rooms/{room}/invite", nurlan, 403, "M_FORBIDDEN", json={"user_id": mxid("bolat.guard")})
    mx.ok("POST", f"rooms/{room}/leave", dana, json={})
    mx.error("PUT", f"rooms/{room}/send/m.room.message/x1", dana, 403, "M_FORBIDDEN", json={"body": "hi"})
    mx.ok("POST", f"rooms/{room}/ban", nurlan, json={"user_id": dana.user_id, "reason": "спам"})
    mx.ok("POST", f"rooms/{room}/invite", nurlan, json={"user_id": madina.user_id})
    mx.error("POST", f"rooms/{room}/invite", nurlan, 403, "M_FORBIDDEN", json={"user_id": dana.user_id})
    mx.ok("POST", f"rooms/{room}/unban", nurlan, json={"user_id": dana.user_id})
    mx.ok("POST", f"rooms/{room}/invite", nurlan, json={"user_id": dana.user_id})
    mx.error("POST", "join/!unknown:qorgau.example.kz", dana, 404, "M_NOT_FOUND", json={})


def test_public_room_by_alias(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.create_room(nurlan, name="Жаңалықтар", preset="public_chat", room_alias_name="news")
    alias = f"#news:{SERVER}"
    encoded = quote(alias, safe="")
    assert mx.ok("GET", f"directory/room/{encoded}", dana) == {"room_id": room, "servers": [SERVER]}
    assert mx.ok("POST", f"join/{encoded}", dana, json={})["room_id"] == room
    mx.error("POST", "createRoom", dana, 400, "M_ROOM_IN_USE", json={"room_alias_name": "news"})
    mx.error("GET", f"directory/room/{quote(f'#nothing:{SERVER}', safe='')}", dana, 404, "M_NOT_FOUND")
    assert mx.ok("GET", f"rooms/{room}/state/m.room.canonical_alias", dana) == {"alias": alias}


def test_state_and_power_levels(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana, name="Бастапқы", topic="тақырып")
    assert mx.ok("GET", f"rooms/{room}/state/m.room.name/", dana) == {"name": "Бастапқы"}
    assert mx.ok("GET", f"rooms/{room}/state/m.room.name", dana) == {"name": "Бастапқы"}
    mx.ok("PUT", f"rooms/{room}/state/m.room.name", nurlan, json={"name": "Жаңа атау"})
    assert mx.ok("GET", f"rooms/{room}/state/m.room.name", dana) == {"name": "Жаңа атау"}
    mx.error("PUT", f"rooms/{room}/state/m.room.name", dana, 403, "M_FORBIDDEN", json={"name": "Менікі"})
    mx.error("PUT", f"rooms/{room}/state/m.room.create", nurlan, 403, "M_FORBIDDEN", json={})
    mx.error("GET", f"rooms/{room}/state/m.room.avatar", dana, 404, "M_NOT_FOUND")
    levels = mx.ok("GET", f"rooms/{room}/state/m.room.power_levels", nurlan)
    # Dana may not raise herself; Nurlan may raise her to 50, then she may rename the room.
    mx.error(
        "PUT",
        f"rooms/{room}/state/m.room.power_levels",
        dana,
        403,
        "M_FORBIDDEN",
        json={**levels, "users": {**levels["users"], dana.user_id: 100}},
    )
    mx.ok(
        "PUT",
        f"rooms/{room}/state/m.room.power_levels",
        nurlan,
        json={**levels, "users": {**levels["users"], dana.user_id: 50}},
    )
    mx.ok("PUT", f"rooms/{room}/state/m.room.name", dana, json={"name": "Дананың атауы"})
    # Custom state with a key, and the whole state.
    mx.ok("PUT", f"rooms/{room}/state/kz.qorgau.note/first", nurlan, json={"n": 1})
    assert mx.ok("GET", f"rooms/{room}/state/kz.qorgau.note/first", dana) == {"n": 1}
    state = mx.ok("GET", f"rooms/{room}/state", dana)
    types = {(e["type"], e["state_key"]) for e in state}
    assert ("m.room.create", "") in types and ("kz.qorgau.note", "first") in types
    # Membership goes through its own endpoints.
    mx.error(
        "PUT",
        f"rooms/{room}/state/m.room.member/{nurlan.user_id}",
        dana,
        403,
        "M_FORBIDDEN",
        json={"membership": "leave"},
    )


def test_event_and_context(mx: Mx) -> None:
    nurlan, dana, erlan = mx.login("nurlan.official"), mx.login("dana.official"), mx.login("erlan.security")
    room = mx.room_with(nurlan, dana)
    ids = [mx.send(nurlan, room, f"m{i}") for i in range(7)]
    event = mx.ok("GET", f"rooms/{room}/event/{ids[3]}", dana)
    assert event["content"]["body"] == "m3" and event["room_id"] == room
    context = mx.ok("GET", f"rooms/{room}/context/{ids[3]}?limit=4", dana)
    assert context["event"]["event_id"] == ids[3]
    assert [e["content"]["body"] for e in context["events_before"]] == ["m2", "m1"]
    assert [e["content"]["body"] for e in context["events_after"]] == ["m4", "m5"]
    assert any(e["type"] == "m.room.create" for e in context["state"])
    after = mx.ok("GET", f"rooms/{room}/messages", dana, params={"from": context["end"], "dir": "f"})
    assert [e["content"]["body"] for e in after["chunk"]] == ["m6"]
    mx.error("GET", f"rooms/{room}/event/$unknown", dana, 404, "M_NOT_FOUND")
    mx.error("GET", f"rooms/{room}/event/{ids[3]}", erlan, 403, "M_FORBIDDEN")
    mx.error("GET", f"rooms/{room}/context/{ids[3]}", erlan, 403, "M_FORBIDDEN")
    mx.error("GET", f"rooms/{room}/members", erlan, 403, "M_FORBIDDEN")
    mx.error("GET", f"rooms/{room}/state", erlan, 403, "M_FORBIDDEN")


def test_messages_filter_and_directions(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    mx.send(nurlan, room, "a")
    mx.send(dana, room, "b")
    mx.send(nurlan, room, "c", event_type="kz.qorgau.custom")
    only_messages = json.dumps({"types": ["m.room.message"]})
    back = mx.ok("GET", f"rooms/{room}/messages", dana, params={"dir": "b", "filter": only_messages})
    assert [e["content"]["body"] for e in back["chunk"]] == ["b", "a"]
    wildcard = json.dumps({"types": ["kz.*"]})
    assert [e["type"] for e in mx.ok("GET", f"rooms/{room}/messages", dana, params={"filter": wildcard})["chunk"]] == [
        "kz.qorgau.custom"
    ]
    senders = json.dumps({"senders": [dana.user_id], "types": ["m.room.message"]})
    assert [
        e["content"]["body"] for e in mx.ok("GET", f"rooms/{room}/messages", dana, params={"filter": senders})["chunk"]
    ] == ["b"]
    forward = mx.ok("GET", f"rooms/{room}/messages", dana, params={"dir": "f", "limit": 3})
    assert forward["chunk"][0]["type"] == "m.room.create" and "end" in forward
    mx.error("GET", f"rooms/{room}/messages", dana, 400, "M_INVALID_PARAM", params={"dir": "x"})
    mx.error("GET", f"rooms/{room}/messages", dana, 400, "M_NOT_JSON", params={"filter": "{oops"})


def test_profiles_and_directory(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    assert mx.ok("GET", f"profile/{dana.user_id}", nurlan) == {"displayname": "Дана Касымова"}
    mx.ok("PUT", f"profile/{dana.user_id}/displayname", dana, json={"displayname": "Дана К."})
    assert mx.ok("GET", f"profile/{dana.user_id}/displayname", nurlan) == {"displayname": "Дана К."}
    mx.error("PUT", f"profile/{dana.user_id}/displayname", nurlan, 403, "M_FORBIDDEN", json={"displayname": "x"})
    # The new name is announced in the rooms she is in.
    joined = mx.ok("GET", f"rooms/{room}/joined_members", nurlan)["joined"]
    assert joined[dana.user_id]["display_name"] == "Дана К."
    # Only officials are in the directory and have profiles.
    mx.error("GET", f"profile/{mxid('bolat.guard')}", nurlan, 404, "M_NOT_FOUND")
    found = mx.ok("POST", "user_directory/search", nurlan, json={"search_term": "дана"})
    assert found["results"] == [{"user_id": dana.user_id, "display_name": "Дана К."}]
    by_name = mx.ok("GET", "user_directory/search", nurlan, params={"search_term": "official"})
    assert {r["user_id"] for r in by_name["results"]} == {nurlan.user_id, dana.user_id}
    everyone = mx.ok("POST", "user_directory/search", nurlan, json={"search_term": "", "limit": 50})
    assert mxid("bolat.guard") not in {r["user_id"] for r in everyone["results"]}
    assert mx.ok("POST", "user_directory/search", nurlan, json={"search_term": "%"})["results"] == []
    mx.error("POST", "user_directory/search", nurlan, 400, "M_BAD_JSON", json={"search_term": 5})


def test_account_data_and_filters_belong_to_their_owner(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    mx.ok("PUT", f"user/{dana.user_id}/account_data/m.direct", dana, json={nurlan.user_id: [room]})
    assert mx.ok("GET", f"user/{dana.user_id}/account_data/m.direct", dana) == {nurlan.user_id: [room]}
    mx.error("GET", f"user/{dana.user_id}/account_data/m.direct", nurlan, 403, "M_FORBIDDEN")
    mx.error("PUT", f"user/{dana.user_id}/account_data/m.direct", nurlan, 403, "M_FORBIDDEN", json={})
    mx.error("GET", f"user/{dana.user_id}/account_data/m.other", dana, 404, "M_NOT_FOUND")
    mx.error("PUT", f"user/{dana.user_id}/account_data/m.fully_read", dana, 405, "M_BAD_JSON", json={})
    mx.ok("PUT", f"user/{dana.user_id}/rooms/{room}/account_data/m.tag", dana, json={"tags": {"u.work": {}}})
    assert mx.ok("GET", f"user/{dana.user_id}/rooms/{room}/account_data/m.tag", dana) == {"tags": {"u.work": {}}}
    made = mx.ok("POST", f"user/{dana.user_id}/filter", dana, json={"room": {"timeline": {"limit": 2}}})
    assert mx.ok("GET", f"user/{dana.user_id}/filter/{made['filter_id']}", dana) == {"room": {"timeline": {"limit": 2}}}
    mx.error("GET", f"user/{dana.user_id}/filter/{made['filter_id']}", nurlan, 403, "M_FORBIDDEN")
    mx.error("POST", f"user/{dana.user_id}/filter", nurlan, 403, "M_FORBIDDEN", json={})
    mx.error(
        "POST", f"user/{dana.user_id}/filter", dana, 400, "M_BAD_JSON", json={"room": {"timeline": {"limit": "x"}}}
    )
    for i in range(4):
        mx.send(nurlan, room, f"f{i}")
    answer = mx.sync(dana, filter=made["filter_id"])
    assert texts(answer, room) == ["f2", "f3"]
    assert answer["rooms"]["join"][room]["timeline"]["limited"] is True
    assert answer["account_data"]["events"] == [{"type": "m.direct", "content": {nurlan.user_id: [room]}}]
    assert answer["rooms"]["join"][room]["account_data"]["events"] == [
        {"type": "m.tag", "content": {"tags": {"u.work": {}}}}
    ]
