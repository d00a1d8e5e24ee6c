"""ДСП ("For official use only") over the Matrix API: one agency per room, marked content stays in
marked rooms, forwards are checked, and a security officer's every view is in the ledger."""

from __future__ import annotations

import itertools
import json
from typing import Any

import sqlalchemy as sa

from tests.integration.messenger.conftest import Mx, User

DSP_STATE = [{"type": "kz.qorgau.dsp", "state_key": "", "content": {"dsp": True}}]
_txn = itertools.count()


def _ledger(kernel: Any) -> list[dict[str, Any]]:
    with kernel.db.read() as conn:
        leaves = conn.execute(sa.text("SELECT leaf FROM ledger_entries ORDER BY leaf_index")).scalars().all()
    return [json.loads(bytes(leaf)) for leaf in leaves]


def _send_path(room: str) -> str:
    return f"rooms/{room}/send/m.room.message/dsp{next(_txn)}"


def _dsp_room(mx: Mx, owner: User, *others: User, **body: Any) -> str:
    return mx.room_with(owner, *others, initial_state=DSP_STATE, **body)


def test_a_dsp_room_is_marked_in_its_state_and_keeps_to_one_agency(mx: Mx) -> None:
    nurlan, dana, erlan = mx.login("nurlan.official"), mx.login("dana.official"), mx.login("erlan.security")
    room = _dsp_room(mx, nurlan, erlan)
    assert mx.ok("GET", f"rooms/{room}/state/kz.qorgau.dsp/", nurlan) == {"dsp": True}
    body = mx.error("POST", f"rooms/{room}/invite", nurlan, 403, "M_FORBIDDEN", json={"user_id": dana.user_id})
    assert body["error"] == "ДСП room: members must belong to astana-digital"
    body = mx.error(
        "POST", "createRoom", nurlan, 403, "M_FORBIDDEN", json={"invite": [dana.user_id], "initial_state": DSP_STATE}
    )
    assert body["error"] == "ДСП room: members must belong to astana-digital"
    by_creation = mx.create_room(nurlan, creation_content={"kz.qorgau.dsp": True}, preset="public_chat")
    assert mx.ok("GET", f"rooms/{by_creation}/state/kz.qorgau.dsp/", nurlan) == {"dsp": True}
    mx.error("POST", f"join/{by_creation}", dana, 403, "M_FORBIDDEN", json={})  # public, but not for her agency
    mx.join(erlan, by_creation)
    body = mx.error("PUT", f"rooms/{room}/state/kz.qorgau.dsp/", nurlan, 403, "M_FORBIDDEN", json={"dsp": False})
    assert "cannot be changed" in body["error"]
    plain = mx.room_with(nurlan, dana)
    mx.error("PUT", f"rooms/{plain}/state/kz.qorgau.dsp/", nurlan, 403, "M_FORBIDDEN", json={"dsp": True})


def test_dsp_content_stays_in_dsp_rooms(mx: Mx, kernel: Any) -> None:
    nurlan, dana, erlan = mx.login("nurlan.official"), mx.login("dana.official"), mx.login("erlan.security")
    dsp_room = _dsp_room(mx, nurlan, erlan)
    plain = mx.room_with(nurlan, dana)
    marked = {"msgtype": "m.text", "body": "ішкі", "kz.qorgau.dsp": True}
    body = mx.error("PUT", _send_path(plain), nurlan, 403, "M_FORBIDDEN", json=marked)
    assert body["error"] == "ДСП content must stay in ДСП rooms: this room is not marked ДСП"
    source = mx.ok("PUT", _send_path(dsp_room), nurlan, json=marked)["event_id"]
    plain_source = mx.send(nurlan, dsp_room, "also ДСП: sent in a ДСП room")
    with kernel.db.read() as conn:
        flags = dict(conn.execute(sa.text("SELECT event_id, dsp FROM messenger_events")).all())
    assert flags[source] and flags[plain_source]

    def forward(target: str, event_id: str) -> dict[str, Any]:
        ref = {"room_id": dsp_room, "event_id": event_id}
        return {"msgtype": "m.text", "body": "fwd", "kz.qorgau.forwarded_from": ref}

    for event_id in (source, plain_source):
        body = mx.error("PUT", _send_path(plain), nurlan, 403, "M_FORBIDDEN", json=forward(plain, event_id))
        assert body["error"] == "ДСП content cannot be forwarded to a room that is not marked ДСП"
    own_agency = _dsp_room(mx, nurlan, erlan)
    mx.ok("PUT", _send_path(own_agency), nurlan, json=forward(own_agency, source))
    # A ДСП room whose members drifted outside the agency (an older row) refuses the forward.
    mixed = _dsp_room(mx, nurlan)
    kernel.writer.run(
        lambda tx: tx.execute(
            sa.text("UPDATE messenger_members SET agency_id = 'elsewhere' WHERE room_id = :r"), {"r": mixed}
        )
    )
    body = mx.error("PUT", _send_path(mixed), nurlan, 403, "M_FORBIDDEN", json=forward(mixed, source))
    assert body["error"] == "ДСП content cannot be forwarded to a room with members from outside your agency"
    # Forwarding ordinary content anywhere is fine; a malformed reference is bad JSON.
    ordinary = mx.send(nurlan, plain, "ашық")
    ref = {"room_id": plain, "event_id": ordinary}
    mx.ok("PUT", _send_path(plain), nurlan, json={"msgtype": "m.text", "body": "f", "kz.qorgau.forwarded_from": ref})
    bad = {"msgtype": "m.text", "body": "f", "kz.qorgau.forwarded_from": "x"}
    mx.error("PUT", _send_path(plain), nurlan, 400, "M_BAD_JSON", json=bad)


