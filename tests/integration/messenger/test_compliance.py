"""Records of the messenger: exports (ZIP, ledgered, ДСП withheld), legal hold, and the retention purge."""

from __future__ import annotations

import dataclasses
import io
import json
import time
import zipfile
from typing import Any
from urllib.parse import quote

import pytest

from qorgau.messenger import tables as t
from qorgau.messenger.services import compliance
from tests.integration.messenger.conftest import Mx
from tests.integration.messenger.test_letters import As, agency_id, ledger_actions, letter_id_of, png, register

DAY_MS = 86_400_000


@pytest.fixture
def mx(client: Any, demo: dict[str, Any]) -> Mx:
    return Mx(client, demo)


def in_two_days() -> int:
    return int(time.time() * 1000) + 2 * DAY_MS


def export(person: As, room_id: str) -> Any:
    return person.post(f"/messenger/rooms/{quote(room_id, safe='')}/export", data={"_csrf": person.csrf})


def unzip(response: Any) -> dict[str, bytes]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def bodies(files: dict[str, bytes]) -> list[str]:
    events = json.loads(files["events.json"])
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message" and "content" in e]


def test_a_member_exports_a_room_with_its_files_and_the_export_is_ledgered(
    mx: Mx, client: Any, demo: dict[str, Any], kernel: Any
) -> None:
    nurlan, aigerim = mx.login("nurlan.official"), mx.login("aigerim.admin")
    room_id = mx.room_with(nurlan, aigerim, name="Проект портала")
    mx.send(nurlan, room_id, "Черновик плана во вложении")
    uri = mx.ok(
        "POST",
        "/_matrix/media/v3/upload?filename=plan.png",
        nurlan,
        content=png(),
        headers={"Content-Type": "image/png"},
    )["content_uri"]
    mx.ok(
        "PUT",
        f"rooms/{room_id}/send/m.room.message/img1",
        nurlan,
        json={"msgtype": "m.image", "body": "plan.png", "url": uri},
    )

    files = unzip(export(As(client, demo, "aigerim.admin"), room_id))
    manifest = json.loads(files["manifest.json"])
    assert manifest["name"] == "Проект портала" and manifest["withheld_dsp"] == 0 and manifest["files"] == 1
    assert "Черновик плана во вложении" in bodies(files)
    attached = [name for name in files if name.startswith("files/")]
    assert len(attached) == 1 and files[attached[0]][:4] == b"\x89PNG"
    assert "messenger.room_exported" in ledger_actions(kernel)

    # Someone outside the room and outside its agency's security gets nothing, not even its existence.
    assert export(As(client, demo, "dana.official"), room_id).status_code == 404


def test_dsp_content_is_withheld_from_an_official_but_not_from_the_security_officer(
    mx: Mx, client: Any, demo: dict[str, Any], kernel: Any
) -> None:
    nurlan, aigerim = mx.login("nurlan.official"), mx.login("aigerim.admin")
    room_id = mx.room_with(
        nurlan,
        aigerim,
        name="ДСП совещание",
        initial_state=[{"type": "kz.qorgau.dsp", "state_key": "", "content": {"dsp": True}}],
    )
    mx.send(nurlan, room_id, "Служебная информация")
    official = unzip(export(As(client, demo, "nurlan.official"), room_id))
    assert "Служебная информация" not in official["events.json"].decode()
    assert json.loads(official["manifest.json"])["withheld_dsp"] >= 1
    # The agency's security officer, not a member, may export it whole.
    security = unzip(export(As(client, demo, "erlan.security"), room_id))
    assert "Служебная информация" in security["events.json"].decode()
    assert ledger_actions(kernel).count("messenger.room_exported") == 2


