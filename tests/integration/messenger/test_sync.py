"""/sync over HTTP: long polls wake on new events, tokens resume exactly, sections follow membership."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from qorgau.kernel.db import Database
from qorgau.kernel.events import emit, stream_journal
from qorgau.messenger import sync as sync_module
from qorgau.messenger.runtime import runtime
from qorgau.messenger.services import events as events_service
from tests.integration.messenger.conftest import Mx, texts

UNLIMITED = {"room": {"timeline": {"limit": 1000}}}


def _in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        result["answer"] = fn()
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_long_poll_wakes_when_a_message_is_sent(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    token = mx.sync(dana)["next_batch"]
    waiter, result = _in_thread(lambda: mx.sync(dana, since=token, timeout=20_000))
    time.sleep(0.3)
    assert waiter.is_alive()  # parked: nothing new yet
    mx.send(nurlan, room, "жаңа хабар")
    waiter.join(timeout=20)
    assert texts(result["answer"], room) == ["жаңа хабар"]
    assert result["elapsed"] < 5
    # Nothing new: a short poll times out with the same position.
    quiet = mx.sync(dana, since=result["answer"]["next_batch"], timeout=200)
    assert quiet == {"next_batch": result["answer"]["next_batch"]}


def test_a_message_acknowledged_before_a_sync_is_in_its_answer(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    token = mx.sync(dana)["next_batch"]
    for i in range(5):
        mx.send(nurlan, room, f"r{i}")
        answer = mx.sync(dana, since=token)  # timeout 0
        assert texts(answer, room) == [f"r{i}"]
        token = answer["next_batch"]


def test_many_waiters_are_served_from_one_read(mx: Mx, kernel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = mx.login("nurlan.official")
    readers = [mx.login(name) for name in ("dana.official", "madina.inspector", "erlan.security", "aigerim.admin")]
    room = mx.room_with(owner, *readers)
    tokens = {r.username: mx.sync(r)["next_batch"] for r in readers}
    engine = runtime(kernel).sync
    assert engine is not None
    # The sender's process keeps what it appended; pretend another process sent it, so the window reads it
    # from the database and readers must decrypt.
    monkeypatch.setattr(runtime(kernel).contents, "put", lambda *_a: None)
    monkeypatch.setattr(stream_journal(kernel.db), "span", lambda *_a: None)
    unseals: list[int] = []
    real_unseal = events_service.unseal

    def counting_unseal(*args: Any) -> bytes:
        unseals.append(1)
        return real_unseal(*args)

    monkeypatch.setattr(events_service, "unseal", counting_unseal)
    threads = [_in_thread(lambda r=r: mx.sync(r, since=tokens[r.username], timeout=20_000)) for r in readers]
    deadline = time.monotonic() + 5
    while engine.waiting < len(readers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.waiting == len(readers)
    refreshes = engine.refreshes
    mx.send(owner, room, "барлығына")
    for thread, _result in threads:
        thread.join(timeout=20)
    assert all(texts(result["answer"], room) == ["барлығына"] for _t, result in threads)
    assert engine.refreshes - refreshes <= 2  # one read for all (plus, at most, one by a late request)
    assert len(unseals) == 1  # decrypted once, for every reader


def test_what_this_process_committed_reaches_waiters_without_a_read_back(
    mx: Mx, kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, reader = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(owner, reader)
    token = mx.sync(reader)["next_batch"]
    engine = runtime(kernel).sync
    assert engine is not None
    reads: list[tuple[int, int]] = []
    real_load_items = sync_module.load_items

    def counting_load_items(kernel: Any, conn: Any, after: int, upto: int, limit: int | None = None) -> Any:
        reads.append((after, upto))
        return real_load_items(kernel, conn, after, upto, limit)

    monkeypatch.setattr(sync_module, "load_items", counting_load_items)
    local = engine.local_refreshes
    waiter, result = _in_thread(lambda: mx.sync(reader, since=token, timeout=20_000, filter=UNLIMITED))
    deadline = time.monotonic() + 5
    while engine.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    mx.send(owner, room, "бірінші")
    waiter.join(timeout=20)
    assert texts(result["answer"], room) == ["бірінші"]
    assert reads == [] and engine.local_refreshes > local  # taken from the journal, not read back

    # Another process writes in between (here: a second handle on the same database): this process's
    # journal has a gap, so the window reads that range back, and nothing is lost or repeated.
    other = Database(kernel.db.url)
    try:
        other.run(lambda tx: emit(tx, "messenger.elsewhere", {}))
    finally:
        other.dispose()
    mx.send(owner, room, "екінші")
    answer = mx.sync(reader, since=result["answer"]["next_batch"], timeout=5_000, filter=UNLIMITED)
    assert texts(answer, room) == ["екінші"]
    assert reads, "a range with another process's write is read from the database"
    again = mx.sync(reader, since=token, filter=UNLIMITED)  # from the start: both, once each
    assert texts(again, room) == ["бірінші", "екінші"]


def test_invite_join_and_kick_move_the_room_between_sections(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    token = mx.sync(dana)["next_batch"]
    room = mx.create_room(nurlan, name="Шақыру", invite=[dana.user_id], is_direct=True)
    invited = mx.sync(dana, since=token, timeout=5000)
    stripped = invited["rooms"]["invite"][room]["invite_state"]["events"]
    by_type = {(e["type"], e["state_key"]): e for e in stripped}
    assert by_type[("m.room.name", "")]["content"] == {"name": "Шақыру"}
    assert by_type[("m.room.member", dana.user_id)]["content"]["is_direct"] is True
    assert by_type[("m.room.member", nurlan.user_id)]["content"]["membership"] == "join"
    assert "join" not in invited["rooms"]
    mx.join(dana, room)
    joined = mx.sync(dana, since=invited["next_batch"], timeout=5000)
    section = joined["rooms"]["join"][room]
    state_types = {e["type"] for e in section["state"]["events"]} | {e["type"] for e in section["timeline"]["events"]}
    assert {"m.room.create", "m.room.power_levels", "m.room.name"} <= state_types
    mx.send(nurlan, room, "соңғы")
    mx.ok("POST", f"rooms/{room}/kick", nurlan, json={"user_id": dana.user_id})
    mx.send(nurlan, room, "сен көрмейсің")
    left = mx.sync(dana, since=joined["next_batch"], timeout=5000)
    events = left["rooms"]["leave"][room]["timeline"]["events"]
    assert [e["content"].get("body") or e["content"].get("membership") for e in events] == ["соңғы", "leave"]
    assert room not in left["rooms"].get("join", {})
    later = mx.sync(dana, since=left["next_batch"])
    assert room not in later.get("rooms", {}).get("join", {}) and room not in later.get("rooms", {}).get("leave", {})


def test_limited_timeline_carries_the_state_it_skipped(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana, name="Бірінші")
    token = mx.sync(dana)["next_batch"]
    mx.ok("PUT", f"rooms/{room}/state/m.room.name", nurlan, json={"name": "Екінші"})
    for i in range(5):
        mx.send(nurlan, room, f"l{i}")
    answer = mx.sync(dana, since=token, filter={"room": {"timeline": {"limit": 2}}})
    section = answer["rooms"]["join"][room]
    assert section["timeline"]["limited"] is True
    assert texts(answer, room) == ["l3", "l4"]
    assert [e["content"] for e in section["state"]["events"] if e["type"] == "m.room.name"] == [{"name": "Екінші"}]
    page = mx.ok("GET", f"rooms/{room}/messages", dana, params={"from": section["timeline"]["prev_batch"], "limit": 3})
    assert [e["content"].get("body") for e in page["chunk"]] == ["l2", "l1", "l0"]


def test_full_state_sends_the_whole_state_but_only_new_timeline(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana, name="Толық")
    token = mx.sync(dana)["next_batch"]
    mx.send(nurlan, room, "жаңа")
    answer = mx.sync(dana, since=token, full_state="true")
    section = answer["rooms"]["join"][room]
    assert texts(answer, room) == ["жаңа"]
    assert {"m.room.create", "m.room.name", "m.room.member"} <= {e["type"] for e in section["state"]["events"]}


def test_tokens_older_than_the_window_resume_from_the_database(mx: Mx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_module, "WINDOW_MAX_ITEMS", 8)
    monkeypatch.setattr(sync_module, "LOAD_LIMIT", 7)
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    token = mx.sync(dana)["next_batch"]
    seen = []
    for i in range(40):
        mx.send(nurlan, room, f"w{i}")
        if i in (3, 4, 20):
            answer = mx.sync(dana, since=token, filter=UNLIMITED)
            seen += texts(answer, room)
            token = answer["next_batch"]
        if i == 10:
            mx.sync(nurlan)  # others keep the window moving
    while len(seen) < 40:
        answer = mx.sync(dana, since=token, filter=UNLIMITED)
        seen += texts(answer, room)
        assert answer["next_batch"] != token or len(seen) == 40
        token = answer["next_batch"]
    assert seen == [f"w{i}" for i in range(40)]


def test_typing_ends_by_itself_when_it_times_out(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    token = mx.sync(nurlan)["next_batch"]
    mx.ok("PUT", f"rooms/{room}/typing/{dana.user_id}", dana, json={"typing": True, "timeout": 300})
    mx.error("PUT", f"rooms/{room}/typing/{nurlan.user_id}", dana, 403, "M_FORBIDDEN", json={"typing": True})
    started = mx.sync(nurlan, since=token, timeout=5000)
    typing = [e for e in started["rooms"]["join"][room]["ephemeral"]["events"] if e["type"] == "m.typing"]
    assert typing == [{"type": "m.typing", "content": {"user_ids": [dana.user_id]}}]
    stopped = mx.sync(nurlan, since=started["next_batch"], timeout=5000)
    typing = [e for e in stopped["rooms"]["join"][room]["ephemeral"]["events"] if e["type"] == "m.typing"]
    assert typing == [{"type": "m.typing", "content": {"user_ids": []}}]


def test_unread_counts_follow_messages_receipts_and_own_replies(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    token = mx.sync(dana)["next_batch"]

    def unread() -> int:
        nonlocal token
        answer = mx.sync(dana, since=token)
        token = answer["next_batch"]
        return int(answer["rooms"]["join"][room]["unread_notifications"]["notification_count"])

    first = mx.send(nurlan, room, "1")
    assert unread() == 1
    mx.send(nurlan, room, "2")
    assert unread() == 2
    mx.ok("POST", f"rooms/{room}/receipt/m.read/{first}", dana, json={})
    assert unread() == 1
    mx.send(dana, room, "жауап")
    assert unread() == 0
    mx.send(nurlan, room, "3")
    assert unread() == 1
    # A fresh sync (new device) counts from the database and agrees.
    fresh = mx.login("dana.official")
    assert mx.sync(fresh)["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 1


def test_account_data_changes_are_synced(mx: Mx) -> None:
    dana = mx.login("dana.official")
    token = mx.sync(dana)["next_batch"]
    waiter, result = _in_thread(lambda: mx.sync(dana, since=token, timeout=20_000))
    time.sleep(0.2)
    mx.ok("PUT", f"user/{dana.user_id}/account_data/kz.qorgau.settings", dana, json={"lang": "kk"})
    waiter.join(timeout=20)
    assert result["answer"]["account_data"]["events"] == [{"type": "kz.qorgau.settings", "content": {"lang": "kk"}}]
    assert result["elapsed"] < 5
