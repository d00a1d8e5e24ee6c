"""Conformance: matrix-nio, a real Matrix client, against a real server (uvicorn) on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    DownloadError,
    ErrorResponse,
    LoginResponse,
    ResizingMethod,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)
from PIL import Image

from tests.e2e.test_two_processes import cluster  # noqa: F401 - the two-process fixture
from tests.live import serve

SERVER = "qorgau.example.kz"
NURLAN = f"@nurlan.official:{SERVER}"
DANA = f"@dana.official:{SERVER}"
ERLAN = f"@erlan.security:{SERVER}"


@pytest.fixture
def server(kernel: Any, demo: dict[str, Any]) -> Iterator[str]:
    from qorgau.app import create_app

    with serve(create_app(kernel=kernel)) as url:
        yield url


@pytest.fixture
async def clients(server: str, demo: dict[str, Any]) -> AsyncIterator[dict[str, AsyncClient]]:
    made: dict[str, AsyncClient] = {}
    for name, mxid in (("nurlan", NURLAN), ("dana", DANA), ("erlan", ERLAN)):
        client = _client(server, mxid)
        response = await client.login(demo[mxid[1:].split(":")[0]].password, device_name=f"{name}'s laptop")
        assert isinstance(response, LoginResponse), response
        made[name] = client
    yield made
    for client in made.values():
        await client.close()


def _client(server: str, mxid: str) -> AsyncClient:
    return AsyncClient(server, mxid, config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0))


async def _sync(client: AsyncClient, timeout: int = 5000, **kw: Any) -> SyncResponse:
    response = await client.sync(timeout=timeout, **kw)
    assert isinstance(response, SyncResponse), response
    return response


async def _room_with_both(nurlan: AsyncClient, dana: AsyncClient, name: str = "Цифрландыру") -> str:
    created = await nurlan.room_create(name=name, topic="Жұмыс чаты", invite=[DANA])
    assert isinstance(created, RoomCreateResponse), created
    await _sync(nurlan, timeout=0)
    first = await _sync(dana, timeout=0)
    assert created.room_id in first.rooms.invite
    joined = await dana.join(created.room_id)
    assert not isinstance(joined, ErrorResponse), joined
    await _sync(dana)
    return created.room_id


def _texts(response: SyncResponse, room_id: str) -> list[str]:
    room = response.rooms.join.get(room_id)
    if room is None:
        return []
    return [e.body for e in room.timeline.events if isinstance(e, RoomMessageText)]


async def test_two_officials_chat_page_history_and_see_typing_and_receipts(clients: dict[str, AsyncClient]) -> None:
    nurlan, dana = clients["nurlan"], clients["dana"]
    room_id = await _room_with_both(nurlan, dana)
    # nio learns the room's name from the state of the first sync after joining.
    assert dana.rooms[room_id].name == "Цифрландыру"
    assert dana.rooms[room_id].topic == "Жұмыс чаты"
    assert set(dana.rooms[room_id].users) == {NURLAN, DANA}

    sent = await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "Сәлем, Дана!"})
    assert isinstance(sent, RoomSendResponse), sent
    got = await _sync(dana)
    assert _texts(got, room_id) == ["Сәлем, Дана!"]
    assert got.rooms.join[room_id].unread_notifications.notification_count == 1

    reply = await dana.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "Сәлем, Нұрлан!"})
    assert isinstance(reply, RoomSendResponse)
    seen: list[str] = []
    while "Сәлем, Нұрлан!" not in seen:
        seen += _texts(await _sync(nurlan), room_id)
    assert seen == ["Сәлем, Дана!", "Сәлем, Нұрлан!"]

    # Typing: dana starts typing, nurlan sees it.
    assert not isinstance(await dana.room_typing(room_id, True, timeout=10_000), ErrorResponse)
    await _sync(nurlan)
    assert nurlan.rooms[room_id].typing_users == [DANA]
    assert not isinstance(await dana.room_typing(room_id, False), ErrorResponse)
    await _sync(nurlan)
    assert nurlan.rooms[room_id].typing_users == []

    # Read receipt (nio sends {"thread_id": "main"}): nurlan sees dana read his message.
    assert not isinstance(await dana.update_receipt_marker(room_id, sent.event_id), ErrorResponse)
    await _sync(nurlan)
    receipts = nurlan.rooms[room_id].threaded_read_receipts[DANA]
    assert receipts["main"].event_id == sent.event_id
    marker = await dana.room_read_markers(room_id, reply.event_id, reply.event_id)
    assert not isinstance(marker, ErrorResponse), marker
    assert (await _sync(dana)).rooms.join[room_id].unread_notifications.notification_count == 0

    # History: 25 more messages, then page back from the sync's prev_batch.
    for i in range(25):
        assert isinstance(
            await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"хабар {i}"}),
            RoomSendResponse,
        )
    latest = await _sync(dana, sync_filter={"room": {"timeline": {"limit": 5}}})
    timeline = latest.rooms.join[room_id].timeline
    assert timeline.limited is True
    assert [e.body for e in timeline.events] == [f"хабар {i}" for i in range(20, 25)]
    older: list[str] = []
    token = timeline.prev_batch
    while token:
        page = await dana.room_messages(room_id, start=token, limit=7)
        assert isinstance(page, RoomMessagesResponse), page
        older += [e.body for e in page.chunk if isinstance(e, RoomMessageText)]
        token = page.end if page.chunk else None
    assert older[:20] == [f"хабар {i}" for i in range(19, -1, -1)]
    assert older[-2:] == ["Сәлем, Нұрлан!", "Сәлем, Дана!"]


async def test_official_outside_the_room_is_forbidden(clients: dict[str, AsyncClient]) -> None:
    nurlan, dana, erlan = clients["nurlan"], clients["dana"], clients["erlan"]
    room_id = await _room_with_both(nurlan, dana)
    sent = await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "ДСП емес, бірақ жабық"})
    assert isinstance(sent, RoomSendResponse)

    attempt = await erlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "мен де"})
    assert isinstance(attempt, ErrorResponse) and attempt.status_code == "M_FORBIDDEN"
    history = await erlan.room_messages(room_id, start="", limit=10)
    assert isinstance(history, ErrorResponse) and history.status_code == "M_FORBIDDEN"
    single = await erlan.room_get_event(room_id, sent.event_id)
    assert isinstance(single, ErrorResponse) and single.status_code == "M_FORBIDDEN"
    joined = await erlan.join(room_id)
    assert isinstance(joined, ErrorResponse) and joined.status_code == "M_FORBIDDEN"
    # And nothing of the room reaches erlan's sync.
    assert room_id not in (await _sync(erlan, timeout=0)).rooms.join


async def test_upload_download_and_photo_location_is_stripped(clients: dict[str, AsyncClient]) -> None:
    nurlan, dana = clients["nurlan"], clients["dana"]
    room_id = await _room_with_both(nurlan, dana)
    document = "Хаттама №1\n".encode() * 50
    uploaded, _keys = await nurlan.upload(io.BytesIO(document), "text/plain", "хаттама.txt", filesize=len(document))
    assert isinstance(uploaded, UploadResponse), uploaded
    # A file is shared by sending it to a room; before that only its uploader may fetch it.
    assert isinstance(await dana.download(uploaded.content_uri), DownloadError)
    await _share(nurlan, room_id, "m.file", "хаттама.txt", uploaded.content_uri)
    fetched = await dana.download(uploaded.content_uri)
    assert not isinstance(fetched, DownloadError), fetched
    assert fetched.body == document

    photo = _jpeg_with_gps()
    assert b"Exif" in photo and Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)
    uploaded, _keys = await nurlan.upload(io.BytesIO(photo), "image/jpeg", "photo.jpg", filesize=len(photo))
    assert isinstance(uploaded, UploadResponse), uploaded
    await _share(nurlan, room_id, "m.image", "photo.jpg", uploaded.content_uri)
    fetched = await dana.download(uploaded.content_uri)
    assert not isinstance(fetched, DownloadError), fetched
    clean = Image.open(io.BytesIO(fetched.body))
    assert clean.format == "JPEG" and clean.size == (64, 48)
    assert not clean.getexif().get_ifd(0x8825)
    assert len(clean.getexif()) == 0 and b"Exif" not in fetched.body
    server_name, media_id = uploaded.content_uri.removeprefix("mxc://").split("/")
    thumb = await dana.thumbnail(server_name, media_id, 32, 32, method=ResizingMethod.crop)
    assert not isinstance(thumb, ErrorResponse), thumb
    assert Image.open(io.BytesIO(thumb.body)).size == (32, 32)


async def _share(client: AsyncClient, room_id: str, msgtype: str, name: str, uri: str) -> None:
    sent = await client.room_send(room_id, "m.room.message", {"msgtype": msgtype, "body": name, "url": uri})
    assert isinstance(sent, RoomSendResponse), sent


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "Phone 12"  # camera model
    exif[0x8825] = {1: "N", 2: (43.0, 15.0, 30.0), 3: "E", 4: (76.0, 57.0, 0.0)}
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_sync_resumes_exactly_across_a_reconnect(
    clients: dict[str, AsyncClient], server: str, demo: dict[str, Any]
) -> None:
    nurlan, dana = clients["nurlan"], clients["dana"]
    room_id = await _room_with_both(nurlan, dana)
    unlimited = {"room": {"timeline": {"limit": 1000}}}
    seen: list[str] = []
    for i in range(10):
        await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"m{i}"})
        if i % 3 == 0:
            seen += _texts(await _sync(dana, timeout=0, sync_filter=unlimited), room_id)
    token = dana.next_batch
    await dana.close()
    # Offline: more messages arrive.
    for i in range(10, 30):
        await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"m{i}"})
    # A new connection (same device, same token) resumes from the saved token.
    again = _client(server, DANA)
    again.restore_login(DANA, dana.device_id, dana.access_token)
    try:
        while len(seen) < 30:
            response = await _sync(again, timeout=2000, since=token, sync_filter=unlimited)
            seen += _texts(response, room_id)
            token = response.next_batch
    finally:
        await again.close()
    assert seen == [f"m{i}" for i in range(30)]


async def test_sending_with_the_same_transaction_id_is_idempotent(clients: dict[str, AsyncClient]) -> None:
    nurlan, dana = clients["nurlan"], clients["dana"]
    room_id = await _room_with_both(nurlan, dana)
    txn = str(uuid.uuid4())
    first = await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "бір рет"}, tx_id=txn)
    second = await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "бір рет"}, tx_id=txn)
    assert isinstance(first, RoomSendResponse) and isinstance(second, RoomSendResponse)
    assert first.event_id == second.event_id
    assert _texts(await _sync(dana), room_id) == ["бір рет"]
    page = await dana.room_messages(room_id, start="", limit=50)
    assert isinstance(page, RoomMessagesResponse)
    assert [e.body for e in page.chunk if isinstance(e, RoomMessageText)] == ["бір рет"]
    # The sender's own sync carries its transaction id (local echo matching).
    mine = (await _sync(nurlan, timeout=0)).rooms.join[room_id].timeline.events
    echoed = [e for e in mine if isinstance(e, RoomMessageText)]
    assert echoed and echoed[-1].transaction_id == txn


async def test_redaction_removes_the_content_for_everyone(clients: dict[str, AsyncClient]) -> None:
    nurlan, dana = clients["nurlan"], clients["dana"]
    room_id = await _room_with_both(nurlan, dana)
    sent = await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "қате жіберілді"})
    assert isinstance(sent, RoomSendResponse)
    await _sync(dana)
    redacted = await nurlan.room_redact(room_id, sent.event_id, reason="қате")
    assert not isinstance(redacted, ErrorResponse), redacted
    got = await _sync(dana)
    redactions = [e for e in got.rooms.join[room_id].timeline.events if type(e).__name__ == "RedactionEvent"]
    assert redactions and redactions[0].redacts == sent.event_id
    fetched = await dana.room_get_event(room_id, sent.event_id)
    assert not isinstance(fetched, ErrorResponse), fetched
    assert type(fetched.event).__name__ == "RedactedEvent"
    assert "body" not in fetched.event.source["content"]
    # Dana may not redact Nurlan's messages (she lacks the power level).
    other = await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "қалсын"})
    assert isinstance(other, RoomSendResponse)
    refused = await dana.room_redact(room_id, other.event_id)
    assert isinstance(refused, ErrorResponse) and refused.status_code == "M_FORBIDDEN"


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_message_through_one_process_reaches_a_long_poll_on_the_other(cluster: dict[str, Any]) -> None:  # noqa: F811
    import asyncio
    import time

    from qorgau.demo import demo_password
    from qorgau.kernel.context import build_kernel
    from qorgau.settings import load_settings

    settings = load_settings(env={}, data_dir=cluster["data_dir"], database_url=cluster["database_url"])
    kernel = build_kernel(settings, start_writer=False)
    passwords = {name: demo_password(kernel, name) for name in ("nurlan.official", "dana.official")}
    kernel.close()
    a, b = cluster["urls"]
    nurlan, dana = _client(a, NURLAN), _client(b, DANA)
    try:
        assert isinstance(await nurlan.login(passwords["nurlan.official"]), LoginResponse)
        assert isinstance(await dana.login(passwords["dana.official"]), LoginResponse)
        room_id = await _room_with_both(nurlan, dana, name="Екі процесс")
        unlimited = {"room": {"timeline": {"limit": 1000}}}
        await _sync(dana, timeout=0, sync_filter=unlimited)
        for i in range(3):
            poll = asyncio.create_task(dana.sync(timeout=20_000, sync_filter=unlimited))
            await asyncio.sleep(0.3)  # parked on process B
            assert not poll.done()
            sent_at = time.monotonic()
            sent = await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"A→B {i}"})
            assert isinstance(sent, RoomSendResponse), sent
            answer = await poll
            assert isinstance(answer, SyncResponse), answer
            assert time.monotonic() - sent_at < 2.0  # woken through Redis, not by the 20 s timeout
            assert _texts(answer, room_id) == [f"A→B {i}"]
        # The token from process B resumes exactly on process A.
        token = dana.next_batch
        for i in range(5):
            await nurlan.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"later {i}"})
        moved = _client(a, DANA)
        moved.restore_login(DANA, dana.device_id, dana.access_token)
        try:
            seen: list[str] = []
            while len(seen) < 5:
                answer = await _sync(moved, timeout=2000, since=token, sync_filter=unlimited)
                seen += _texts(answer, room_id)
                token = answer.next_batch
            assert seen == [f"later {i}" for i in range(5)]
        finally:
            await moved.close()
    finally:
        await nurlan.close()
        await dana.close()
