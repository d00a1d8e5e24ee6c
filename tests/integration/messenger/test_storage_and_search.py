"""At rest: bodies, files and account data are sealed, keys rotate, redaction erases; search reads only what it may."""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from PIL import Image

from qorgau.kernel.keys import rewrap_all
from tests.integration.messenger.conftest import SERVER, Mx


def _dump(kernel: Any) -> bytes:
    """Every value of every messenger table, as one byte string (what a stolen database shows)."""
    out = []
    with kernel.db.read() as conn:
        names = [n for n in sa.inspect(conn).get_table_names() if n.startswith("messenger_")]
        for name in names:
            for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                for value in row:
                    out.append(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode())
    return b"\x00".join(out)


def test_a_database_dump_shows_no_message_file_or_account_data(mx: Mx, kernel: Any) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana, name="Құпия бөлме", topic="бюджет")
    mx.send(nurlan, room, "Бюджет жобасы 2026 дайын")
    mx.ok("PUT", f"user/{dana.user_id}/account_data/kz.qorgau.note", dana, json={"note": "Жеке жазба"})
    img = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(img, "PNG")
    mx.ok(
        "POST",
        "/_matrix/media/v3/upload?filename=Салық есебі.pdf",
        nurlan,
        content="%PDF-1.4 Салық есебі".encode(),
        headers={"Content-Type": "application/pdf"},
    )
    dump = _dump(kernel)
    for secret in ("Бюджет жобасы", "Құпия бөлме", "бюджет", "Жеке жазба", "Салық есебі", "Нұрлан Ахметов"):
        assert secret.encode() not in dump, secret


def test_rotated_keys_rewrap_messenger_data(mx: Mx, kernel: Any) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    event_id = mx.send(nurlan, room, "кілт ауысады")
    uploaded = mx.ok(
        "POST", "/_matrix/media/v3/upload", nurlan, content=b"file body", headers={"Content-Type": "text/plain"}
    )
    file_event = {"msgtype": "m.file", "body": "file.txt", "url": uploaded["content_uri"]}
    mx.ok("PUT", f"rooms/{room}/send/m.room.message/file1", nurlan, json=file_event)  # shared with dana
    kernel.keyring = kernel.keyring.rotate()
    changed = rewrap_all(kernel)
    assert changed >= 10  # events of the room, the file, and anything sealed before
    from qorgau.messenger.runtime import runtime

    runtime(kernel).contents.clear()
    old = kernel.keyring.keys[0].kid
    kernel.keyring = kernel.keyring.without(old)
    assert mx.ok("GET", f"rooms/{room}/event/{event_id}", dana)["content"]["body"] == "кілт ауысады"
    media_id = uploaded["content_uri"].rsplit("/", 1)[1]
    assert mx.request("GET", f"/_matrix/client/v1/media/download/{SERVER}/{media_id}", dana).content == b"file body"


def test_redaction_erases_the_content_at_rest(mx: Mx, kernel: Any) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    event_id = mx.send(nurlan, room, "қате нөмір 8 701 234 56 78")
    with kernel.db.read() as conn:
        before = conn.execute(
            sa.text("SELECT content FROM messenger_events WHERE event_id = :e"), {"e": event_id}
        ).scalar()
    mx.ok("PUT", f"rooms/{room}/redact/{event_id}/r1", nurlan, json={"reason": "жеке дерек"})
    with kernel.db.read() as conn:
        after = conn.execute(
            sa.text("SELECT content FROM messenger_events WHERE event_id = :e"), {"e": event_id}
        ).scalar()
    assert bytes(after) != bytes(before)
    from qorgau.messenger.runtime import runtime

    runtime(kernel).contents.clear()
    fetched = mx.ok("GET", f"rooms/{room}/event/{event_id}", dana)
    assert fetched["content"] == {}
    assert fetched["unsigned"]["redacted_because"]["content"]["reason"] == "жеке дерек"
    mx.error("PUT", f"rooms/{room}/redact/$unknown/r2", nurlan, 404, "M_NOT_FOUND", json={})


def _search(mx: Mx, user: Any, term: str, **spec: Any) -> dict[str, Any]:
    body = {"search_categories": {"room_events": {"search_term": term, **spec}}}
    return mx.ok("POST", "search", user, json=body)["search_categories"]["room_events"]


def test_search_finds_words_in_rooms_the_user_is_in(mx: Mx) -> None:
    nurlan, dana, erlan = mx.login("nurlan.official"), mx.login("dana.official"), mx.login("erlan.security")
    room = mx.room_with(nurlan, dana, name="Бюджет комиссиясы")
    other = mx.room_with(nurlan, erlan)
    mx.send(nurlan, room, "Бюджет жобасы дайын")
    mx.send(dana, room, "Рахмет, бюджетті қарадым")
    mx.send(nurlan, other, "Бюджет туралы құпия")
    mx.send(nurlan, room, "Басқа тақырып")
    found = _search(mx, dana, "БЮДЖЕТ")
    bodies = [r["result"]["content"].get("body") or r["result"]["content"].get("name") for r in found["results"]]
    assert bodies == ["Рахмет, бюджетті қарадым", "Бюджет жобасы дайын", "Бюджет комиссиясы"]
    assert all(r["result"]["room_id"] == room for r in found["results"])
    assert _search(mx, erlan, "бюджет", keys=["content.body"])["results"][0]["result"]["content"]["body"] == (
        "Бюджет туралы құпия"
    )
    paged = _search(mx, dana, "бюджет", filter={"limit": 1}, keys=["content.body"])
    assert len(paged["results"]) == 1 and "next_batch" in paged
    rest = mx.ok(
        "POST",
        f"search?next_batch={paged['next_batch']}",
        dana,
        json={"search_categories": {"room_events": {"search_term": "бюджет", "keys": ["content.body"]}}},
    )["search_categories"]["room_events"]
    assert [r["result"]["content"]["body"] for r in rest["results"]] == ["Бюджет жобасы дайын"]
    with_context = _search(mx, dana, "рахмет", event_context={"before_limit": 1, "after_limit": 1})
    context = with_context["results"][0]["context"]
    assert context["events_before"][0]["content"]["body"] == "Бюджет жобасы дайын"
    assert context["events_after"][0]["content"]["body"] == "Басқа тақырып"
    mx.error("POST", "search", dana, 400, "M_BAD_JSON", json={"search_categories": {"room_events": {}}})


def test_search_skips_encrypted_messages(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    mx.ok(
        "PUT",
        f"rooms/{room}/send/m.room.encrypted/e1",
        nurlan,
        json={"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "бюджет", "session_id": "s"},
    )
    assert _search(mx, dana, "бюджет")["results"] == []
