"""The Matrix API over plain HTTP: discovery, sign-in, error shapes, tokens, and what real clients send."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from tests.integration.messenger.conftest import SERVER, Mx, mxid

MEDIA = "/_matrix/client/v1/media"


def test_discovery_needs_no_token(mx: Mx) -> None:
    versions = mx.ok("GET", "/_matrix/client/versions")
    assert "v1.11" in versions["versions"]
    assert mx.ok("GET", "/.well-known/matrix/client")["m.homeserver"]["base_url"].startswith("http")
    assert mx.ok("GET", "login")["flows"] == [{"type": "m.login.password"}]


def test_official_signs_in_with_identifier_or_legacy_user_field(mx: Mx, demo: dict[str, Any]) -> None:
    nurlan = mx.login("nurlan.official")
    assert nurlan.user_id == mxid("nurlan.official") and nurlan.token.startswith("mxt_")
    legacy = mx.ok(
        "POST",
        "login",
        json={"type": "m.login.password", "user": mxid("dana.official"), "password": demo["dana.official"].password},
    )
    assert legacy["user_id"] == mxid("dana.official")
    assert mx.ok("GET", "account/whoami", nurlan) == {
        "user_id": nurlan.user_id,
        "device_id": nurlan.device_id,
        "is_guest": False,
    }
    caps = mx.ok("GET", "capabilities", nurlan)["capabilities"]
    assert caps["m.room_versions"]["default"] == "10"


def test_only_the_digest_of_an_access_token_is_stored(mx: Mx, kernel: Any) -> None:
    nurlan = mx.login("nurlan.official", device_id="LAPTOP")
    with kernel.db.read() as conn:
        rows = conn.execute(sa.text("SELECT device_id, token_hash FROM messenger_devices")).all()
    assert [r.device_id for r in rows] == ["LAPTOP"]
    assert nurlan.token not in {r.token_hash for r in rows}


@pytest.mark.parametrize("username", ["asel.owner", "bolat.guard", "kairat.operator", "admin", "850808301077"])
def test_people_who_are_not_officials_cannot_sign_in(mx: Mx, demo: dict[str, Any], username: str) -> None:
    body = {"type": "m.login.password", "user": username, "password": demo[username].password}
    mx.error("POST", "login", None, 403, "M_FORBIDDEN", json=body)


def test_wrong_password_then_lockout_is_limit_exceeded(mx: Mx) -> None:
    body = {"type": "m.login.password", "user": "nurlan.official", "password": "not-the-password"}
    for _ in range(5):
        mx.error("POST", "login", None, 403, "M_FORBIDDEN", json=body)
    locked = mx.error("POST", "login", None, 429, "M_LIMIT_EXCEEDED", json=body)
    assert locked["retry_after_ms"] >= 1000


def test_error_shapes(mx: Mx) -> None:
    nurlan = mx.login("nurlan.official")
    mx.error("GET", "no/such/endpoint", nurlan, 404, "M_UNRECOGNIZED")
    mx.error("DELETE", "account/whoami", nurlan, 405, "M_UNRECOGNIZED")
    mx.error("GET", "account/whoami", None, 401, "M_MISSING_TOKEN")
    mx.error("GET", "account/whoami", None, 401, "M_UNKNOWN_TOKEN", headers={"Authorization": "Bearer mxt_nope"})
    mx.error(
        "POST",
        "createRoom",
        nurlan,
        400,
        "M_NOT_JSON",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    mx.error("POST", "createRoom", nurlan, 400, "M_BAD_JSON", json=["a", "list"])
    mx.error("POST", "createRoom", nurlan, 400, "M_BAD_JSON", json={"invite": "not-a-list"})
    mx.error("GET", "sync", nurlan, 400, "M_INVALID_PARAM", params={"since": "garbage"})
    mx.error("GET", "sync", nurlan, 400, "M_INVALID_PARAM", params={"since": "s999999999"})
    mx.error("GET", "sync", nurlan, 400, "M_INVALID_PARAM", params={"timeout": "soon"})
    mx.error("POST", "login", None, 400, "M_MISSING_PARAM", json={"type": "m.login.password", "user": "x"})
    mx.error("POST", "login", None, 400, "M_UNKNOWN", json={"type": "m.login.token", "token": "x"})
    mx.error("GET", "profile/@nobody:qorgau.example.kz", nurlan, 404, "M_NOT_FOUND")


def test_access_token_in_the_query_string(mx: Mx) -> None:
    nurlan = mx.login("nurlan.official")
    found = mx.ok("GET", f"account/whoami?access_token={nurlan.token}")
    assert found["user_id"] == nurlan.user_id
    mx.error("GET", "account/whoami?access_token=mxt_wrong", None, 401, "M_UNKNOWN_TOKEN")


def test_logout_ends_the_token_and_logout_all_every_device(mx: Mx) -> None:
    laptop = mx.login("nurlan.official")
    phone = mx.login("nurlan.official")
    mx.ok("POST", "logout", laptop, json={})
    mx.error("GET", "account/whoami", laptop, 401, "M_UNKNOWN_TOKEN")
    assert mx.ok("GET", "account/whoami", phone)["device_id"] == phone.device_id
    tablet = mx.login("nurlan.official")
    mx.ok("POST", "logout/all", phone, json={})
    mx.error("GET", "account/whoami", phone, 401, "M_UNKNOWN_TOKEN")
    mx.error("GET", "account/whoami", tablet, 401, "M_UNKNOWN_TOKEN")


def test_signing_in_again_on_a_device_replaces_its_token(mx: Mx) -> None:
    first = mx.login("nurlan.official", device_id="PHONE")
    second = mx.login("nurlan.official", device_id="PHONE")
    assert second.device_id == "PHONE" and second.token != first.token
    mx.error("GET", "account/whoami", first, 401, "M_UNKNOWN_TOKEN")
    mx.ok("GET", "account/whoami", second)


def test_registration_is_closed_by_default(mx: Mx) -> None:
    mx.error("POST", "register", None, 403, "M_FORBIDDEN", json={"username": "newbie", "password": "a-long-password"})


def test_open_registration_uses_the_dummy_stage_and_makes_an_official(kernel: Any, demo: dict[str, Any]) -> None:
    from dataclasses import replace

    from litestar.testing import TestClient

    from qorgau.app import create_app

    kernel.settings = replace(kernel.settings, matrix_open_registration=True)
    with TestClient(app=create_app(kernel=kernel)) as client:
        first = client.post("/_matrix/client/v3/register", json={"username": "newbie", "password": "a-long-password"})
        assert first.status_code == 401 and first.json()["flows"] == [{"stages": ["m.login.dummy"]}]
        body = {
            "username": "newbie",
            "password": "a-long-password",
            "auth": {"type": "m.login.dummy", "session": first.json()["session"]},
        }
        done = client.post("/_matrix/client/v3/register", json=body)
        assert done.status_code == 200, done.text
        assert done.json()["user_id"] == f"@newbie:{SERVER}"
        token = done.json()["access_token"]
        who = client.get("/_matrix/client/v3/account/whoami", headers={"Authorization": f"Bearer {token}"})
        assert who.json()["user_id"] == f"@newbie:{SERVER}"
        again = client.post("/_matrix/client/v3/register", json=body)
        assert again.status_code == 400 and again.json()["errcode"] == "M_USER_IN_USE"
        guest = client.post("/_matrix/client/v3/register?kind=guest", json={})
        assert guest.status_code == 403 and guest.json()["errcode"] == "M_FORBIDDEN"


def test_receipt_bodies_real_clients_send(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    event_id = mx.send(nurlan, room, "оқыңыз")
    mx.ok("POST", f"rooms/{room}/receipt/m.read/{event_id}", dana, json={"thread_id": "main"})
    mx.ok("POST", f"rooms/{room}/receipt/m.read/{event_id}", dana, content=b"")
    mx.ok("POST", f"rooms/{room}/receipt/m.read.private/{event_id}", dana, json={})
    mx.error("POST", f"rooms/{room}/receipt/m.unknown/{event_id}", dana, 400, "M_INVALID_PARAM", json={})
    mx.error("POST", f"rooms/{room}/receipt/m.read/$nope", dana, 404, "M_NOT_FOUND", json={})
    answer = mx.sync(nurlan)
    receipts = [e for e in answer["rooms"]["join"][room]["ephemeral"]["events"] if e["type"] == "m.receipt"]
    content = receipts[0]["content"][event_id]
    assert content["m.read"][dana.user_id]["thread_id"] == "main"
    assert "m.read.private" not in content  # private receipts are only for their owner


def test_download_paths_real_clients_use(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    data = b"%PDF-1.4\n" + b"0" * 2000
    uploaded = mx.ok(
        "POST",
        "/_matrix/media/v3/upload?filename=report.pdf",
        nurlan,
        content=data,
        headers={"Content-Type": "application/pdf"},
    )
    server, media_id = uploaded["content_uri"].removeprefix("mxc://").split("/")
    assert server == SERVER
    # Media are for the uploader and the members of the rooms they are shared in, nobody else.
    mx.error("GET", f"{MEDIA}/download/{server}/{media_id}", dana, 404, "M_NOT_FOUND")
    room_id = mx.room_with(nurlan, dana)
    file_event = {"msgtype": "m.file", "body": "report.pdf", "url": uploaded["content_uri"]}
    mx.ok("PUT", f"rooms/{room_id}/send/m.room.message/f1", nurlan, json=file_event)
    outsider = mx.login("aigerim.admin")
    mx.error("GET", f"{MEDIA}/download/{server}/{media_id}", outsider, 404, "M_NOT_FOUND")
    for path in (
        f"{MEDIA}/download/{server}/{media_id}",
        f"{MEDIA}/download/{server}/{media_id}/",
        f"/_matrix/media/v3/download/{server}/{media_id}",
    ):
        response = mx.request("GET", path, dana)
        assert response.status_code == 200, (path, response.text)
        assert response.content == data
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"].startswith("attachment; filename*=utf-8''report.pdf")
        assert response.headers["x-content-type-options"] == "nosniff"
    named = mx.request("GET", f"{MEDIA}/download/{server}/{media_id}/хаттама.pdf", dana)
    assert "filename*=utf-8''%D1%85" in named.headers["content-disposition"]
    query = mx.request("GET", f"{MEDIA}/download/{server}/{media_id}?access_token={dana.token}")
    assert query.status_code == 200
    mx.error("GET", f"{MEDIA}/download/{server}/{media_id}", None, 401, "M_MISSING_TOKEN")
    mx.error("GET", f"{MEDIA}/download/other.server/{media_id}", dana, 404, "M_NOT_FOUND")
    mx.error("GET", f"{MEDIA}/download/{server}/unknown", dana, 404, "M_NOT_FOUND")
    mx.error("GET", f"{MEDIA}/thumbnail/{server}/{media_id}?width=32&height=32", dana, 404, "M_NOT_FOUND")
    assert mx.ok("GET", f"{MEDIA}/config", dana)["m.upload.size"] == 10 * 1024 * 1024


def test_uploads_are_sniffed_and_size_limited(mx: Mx, kernel: Any) -> None:
    from dataclasses import replace

    nurlan = mx.login("nurlan.official")
    # A PNG declared as text is stored (and served) as what it is.
    png = io.BytesIO()
    Image.new("RGB", (10, 10)).save(png, "PNG")
    uploaded = mx.ok(
        "POST", "/_matrix/media/v3/upload", nurlan, content=png.getvalue(), headers={"Content-Type": "text/plain"}
    )
    media_id = uploaded["content_uri"].rsplit("/", 1)[1]
    fetched = mx.request("GET", f"{MEDIA}/download/{SERVER}/{media_id}", nurlan)
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.headers["content-disposition"].startswith("inline")
    # HTML is never served as HTML.
    page = mx.ok(
        "POST",
        "/_matrix/media/v3/upload",
        nurlan,
        content=b"<html><script>alert(1)</script></html>",
        headers={"Content-Type": "text/html"},
    )
    served = mx.request("GET", f"{MEDIA}/download/{SERVER}/{page['content_uri'].rsplit('/', 1)[1]}", nurlan)
    assert served.headers["content-type"] == "application/octet-stream"
    assert "sandbox" in served.headers["content-security-policy"]
    kernel.settings = replace(kernel.settings, matrix_media_max_bytes=1024)
    mx.error("POST", "/_matrix/media/v3/upload", nurlan, 413, "M_TOO_LARGE", content=b"x" * 2048)
    mx.error("POST", "/_matrix/media/v3/upload", nurlan, 400, "M_UNKNOWN", content=b"\xff\xd8\xff\xe0broken")


def test_serve_flag_opens_registration(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from qorgau.cli import app as cli

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **_kw: served.setdefault("app", app))
    # `serve` hands its settings to worker processes through the environment: restore it afterwards.
    saved = dict(os.environ)
    try:
        for flags, expected in (([], False), (["--matrix-open-registration"], True)):
            served.clear()
            data_dir = tmp_path / ("open" if expected else "closed")
            result = CliRunner().invoke(cli, ["serve", "--data-dir", str(data_dir), *flags], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            kernel = served["app"].state.kernel
            assert kernel.settings.matrix_open_registration is expected
            kernel.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)