def test_a_security_officers_views_of_dsp_content_are_in_the_ledger(mx: Mx, kernel: Any) -> None:
    nurlan, aigerim, erlan = mx.login("nurlan.official"), mx.login("aigerim.admin"), mx.login("erlan.security")
    room = _dsp_room(mx, nurlan, aigerim, erlan)
    event_id = mx.send(nurlan, room, "ішкі хабар")
    plain = mx.room_with(nurlan, erlan)
    mx.send(nurlan, plain, "ашық хабар")

    def views() -> list[dict[str, Any]]:
        return [e for e in _ledger(kernel) if e["action"] == "messenger.dsp_view"]

    before = len(views())
    for member in (nurlan, aigerim):  # ordinary members' reads are not ledgered
        mx.ok("GET", f"rooms/{room}/messages", member, params={"dir": "b"})
        mx.ok("GET", f"rooms/{room}/event/{event_id}", member)
    mx.ok("GET", f"rooms/{plain}/messages", erlan, params={"dir": "b"})  # nor a security officer's of plain rooms
    assert len(views()) == before
    page = mx.ok("GET", f"rooms/{room}/messages", erlan, params={"dir": "b", "limit": 3})
    mx.ok("GET", f"rooms/{room}/event/{event_id}", erlan)
    mx.ok("GET", f"rooms/{room}/context/{event_id}", erlan, params={"limit": 2})
    new = views()[before:]
    assert [e["object"] for e in new] == [
        {"room": room, "events": len(page["chunk"])},
        {"room": room, "events": 1},
        {"room": room, "events": 2},
    ]
    assert all(e["actor"].startswith("security_officer:") and "ішкі" not in json.dumps(e) for e in new)


def test_the_browser_marks_dsp_rooms_and_ledgers_a_security_officers_view(
    client: Any, demo: dict[str, Any], kernel: Any
) -> None:
    from tests.integration.messenger.test_web import room_path, signed_in

    mx = Mx(client, demo)
    erlan = mx.login("erlan.security")
    csrf = signed_in(client, demo, "nurlan.official")
    assert 'data-testid="dsp-checkbox"' in client.get("/messenger/new").text
    response = client.post(
        "/messenger/rooms",
        data={"_csrf": csrf, "name": "Құпия жоба", "invite": [erlan.user_id], "dsp": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    room_id = mx.ok("GET", "sync", erlan)["rooms"]["invite"].popitem()[0]
    assert mx.ok("GET", f"rooms/{room_id}/state/kz.qorgau.dsp/", mx.login("nurlan.official")) == {"dsp": True}
    mx.join(erlan, room_id)
    client.post(
        room_path(room_id) + "/send",
        data={"_csrf": csrf, "body": "ішкі мәтін", "txn": "dsp-web"},
        headers={"X-Requested-With": "fetch"},
    )
    plain = client.post("/messenger/rooms", data={"_csrf": csrf, "name": "Ашық"}, follow_redirects=False)
    assert plain.status_code == 303

    def views() -> int:
        return sum(1 for e in _ledger(kernel) if e["action"] == "messenger.dsp_view")

    before = views()
    page = client.get(room_path(room_id))
    assert 'data-testid="dsp-banner"' in page.text and "Қызмет бабында пайдалану үшін (ҚБП)" in page.text
    assert "ішкі мәтін" in page.text
    listing = client.get("/messenger")
    assert listing.text.count('data-testid="dsp-badge"') == 1
    assert "ішкі мәтін" not in listing.text  # no preview of ДСП text in the list
    plain_page = client.get(plain.headers["location"])
    assert 'data-testid="dsp-banner"' not in plain_page.text
    assert views() == before  # a member's views are not ledgered

    signed_in(client, demo, "erlan.security")
    assert "ішкі мәтін" in client.get(room_path(room_id)).text
    assert views() == before + 1
    ru = client.get(room_path(room_id), headers={"Accept-Language": "ru"})
    assert views() == before + 2
    assert 'data-testid="dsp-banner"' in ru.text


def test_a_security_officers_sync_carrying_dsp_messages_is_in_the_ledger(mx: Mx, kernel: Any) -> None:
    nurlan, aigerim, erlan = mx.login("nurlan.official"), mx.login("aigerim.admin"), mx.login("erlan.security")
    room = _dsp_room(mx, nurlan, aigerim, erlan)
    plain = mx.room_with(nurlan, erlan)

    def views() -> list[dict[str, Any]]:
        return [e for e in _ledger(kernel) if e["action"] == "messenger.dsp_view"]

    since = mx.ok("GET", "sync", erlan, params={"timeout": 0})["next_batch"]
    before = len(views())
    mx.send(nurlan, plain, "ашық хабар")
    mx.ok("GET", "sync", nurlan, params={"timeout": 0})
    mx.ok("GET", "sync", aigerim, params={"timeout": 0})
    since = mx.ok("GET", "sync", erlan, params={"since": since, "timeout": 0})["next_batch"]
    assert len(views()) == before  # plain rooms and other members' syncs are not ledgered
    mx.send(nurlan, room, "ішкі хабар")
    answer = mx.ok("GET", "sync", erlan, params={"since": since, "timeout": 0})
    assert room in answer["rooms"]["join"]
    new = views()[before:]
    assert [e["object"] for e in new] == [{"room": room, "events": 1, "via": "sync"}]
    assert "ішкі" not in json.dumps(new)
