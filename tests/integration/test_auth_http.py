"""Sign-in, sessions, CSRF, throttling, citizen sign-up and API tokens, driven over HTTP."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from qorgau.kernel.auth import services as auth


def csrf_from(html: str) -> str:
    found = re.search(r'name="_csrf" value="([0-9a-f]{64})"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


def sign_in(client: Any, login: str, password: str) -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"login": login, "password": password, "_csrf": csrf_from(page.text), "next": "/"},
        follow_redirects=False,
    )


def test_official_signs_in_sees_home_and_signs_out(client: Any, demo: dict[str, Any]) -> None:
    account = demo["nurlan.official"]
    response = sign_in(client, account.username, account.password)
    assert response.status_code in (302, 303)
    cookie = response.headers["set-cookie"]
    assert "qorgau_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    home = client.get("/")
    assert home.status_code == 200
    assert "Нұрлан Ахметов" in home.text
    me = client.get("/api/v1/me").json()
    assert me["role"] == "official" and me["username"] == "nurlan.official"
    out = client.post("/logout", data={"_csrf": csrf_from(home.text)}, follow_redirects=False)
    assert out.status_code in (302, 303)
    assert client.get("/api/v1/me").json()["code"] == "auth.required"


def test_wrong_password_is_a_clear_error_and_no_session(client: Any, demo: dict[str, Any]) -> None:
    response = sign_in(client, "nurlan.official", "not-the-password")
    assert response.status_code == 401
    assert "qorgau_session" not in response.headers.get("set-cookie", "")
    assert client.get("/api/v1/me").status_code == 401


def test_state_change_without_csrf_token_is_refused(client: Any, demo: dict[str, Any]) -> None:
    account = demo["nurlan.official"]
    sign_in(client, account.username, account.password)
    response = client.post("/account/tokens", data={"name": "x", "scopes": "*"})
    assert response.status_code == 403
    assert "auth.csrf" in response.text
    assert client.get("/api/v1/auth/tokens").json()["tokens"] == []


def test_login_form_needs_csrf_too(client: Any, demo: dict[str, Any]) -> None:
    response = client.post("/login", data={"login": "admin", "password": demo["admin"].password})
    assert response.status_code == 403


def test_account_locks_after_repeated_failures(client: Any, kernel: Any, demo: dict[str, Any]) -> None:
    for _ in range(kernel.settings.login_max_failures):
        assert sign_in(client, "dana.official", "wrong-password-1").status_code in (401, 429)
    # Now even the right password is refused until the lockout ends.
    response = sign_in(client, "dana.official", demo["dana.official"].password)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1


def test_locked_account_problem_json_from_service(kernel: Any, demo: dict[str, Any]) -> None:
    from qorgau.kernel.errors import Problem

    for _ in range(kernel.settings.login_max_failures):
        with pytest.raises(Problem):
            auth.do_sign_in(kernel, "serik.police", "wrong-password-2")
    with pytest.raises(Problem) as caught:
        auth.do_sign_in(kernel, "serik.police", demo["serik.police"].password)
    assert caught.value.code == "auth.locked"


def test_citizen_signs_up_with_iin_and_phone(client: Any, kernel: Any) -> None:
    page = client.get("/signup")
    response = client.post(
        "/signup",
        data={
            "iin": "061211600012",
            "phone": "8 (701) 234-56-78",
            "password": "a-long-password",
            "password_confirm": "a-long-password",
            "_csrf": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert response.status_code in (302, 303), response.text[:500]
    me = client.get("/api/v1/me").json()
    assert me["role"] == "citizen"
    account = client.get("/account")
    assert "061211600012" in account.text and "+77012345678" in account.text
    # The IIN is not stored in clear anywhere in the users table.
    import sqlalchemy as sa

    with kernel.db.read() as conn:
        rows = conn.execute(sa.text("SELECT * FROM users WHERE role = 'citizen'")).all()
    assert rows and all("061211600012" not in str(value) for row in rows for value in row)


def test_citizen_sign_up_rejects_bad_iin(client: Any) -> None:
    page = client.get("/signup")
    response = client.post(
        "/signup",
        data={
            "iin": "061211600013",
            "phone": "+7 701 234 56 78",
            "password": "a-long-password",
            "password_confirm": "a-long-password",
            "_csrf": csrf_from(page.text),
        },
    )
    assert response.status_code == 400
    assert "iin" in response.text


def test_api_token_lifecycle(client: Any, demo: dict[str, Any]) -> None:
    account = demo["aigerim.admin"]
    sign_in(client, account.username, account.password)
    page = client.get("/account")
    created = client.post(
        "/api/v1/auth/tokens",
        json={"name": "script", "scopes": ["users"]},
        headers={"X-CSRF-Token": csrf_from(page.text)},
    )
    assert created.status_code == 201
    token = created.json()["token"]
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/users", headers=bearer).status_code == 200
    # The token's scope does not cover creating API tokens.
    assert client.post("/api/v1/auth/tokens", json={"name": "x"}, headers=bearer).status_code == 403
    token_id = created.json()["id"]
    sign_in(client, account.username, account.password)
    for _ in range(100):  # use is recorded off the request path
        listed = client.get("/api/v1/auth/tokens").json()["tokens"]
        if listed[0]["last_used_at"]:
            break
        time.sleep(0.02)
    assert listed[0]["last_used_at"], "the token's last use was not recorded"
    page = client.get("/account")
    revoked = client.delete(f"/api/v1/auth/tokens/{token_id}", headers={"X-CSRF-Token": csrf_from(page.text)})
    assert revoked.status_code == 204
    client.cookies.clear()
    problem = client.get("/api/v1/users", headers=bearer)
    assert problem.status_code == 401
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["code"] == "auth.token_invalid"


def test_problem_titles_are_translated(client: Any) -> None:
    for lang, word in (("ru", "Войдите"), ("kk", "Жүйеге"), ("en", "sign in")):
        body = client.get("/api/v1/me", headers={"Accept-Language": lang}).json()
        assert body["code"] == "auth.required"
        assert word.lower() in body["title"].lower(), (lang, body["title"])


def test_a_provider_verified_citizen_gets_an_account_and_a_session(client: Any, kernel: Any) -> None:
    from qorgau.kernel.auth.identity import VerifiedIdentity, sign_in_verified

    first = sign_in_verified(kernel, VerifiedIdentity(provider="egov", iin="061211600012", phone_e164="+77011112233"))
    again = sign_in_verified(kernel, VerifiedIdentity(provider="egov", iin="061211600012"))
    assert first.actor.user_id == again.actor.user_id and first.actor.role == "citizen"
    client.cookies.set("qorgau_session", again.session_token)
    assert client.get("/api/v1/me").json()["role"] == "citizen"
    from qorgau.kernel.errors import Problem

    with pytest.raises(Problem):
        sign_in_verified(kernel, VerifiedIdentity(provider="egov", iin="061211600013"))


def test_one_client_guessing_many_accounts_is_throttled(client: Any, kernel: Any, demo: dict[str, Any]) -> None:
    names = ["admin", "aigerim.admin", "nurlan.official", "dana.official", "serik.police", "madina.inspector"]
    statuses = [sign_in(client, name, "guessing-password").status_code for name in names]
    assert statuses[: kernel.settings.login_max_failures] == [401] * kernel.settings.login_max_failures
    assert statuses[-1] == 429
    # Nothing about the client was written to the database.
    import sqlalchemy as sa

    with kernel.db.read() as conn:
        for table in ("users", "sessions", "api_tokens", "events", "ledger_entries"):
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
            assert all("testclient" not in str(v) and "127.0.0.1" not in str(v) for r in rows for v in r)


def test_session_cookie_is_secure_over_https(app: Any, demo: dict[str, Any]) -> None:
    from litestar.testing import TestClient

    with TestClient(app=app, base_url="https://qorgau.example.kz") as secure_client:
        response = sign_in(secure_client, "admin", demo["admin"].password)
        assert response.status_code in (302, 303)
        assert "Secure" in response.headers["set-cookie"]