def test_retention_purges_old_messages_except_in_rooms_on_legal_hold(
    mx: Mx, client: Any, demo: dict[str, Any], kernel: Any
) -> None:
    nurlan, aigerim = mx.login("nurlan.official"), mx.login("aigerim.admin")
    kept = mx.room_with(nurlan, aigerim, name="Под расследованием")
    purged = mx.room_with(nurlan, aigerim, name="Обычный")
    mx.send(nurlan, kept, "Сохранить навсегда")
    mx.send(nurlan, purged, "Старое сообщение")

    # Only the agency's security officer (or admin) places a hold; an official cannot.
    official, security = As(client, demo, "nurlan.official"), As(client, demo, "erlan.security")
    path = f"/messenger/compliance/rooms/{quote(kept, safe='')}/hold"
    assert official.post(path, data={"_csrf": official.csrf, "reason": "investigation"}).status_code == 403
    assert security.post(path, data={"_csrf": security.csrf, "reason": "no-such"}).status_code == 400
    held = security.post(path, data={"_csrf": security.csrf, "reason": "investigation"}, follow_redirects=False)
    assert held.status_code == 303
    page = security.get("/messenger/compliance")
    assert 'data-testid="on-hold"' in page.text and "Под расследованием" in page.text
    other_agency = As(client, demo, "aidos.chief")
    assert other_agency.post(path, data={"_csrf": other_agency.csrf, "action": "release"}).status_code == 404

    kernel.settings = dataclasses.replace(kernel.settings, messenger_retention_group_days=1)
    later = compliance.purge_expired(kernel, now_ms=in_two_days(), dry_run=True)
    assert later.events == 1
    result = compliance.purge_expired(kernel, now_ms=in_two_days())
    assert (result.events, result.rooms) == (1, 1)
    again = compliance.purge_expired(kernel, now_ms=in_two_days())
    assert again.events == 0

    def history(room_id: str) -> list[dict[str, Any]]:
        chunk = mx.ok("GET", f"rooms/{room_id}/messages?dir=b&limit=50", aigerim)["chunk"]
        return [e for e in chunk if e["type"] == "m.room.message"]

    assert [e["content"].get("body") for e in history(kept)] == ["Сохранить навсегда"]
    assert [e["content"] for e in history(purged)] == [{}]
    assert "messenger.retention_purge" in ledger_actions(kernel)
    assert "messenger.legal_hold" in ledger_actions(kernel)

    # Lifting the hold lets the rule apply to that room too.
    security.post(path, data={"_csrf": security.csrf, "action": "release"})
    assert compliance.purge_expired(kernel, now_ms=in_two_days()).events == 1
    assert "messenger.legal_hold_lifted" in ledger_actions(kernel)


def test_a_letter_file_exports_with_answers_and_attachments(client: Any, demo: dict[str, Any], kernel: Any) -> None:
    nurlan, dana = As(client, demo, "nurlan.official"), As(client, demo, "dana.official")
    letter_id = letter_id_of(
        register(
            nurlan,
            nurlan.csrf,
            addressees=[agency_id(kernel, "almaty-akimat")],
            subject="Запрос данных",
            body="Просим предоставить сведения.",
            files=[("files", ("table.png", png(), "image/png"))],
        )
    )
    dana.get(f"/messenger/letters/{letter_id}")
    letter_id_of(
        register(
            dana,
            dana.csrf,
            addressees=[agency_id(kernel, "astana-digital")],
            subject="Re: Запрос данных",
            body="Направляем.",
            in_reply_to=letter_id,
        )
    )
    files = unzip(nurlan.post(f"/messenger/letters/{letter_id}/export", data={"_csrf": nurlan.csrf}))
    documents = json.loads(files["letters.json"])
    assert [d["subject"] for d in documents] == ["Запрос данных", "Re: Запрос данных"]
    assert documents[0]["addressees"][0]["state"] == "answered"
    assert any(name.endswith("table.png") for name in files)
    assert "letter.exported" in ledger_actions(kernel)
    assert As(client, demo, "serik.police").post(
        f"/messenger/letters/{letter_id}/export", data={"_csrf": ""}
    ).status_code in (403, 404)


def test_a_dsp_letter_is_withheld_from_an_officials_export(client: Any, demo: dict[str, Any], kernel: Any) -> None:
    nurlan = As(client, demo, "nurlan.official")
    letter_id = letter_id_of(
        register(
            nurlan,
            nurlan.csrf,
            addressees=[agency_id(kernel, "almaty-akimat")],
            subject="ДСП тема",
            body="ДСП текст",
            dsp="1",
        )
    )
    files = unzip(nurlan.post(f"/messenger/letters/{letter_id}/export", data={"_csrf": nurlan.csrf}))
    assert "ДСП текст" not in files["letters.json"].decode()
    security = As(client, demo, "erlan.security")
    full = unzip(security.post(f"/messenger/letters/{letter_id}/export", data={"_csrf": security.csrf}))
    assert "ДСП текст" in full["letters.json"].decode()


def test_the_purge_command_applies_the_retention_periods(mx: Mx, kernel: Any, settings: Any) -> None:
    from typer.testing import CliRunner

    from qorgau.cli import app as cli

    nurlan, aigerim = mx.login("nurlan.official"), mx.login("aigerim.admin")
    room_id = mx.room_with(nurlan, aigerim, is_direct=True)
    mx.send(nurlan, room_id, "Старая переписка")
    old = int(time.time() * 1000) - 400 * DAY_MS
    kernel.db.run(
        lambda tx: tx.execute(
            t.events.update()
            .where(t.events.c.room_id == room_id, t.events.c.type == "m.room.message")
            .values(origin_server_ts=old)
        )
    )
    args = ["messenger", "purge", "--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    dry = CliRunner().invoke(cli, [*args, "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0 and "1 messages in 1 rooms are due" in dry.output
    done = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert done.exit_code == 0 and "1 messages purged in 1 rooms" in done.output
    chunk = mx.ok("GET", f"rooms/{room_id}/messages?dir=b&limit=50", aigerim)["chunk"]
    assert [e["content"] for e in chunk if e["type"] == "m.room.message"] == [{}]
    again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert again.exit_code == 0 and "0 messages purged" in again.output
