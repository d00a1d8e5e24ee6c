"""Key exchange for end-to-end encryption: the server stores and relays, and never reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.integration.messenger.conftest import Mx, User


def _device_keys(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "device_id": user.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{user.device_id}": "curvekey", f"ed25519:{user.device_id}": "edkey"},
        "signatures": {user.user_id: {f"ed25519:{user.device_id}": "sig"}},
    }


def test_devices_publish_keys_and_others_claim_one_time_keys(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    token = mx.sync(nurlan)["next_batch"]
    otks = {f"signed_curve25519:AAAA{i}": {"key": f"k{i}", "signatures": {}} for i in range(3)}
    counts = mx.ok(
        "POST",
        "keys/upload",
        dana,
        json={
            "device_keys": _device_keys(dana),
            "one_time_keys": otks,
            "fallback_keys": {"signed_curve25519:FB": {"key": "fb", "fallback": True, "signatures": {}}},
        },
    )
    assert counts["one_time_key_counts"]["signed_curve25519"] == 3
    mx.error("POST", "keys/upload", dana, 400, "M_INVALID_PARAM", json={"device_keys": _device_keys(nurlan)})
    # Nurlan shares a room with Dana: her new keys show up as a device-list change.
    changed = mx.sync(nurlan, since=token, timeout=5000)
    assert changed["device_lists"]["changed"] == [dana.user_id]
    assert mx.ok("GET", "keys/changes", nurlan, params={"from": token, "to": changed["next_batch"]})["changed"] == [
        dana.user_id
    ]
    queried = mx.ok("POST", "keys/query", nurlan, json={"device_keys": {dana.user_id: []}})
    keys = queried["device_keys"][dana.user_id][dana.device_id]
    assert keys["keys"][f"curve25519:{dana.device_id}"] == "curvekey"
    assert keys["signatures"] == {dana.user_id: {f"ed25519:{dana.device_id}": "sig"}}
    claim = {"one_time_keys": {dana.user_id: {dana.device_id: "signed_curve25519"}}}
    claimed = [mx.ok("POST", "keys/claim", nurlan, json=claim) for _ in range(4)]
    got = [next(iter(c["one_time_keys"][dana.user_id][dana.device_id])) for c in claimed]
    assert got[:3] == sorted(otks) and got[3] == "signed_curve25519:FB"  # then the fallback key
    later = mx.sync(dana, timeout=0)
    assert later["device_one_time_keys_count"]["signed_curve25519"] == 0
    assert room in later["rooms"]["join"]


def test_to_device_messages_are_delivered_once_and_sealed_at_rest(mx: Mx, kernel: Any) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    token = mx.sync(dana)["next_batch"]
    body = {"messages": {dana.user_id: {dana.device_id: {"algorithm": "m.olm.v1", "ciphertext": "secret-olm"}}}}
    mx.ok("PUT", "sendToDevice/m.room.encrypted/txn1", nurlan, json=body)
    mx.ok("PUT", "sendToDevice/m.room.encrypted/txn1", nurlan, json=body)  # retried: delivered once
    with kernel.db.read() as conn:
        blobs = conn.execute(sa.text("SELECT content FROM messenger_to_device")).scalars().all()
    assert len(blobs) == 1 and b"secret-olm" not in bytes(blobs[0])
    got = mx.sync(dana, since=token, timeout=5000)
    assert got["to_device"]["events"] == [
        {
            "sender": nurlan.user_id,
            "type": "m.room.encrypted",
            "content": body["messages"][dana.user_id][dana.device_id],
        }
    ]
    again = mx.sync(dana, since=got["next_batch"])
    assert "to_device" not in again
    # Acknowledged (synced past): the server forgets it.
    kernel.writer.run(lambda tx: None)  # the delete was queued on the writer; let it commit
    with kernel.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM messenger_to_device")).scalar_one() == 0
    # "*" reaches every device of the user; unknown users are skipped.
    phone = mx.login("dana.official")
    everyone = {"messages": {dana.user_id: {"*": {"k": 1}}, "@nobody:qorgau.example.kz": {"X": {"k": 2}}}}
    mx.ok("PUT", "sendToDevice/m.secret/txn2", nurlan, json=everyone)
    assert mx.sync(phone)["to_device"]["events"][0]["content"] == {"k": 1}


def test_encrypted_room_messages_are_stored_as_sent(mx: Mx, kernel: Any) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.create_room(
        nurlan,
        invite=[dana.user_id],
        initial_state=[
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
        ],
    )
    mx.join(dana, room)
    content = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnAc", "sender_key": "sk", "session_id": "sid"}
    event_id = mx.ok("PUT", f"rooms/{room}/send/m.room.encrypted/e1", nurlan, json=content)["event_id"]
    assert mx.ok("GET", f"rooms/{room}/event/{event_id}", dana)["content"] == content
    with kernel.db.read() as conn:
        assert conn.execute(sa.text("SELECT encrypted FROM messenger_rooms")).scalar_one()
