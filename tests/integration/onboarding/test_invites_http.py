"""Invitation links and the onboarding dashboard over HTTP: an admin invites, the official joins by link."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel.auth import tables as t
from tests.integration.test_auth_http import csrf_from, sign_in
from tests.integration.test_authorization_matrix import ACCOUNT_OF, bearer  # noqa: F401 - the fixture

LINK = re.compile(r'id="invite-link"[^>]*value="(http://testserver\.local/invite/[A-Za-z0-9_-]+)"')


def user_id(kernel: Any, username: str) -> str:
    with kernel.db.read() as conn:
        return str(conn.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).scalar_one())


def admin_invites(client: Any, demo: dict[str, Any], username: str = "aliya.new") -> str:
    admin = demo["aigerim.admin"]
    assert sign_in(client, admin.username, admin.password).status_code in (302, 303)
    page = client.get("/admin/users")
    created = client.post(
        "/admin/users/invite",
        data={"_csrf": csrf_from(page.text), "username": username, "display_name": "Әлия Жаңа", "role": "official"},
    )
    assert created.status_code == 201, created.text[-1500:]
    assert created.headers["cache-control"] == "no-store"
    found = LINK.search(created.text)
    assert found, "the link is shown once on the page"
    return found.group(1).removeprefix("http://testserver.local")


def test_invited_official_sets_password_lands_in_messenger_and_shows_as_joined(
    client: Any, kernel: Any, demo: dict[str, Any]
) -> None:
    path = admin_invites(client, demo)
    client.cookies.clear()  # from here on: the invited person's own browser
    page = client.get(path)
    assert page.status_code == 200
    assert "aliya.new" in page.text and "Әлия Жаңа" in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    csrf = csrf_from(page.text)
    differ = client.post(
        path, data={"_csrf": csrf, "password": "a-long-password-1", "password_confirm": "other-one-22"}
    )
    assert differ.status_code == 400 and "auth.password_mismatch" not in differ.text
    short = client.post(path, data={"_csrf": csrf, "password": "short", "password_confirm": "short"})
    assert short.status_code == 400
    done = client.post(
        path,
        data={"_csrf": csrf, "password": "a-long-password-1", "password_confirm": "a-long-password-1"},
        follow_redirects=False,
    )
    assert done.status_code in (302, 303) and done.headers["location"] == "/messenger"
    assert "qorgau_session=" in done.headers["set-cookie"]
    assert client.get("/messenger").status_code == 200
    assert client.get("/api/v1/me").json()["username"] == "aliya.new"
    again = client.get(path)
    assert again.status_code == 410 and "auth.invite_used" in again.text

    client.cookies.clear()
    admin = demo["aigerim.admin"]
    sign_in(client, admin.username, admin.password)
    dashboard = client.get("/admin/onboarding")
    assert dashboard.status_code == 200
    row = re.search(r'data-testid="ob-row-aliya\.new" data-status="(\w+)"', dashboard.text)
    assert row and row.group(1) == "joined"


def test_without_csrf_the_password_is_not_set(client: Any, kernel: Any, demo: dict[str, Any]) -> None:
    path = admin_invites(client, demo)
    client.cookies.clear()
    refused = client.post(path, data={"password": "a-long-password-1", "password_confirm": "a-long-password-1"})
    assert refused.status_code == 403
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(t.users.c.joined_at).where(t.users.c.username == "aliya.new")).scalar() is None


def test_unknown_expired_and_replaced_links_are_clear_pages(client: Any, kernel: Any, demo: dict[str, Any]) -> None:
    path = admin_invites(client, demo)
    page = client.get("/admin/users")
    reissued = client.post(f"/admin/users/{user_id(kernel, 'aliya.new')}/invite", data={"_csrf": csrf_from(page.text)})
    assert reissued.status_code == 200
    newer = LINK.search(reissued.text).group(1).removeprefix("http://testserver.local")  # type: ignore[union-attr]
    client.cookies.clear()
    old = client.get(path, headers={"Accept-Language": "ru"})
    assert old.status_code == 410 and "auth.invite_revoked" in old.text
    unknown = client.get("/invite/" + "A" * 43, headers={"Accept-Language": "ru"})
    assert unknown.status_code == 404 and "auth.invite_unknown" in unknown.text and 'lang="ru"' in unknown.text
    kernel.db.run(lambda tx: tx.execute(t.account_invites.update().values(expires_at=1)))
    expired = client.get(newer)
    assert expired.status_code == 410 and "auth.invite_expired" in expired.text
    posted = client.post(
        newer,
        data={
            "_csrf": csrf_from(expired.text),
            "password": "a-long-password-1",
            "password_confirm": "a-long-password-1",
        },
    )
    assert posted.status_code == 410


def test_guessing_links_is_throttled(client: Any, kernel: Any) -> None:
    statuses = [client.get(f"/invite/{'B' * 42}{i}").status_code for i in range(kernel.settings.login_max_failures + 1)]
    assert statuses[0] == 404 and statuses[-1] == 429


def test_agency_admin_cannot_invite_into_another_agency(client: Any, kernel: Any, demo: dict[str, Any]) -> None:
    admin = demo["aigerim.admin"]
    sign_in(client, admin.username, admin.password)
    page = client.get("/admin/users")
    foreign = client.post(
        "/admin/users/invite",
        data={"_csrf": csrf_from(page.text), "username": "spy.one", "role": "official", "agency": "almaty-akimat"},
    )
    # The form ignores the agency field for an agency admin: the account lands in their own agency.
    assert foreign.status_code == 201
    with kernel.db.read() as conn:
        agency = conn.execute(sa.select(t.users.c.agency_id).where(t.users.c.username == "spy.one")).scalar_one()
    assert agency == user_agency(kernel, "aigerim.admin")
    police = client.post(
        "/admin/users/invite",
        data={"_csrf": csrf_from(page.text), "username": "cop.one", "role": "police_officer"},
    )
    assert police.status_code == 403
    dana = user_id(kernel, "dana.official")
    refused = client.post(f"/admin/users/{dana}/invite", data={"_csrf": csrf_from(page.text)})
    assert refused.status_code == 403
    assert client.get("/admin/onboarding?agency=almaty-akimat").status_code == 403
    assert client.get("/admin/onboarding.csv?agency=almaty-akimat").status_code == 403


def user_agency(kernel: Any, username: str) -> str:
    with kernel.db.read() as conn:
        return str(conn.execute(sa.select(t.users.c.agency_id).where(t.users.c.username == username)).scalar_one())


def test_api_invites_without_password_and_reissues(client: Any, kernel: Any, bearer: dict[str, dict[str, str]]) -> None:  # noqa: F811
    headers = {**bearer["agency_admin"], "Accept": "application/json"}
    created = client.post(
        "/api/v1/users", json={"username": "api.new", "role": "official", "agency": "astana-digital"}, headers=headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["invite"]["url"].startswith("http://testserver.local/invite/")
    uid = body["id"]
    status = client.get(f"/api/v1/users/{uid}/invite", headers=headers).json()
    assert status["state"] == "pending" and "url" not in status
    again = client.post(f"/api/v1/users/{uid}/invite", headers=headers)
    assert again.status_code == 201 and again.json()["url"] != body["invite"]["url"]
    assert client.delete(f"/api/v1/users/{uid}/invite", headers=headers).status_code == 204
    assert client.get(f"/api/v1/users/{uid}/invite", headers=headers).json()["state"] == "none"
    gone = client.delete(f"/api/v1/users/{uid}/invite", headers=headers)
    assert gone.status_code == 404 and gone.headers["content-type"].startswith("application/problem+json")
    joined = client.post(f"/api/v1/users/{user_id(kernel, 'nurlan.official')}/invite", headers=headers)
    assert joined.status_code == 409 and joined.json()["code"] == "auth.invite_joined"
    foreign = client.post(f"/api/v1/users/{user_id(kernel, 'dana.official')}/invite", headers=headers)
    assert foreign.status_code == 403 and foreign.json()["code"] == "auth.forbidden"
    missing = client.post("/api/v1/users/nope/invite", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "http.not_found"
    guard = client.post("/api/v1/users", json={"username": "g.new", "role": "guard"}, headers=bearer["platform_admin"])
    assert guard.status_code == 400 and guard.json()["code"] == "auth.invite_role"


INVITE_API = ["GET", "POST", "DELETE"]


@pytest.mark.parametrize("role", [*ACCOUNT_OF, "anonymous"])
def test_who_may_use_the_invite_api_and_the_admin_forms(
    client: Any,
    kernel: Any,
    bearer: dict[str, dict[str, str]],  # noqa: F811
    role: str,
) -> None:
    timur = user_id(kernel, "timur.seitkali")
    allowed = role in ("platform_admin", "agency_admin")
    for method in INVITE_API:
        response = client.request(method, f"/api/v1/users/{timur}/invite", headers=bearer[role])
        if allowed:
            assert response.status_code in (200, 201, 204), (role, method, response.text)
        else:
            assert response.status_code in (401, 403), (role, method, response.status_code)
    for path in (f"/admin/users/{timur}/invite", "/admin/users/invite"):
        form = client.post(path, data={"username": f"x.{role}", "role": "official"}, headers=bearer[role])
        if allowed:
            assert form.status_code in (200, 201, 400), (role, path, form.status_code)
        else:
            assert form.status_code in (401, 403), (role, path, form.status_code)


def test_dashboard_summary_and_csv(client: Any, kernel: Any, demo: dict[str, Any]) -> None:
    admin = demo["aigerim.admin"]
    sign_in(client, admin.username, admin.password)
    page = client.get("/admin/onboarding")
    assert page.status_code == 200
    assert re.search(r'data-testid="ob-missing">2<', page.text)
    order = re.findall(r'data-testid="ob-row-([\w.]+)" data-status="(\w+)"', page.text)
    assert [s for _u, s in order][:2] == ["expired", "pending"] and order[-1][1] == "joined"
    missing_only = client.get("/admin/onboarding?status=missing").text
    assert "ob-row-nurlan.official" not in missing_only and "ob-row-timur.seitkali" in missing_only
    assert client.get("/admin/onboarding?status=bogus").status_code == 400

    exported = client.get("/admin/onboarding.csv?status=missing", headers={"Accept-Language": "ru"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"].startswith('attachment; filename="onboarding-astana-digital-')
    assert exported.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 3 and {r[1] for r in rows[1:]} == {"timur.seitkali", "zhanar.abdrakhmanova"}
    assert not any("+7" in cell or "850808301077" in cell for r in rows for cell in r)


def test_platform_admin_filters_by_agency(client: Any, demo: dict[str, Any]) -> None:
    admin = demo["admin"]
    sign_in(client, admin.username, admin.password)
    everyone = client.get("/admin/onboarding").text
    assert "ob-row-dana.official" in everyone and "ob-row-timur.seitkali" in everyone
    almaty = client.get("/admin/onboarding?agency=almaty-akimat").text
    assert "ob-row-dana.official" in almaty and "ob-row-timur.seitkali" not in almaty
    assert client.get("/admin/onboarding?agency=nowhere").status_code == 400
    rows = list(csv.reader(io.StringIO(client.get("/admin/onboarding.csv").content.decode("utf-8-sig"))))
    assert {"dana.official", "timur.seitkali"} <= {r[1] for r in rows[1:]}


def test_agency_admin_home_links_to_the_dashboard(client: Any, demo: dict[str, Any]) -> None:
    admin = demo["aigerim.admin"]
    sign_in(client, admin.username, admin.password)
    assert 'href="/admin/onboarding"' in client.get("/").text
    client.cookies.clear()
    official = demo["nurlan.official"]
    sign_in(client, official.username, official.password)
    assert 'href="/admin/onboarding"' not in client.get("/").text
