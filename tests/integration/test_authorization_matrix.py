"""Who may use each route, and who may not (403/401, and nothing changed). Every route must be listed."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.roles import Role
from qorgau.kernel.context import Ctx

ALL_ROLES = [r.value for r in Role]
ADMINS = ["platform_admin", "agency_admin"]
PUBLIC = [*ALL_ROLES, "anonymous"]
SIGNED_IN = ALL_ROLES
REPORTERS = ["citizen", "anonymous"]
OFFICIALS = ["agency_admin", "official", "police_officer", "regulator_inspector", "security_officer"]

# Demo account for each role.
ACCOUNT_OF = {
    "platform_admin": "admin",
    "agency_admin": "aigerim.admin",
    "official": "nurlan.official",
    "police_officer": "serik.police",
    "regulator_inspector": "madina.inspector",
    "security_officer": "erlan.security",
    "building_owner": "asel.owner",
    "guard": "bolat.guard",
    "org_operator": "kairat.operator",
    "citizen": "850808301077",
}

# (method, path template, concrete path, body, roles allowed, status when allowed)
MATRIX: list[tuple[str, str, str, Any, list[str], int]] = [
    ("GET", "/", "/", None, PUBLIC, 200),
    ("GET", "/login", "/login", None, PUBLIC, 200),
    ("GET", "/signup", "/signup", None, PUBLIC, 200),
    ("GET", "/account", "/account", None, SIGNED_IN, 200),
    ("GET", "/admin/users", "/admin/users", None, ADMINS, 200),
    ("GET", "/transparency", "/transparency", None, PUBLIC, 200),
    ("GET", "/api/v1/me", "/api/v1/me", None, SIGNED_IN, 200),
    ("GET", "/api/v1/auth/tokens", "/api/v1/auth/tokens", None, SIGNED_IN, 200),
    ("GET", "/api/v1/users", "/api/v1/users", None, ADMINS, 200),
    ("GET", "/api/v1/admin/events", "/api/v1/admin/events", None, ["platform_admin"], 200),
    ("GET", "/healthz", "/healthz", None, PUBLIC, 200),
    ("GET", "/readyz", "/readyz", None, PUBLIC, 200),
    ("GET", "/metrics", "/metrics", None, PUBLIC, 200),
    ("GET", "/api/v1/ledger/keys", "/api/v1/ledger/keys", None, PUBLIC, 200),
    ("GET", "/api/v1/ledger/checkpoint", "/api/v1/ledger/checkpoint", None, PUBLIC, 200),
    ("GET", "/api/v1/ledger/tree-head", "/api/v1/ledger/tree-head", None, PUBLIC, 200),
    ("GET", "/api/v1/ledger/tree-heads", "/api/v1/ledger/tree-heads", None, PUBLIC, 200),
    ("GET", "/api/v1/ledger/entries", "/api/v1/ledger/entries?start=0&end=0", None, PUBLIC, 200),
    (
        "GET",
        "/api/v1/ledger/proof/inclusion",
        "/api/v1/ledger/proof/inclusion?leaf_index=0&tree_size=1",
        None,
        PUBLIC,
        200,
    ),
    (
        "GET",
        "/api/v1/ledger/proof/consistency",
        "/api/v1/ledger/proof/consistency?first=1&second=1",
        None,
        PUBLIC,
        200,
    ),
    # Citizen reports: anyone may report (anonymously, or a citizen by name); staff report elsewhere.
    ("GET", "/reports", "/reports", None, PUBLIC, 200),
    ("GET", "/reports/new", "/reports/new", None, REPORTERS, 200),
    ("GET", "/reports/follow-up", "/reports/follow-up", None, REPORTERS, 200),
    ("GET", "/reports/mine", "/reports/mine", None, ["citizen"], 200),
    ("GET", "/police/reports", "/police/reports", None, ["police_officer"], 200),
    # Public statistics of reports: counts only, small ones hidden; anyone may read them.
    ("GET", "/reports/statistics", "/reports/statistics?by=month", None, PUBLIC, 200),
    ("GET", "/api/v1/reports/statistics", "/api/v1/reports/statistics?by=category", None, PUBLIC, 200),
    ("GET", "/api/v1/reports/statistics.csv", "/api/v1/reports/statistics.csv", None, PUBLIC, 200),
    # Open311 GeoReport v2: public reads for anyone.
    ("GET", "/open311/v2/{name:str}", "/open311/v2/services.json", None, PUBLIC, 200),
    ("GET", "/open311/v2/services/{name:str}", "/open311/v2/services/noise.xml", None, PUBLIC, 200),
    # Messenger in the browser: officials of an agency only (the Matrix login's rule).
    ("GET", "/messenger", "/messenger", None, OFFICIALS, 200),
    ("GET", "/messenger/new", "/messenger/new", None, OFFICIALS, 200),
    ("GET", "/messenger/list", "/messenger/list", None, OFFICIALS, 200),
    ("GET", "/messenger/search", "/messenger/search?q=x", None, OFFICIALS, 200),
    # Onboarding dashboard: agency admins (their agency) and platform admins (every agency).
    ("GET", "/admin/onboarding", "/admin/onboarding", None, ADMINS, 200),
    ("GET", "/admin/onboarding.csv", "/admin/onboarding.csv", None, ADMINS, 200),
    # Letters are written and filed by officials of an agency; notices are sent by admins, received by officials.
    ("GET", "/messenger/letters", "/messenger/letters", None, OFFICIALS, 200),
    ("GET", "/messenger/letters/new", "/messenger/letters/new", None, OFFICIALS, 200),
    ("GET", "/messenger/notices", "/messenger/notices", None, OFFICIALS, 200),
    ("GET", "/messenger/notices/new", "/messenger/notices/new", None, ADMINS, 200),
    ("GET", "/messenger/notices/sent", "/messenger/notices/sent", None, ADMINS, 200),
    ("GET", "/messenger/compliance", "/messenger/compliance", None, ["agency_admin", "security_officer"], 200),
]

# Routes exercised by their own tests rather than the generic matrix (state changes with bodies).
COVERED_ELSEWHERE = {
    ("POST", "/login"),
    ("POST", "/logout"),
    ("POST", "/signup"),
    ("POST", "/lang"),
    ("POST", "/account/tokens"),
    ("POST", "/account/tokens/{token_id:str}/revoke"),
    ("POST", "/api/v1/auth/tokens"),
    ("DELETE", "/api/v1/auth/tokens/{token_id:str}"),
    ("POST", "/api/v1/users"),
    # Invitation links: tests/integration/onboarding/test_invites_http.py (admins only, own agency only; the
    # /invite/<token> pages are public but throttled, so they are not hit by every role here).
    ("POST", "/admin/users/invite"),
    ("POST", "/admin/users/{user_id:str}/invite"),
    ("GET", "/api/v1/users/{user_id:str}/invite"),
    ("POST", "/api/v1/users/{user_id:str}/invite"),
    ("DELETE", "/api/v1/users/{user_id:str}/invite"),
    ("GET", "/invite/{token:str}"),
    ("POST", "/invite/{token:str}"),
    # Messenger (Matrix API): tests/integration/messenger/test_matrix_access.py proves who may and who may not
    # (anonymous → 401 except discovery/login/register, non-officials get no token, room routes only for members,
    # user routes only for their owner); every route there is enumerated from messenger.matrix.ROUTES.
    ("GET", "/.well-known/matrix/client"),
    ("GET", "/_matrix/client/v1/media/config"),
    ("GET", "/_matrix/client/v1/media/download/{server:str}/{media_id:str}"),
    ("GET", "/_matrix/client/v1/media/download/{server:str}/{media_id:str}/{file_name:str}"),
    ("GET", "/_matrix/client/v1/media/thumbnail/{server:str}/{media_id:str}"),
    ("GET", "/_matrix/client/v3/account/whoami"),
    ("GET", "/_matrix/client/v3/capabilities"),
    ("POST", "/_matrix/client/v3/createRoom"),
    ("GET", "/_matrix/client/v3/directory/room/{alias:str}"),
    ("POST", "/_matrix/client/v3/join/{room_ref:str}"),
    ("GET", "/_matrix/client/v3/joined_rooms"),
    ("GET", "/_matrix/client/v3/keys/changes"),
    ("POST", "/_matrix/client/v3/keys/claim"),
    ("POST", "/_matrix/client/v3/keys/query"),
    ("POST", "/_matrix/client/v3/keys/upload"),
    ("GET", "/_matrix/client/v3/login"),
    ("POST", "/_matrix/client/v3/login"),
    ("POST", "/_matrix/client/v3/logout"),
    ("POST", "/_matrix/client/v3/logout/all"),
    ("GET", "/_matrix/client/v3/profile/{user_id:str}"),
    ("GET", "/_matrix/client/v3/profile/{user_id:str}/displayname"),
    ("PUT", "/_matrix/client/v3/profile/{user_id:str}/displayname"),
    ("POST", "/_matrix/client/v3/register"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/ban"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/context/{event_id:str}"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/event/{event_id:str}"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/invite"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/join"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/joined_members"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/kick"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/leave"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/members"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/messages"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/read_markers"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/receipt/{receipt_type:str}/{event_id:str}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id:str}/redact/{event_id:str}/{txn_id:str}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id:str}/send/{event_type:str}/{txn_id:str}"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/state"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/state/{event_type:str}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id:str}/state/{event_type:str}"),
    ("GET", "/_matrix/client/v3/rooms/{room_id:str}/state/{event_type:str}/{state_key:str}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id:str}/state/{event_type:str}/{state_key:str}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id:str}/typing/{user_id:str}"),
    ("POST", "/_matrix/client/v3/rooms/{room_id:str}/unban"),
    ("POST", "/_matrix/client/v3/search"),
    ("PUT", "/_matrix/client/v3/sendToDevice/{event_type:str}/{txn_id:str}"),
    ("GET", "/_matrix/client/v3/sync"),
    ("GET", "/_matrix/client/v3/user/{user_id:str}/account_data/{data_type:str}"),
    ("PUT", "/_matrix/client/v3/user/{user_id:str}/account_data/{data_type:str}"),
    ("POST", "/_matrix/client/v3/user/{user_id:str}/filter"),
    ("GET", "/_matrix/client/v3/user/{user_id:str}/filter/{filter_id:str}"),
    ("GET", "/_matrix/client/v3/user/{user_id:str}/rooms/{room_id:str}/account_data/{data_type:str}"),
    ("PUT", "/_matrix/client/v3/user/{user_id:str}/rooms/{room_id:str}/account_data/{data_type:str}"),
    ("GET", "/_matrix/client/v3/user_directory/search"),
    ("POST", "/_matrix/client/v3/user_directory/search"),
    ("GET", "/_matrix/client/versions"),
    ("GET", "/_matrix/media/v3/config"),
    ("GET", "/_matrix/media/v3/download/{server:str}/{media_id:str}"),
    ("GET", "/_matrix/media/v3/download/{server:str}/{media_id:str}/{file_name:str}"),
    ("GET", "/_matrix/media/v3/thumbnail/{server:str}/{media_id:str}"),
    ("POST", "/_matrix/media/v3/upload"),
    # Messenger web app: tests/integration/messenger/test_web.py (room routes only for members, every
    # route refused to non-officials; the live stream stays open, so it is not in the generic matrix).
    ("GET", "/messenger/events"),
    ("GET", "/messenger/rooms/{room_id:str}"),
    ("GET", "/messenger/rooms/{room_id:str}/timeline"),
    ("POST", "/messenger/rooms"),
    ("POST", "/messenger/direct"),
    ("POST", "/messenger/rooms/{room_id:str}/send"),
    ("POST", "/messenger/rooms/{room_id:str}/redact"),
    ("POST", "/messenger/rooms/{room_id:str}/read"),
    ("POST", "/messenger/rooms/{room_id:str}/join"),
    ("POST", "/messenger/rooms/{room_id:str}/leave"),
    ("POST", "/messenger/rooms/{room_id:str}/invite"),
    ("POST", "/messenger/rooms/{room_id:str}/attach"),
    ("GET", "/messenger/media/{media_id:str}"),
    # Letters and notices: tests/integration/messenger/test_letters.py and test_notices.py (a letter only for
    # the sending and addressee agencies, 404 for others; notices sent by admins only, tracked by their sender).
    ("POST", "/messenger/letters"),
    ("GET", "/messenger/letters/{letter_id:str}"),
    ("GET", "/messenger/letters/{letter_id:str}/files/{position:int}"),
    ("POST", "/messenger/notices"),
    ("POST", "/messenger/notices/{notice_id:str}/confirm"),
    ("GET", "/messenger/notices/sent/{notice_id:str}"),
    ("GET", "/messenger/notices/sent/{notice_id:str}/shares"),
    ("GET", "/messenger/notices/sent/{notice_id:str}/events"),
    # Records: tests/integration/messenger/test_compliance.py (holds only by the room agency's security
    # officer or admin, exports only by members, the agency's security officer, or a letter's agencies).
    ("POST", "/messenger/compliance/rooms/{room_id:str}/hold"),
    ("POST", "/messenger/rooms/{room_id:str}/export"),
    ("POST", "/messenger/letters/{letter_id:str}/export"),
    # The onboarding reminder: tests/integration/onboarding/test_reminder.py (admins only).
    ("POST", "/admin/onboarding/remind"),
    # Citizen reports: tests/integration/reports/test_authorization.py.
    ("POST", "/reports/edit"),
    ("POST", "/reports/check"),
    ("POST", "/reports/send"),
    ("POST", "/reports/follow-up/open"),
    ("POST", "/reports/follow-up/answer"),
    ("POST", "/reports/follow-up/withdraw"),
    ("GET", "/reports/mine/{report_id:str}"),
    ("POST", "/reports/mine/{report_id:str}/answer"),
    ("POST", "/reports/mine/{report_id:str}/withdraw"),
    ("GET", "/police/reports/{report_id:str}"),
    ("GET", "/police/reports/{report_id:str}/attachments/{attachment_id:str}"),
    ("POST", "/police/reports/{report_id:str}/transition"),
    ("POST", "/police/reports/{report_id:str}/merge"),
    ("POST", "/police/reports/{report_id:str}/messages"),
    ("POST", "/police/reports/{report_id:str}/reveals"),
    ("POST", "/police/reports/{report_id:str}/reveals/{reveal_id:str}/decision"),
    ("POST", "/police/reports/{report_id:str}/reveals/{reveal_id:str}/identity"),
    # Open311 filing (anonymous or with an api_key; any account's credentials refused) and lookups of
    # a request or token: tests/integration/reports/test_open311.py.
    ("POST", "/open311/v2/{name:str}"),
    ("GET", "/open311/v2/requests/{name:str}"),
    ("GET", "/open311/v2/tokens/{name:str}"),
}


@pytest.fixture
def bearer(kernel: Any, demo: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A bearer token with every scope for one demo account of each role."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role, login in ACCOUNT_OF.items():
        signed = auth.do_sign_in(kernel, login, demo[login].password)
        _id, token = auth.do_create_api_token(Ctx(kernel, signed.actor), name="matrix", scopes=["*"])
        headers[role] = {"Authorization": f"Bearer {token}"}
    kernel.ledger.sign_if_grown(force=True)
    return headers


def test_every_route_is_in_the_matrix(app: Any) -> None:
    listed = {(m, tpl) for m, tpl, *_ in MATRIX} | COVERED_ELSEWHERE
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method in ("HEAD", "OPTIONS") or route.path.startswith("/static"):
                    continue
                assert (method, route.path) in listed, f"{method} {route.path} has no row in the authorization matrix"


@pytest.mark.parametrize("row", MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_route_allows_exactly_its_roles(client: Any, bearer: dict[str, dict[str, str]], row: Any) -> None:
    method, _tpl, path, body, allowed, ok_status = row
    for who, headers in bearer.items():
        response = client.request(method, path, headers={**headers, "Accept": "application/json"}, json=body)
        if who in allowed:
            assert response.status_code == ok_status, (who, path, response.status_code, response.text[:300])
        elif who == "anonymous":
            assert response.status_code in (401, 302, 303), (who, path, response.status_code)
        else:
            assert response.status_code in (403, 404), (who, path, response.status_code)


def _count_users(kernel: Any) -> int:
    with kernel.db.read() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()


@pytest.mark.parametrize("role", [r for r in ACCOUNT_OF if r not in ("platform_admin", "agency_admin")] + ["anonymous"])
def test_only_admins_create_accounts(client: Any, kernel: Any, bearer: dict[str, dict[str, str]], role: str) -> None:
    before = _count_users(kernel)
    response = client.post(
        "/api/v1/users",
        json={
            "username": "intruder",
            "password": "a-long-password",
            "role": "official",
            "agency": "astana-digital",
        },
        headers=bearer[role],
    )
    assert response.status_code in (401, 403)
    assert _count_users(kernel) == before


def test_agency_admin_creates_officials_only_in_own_agency(
    client: Any, kernel: Any, bearer: dict[str, dict[str, str]]
) -> None:
    headers = bearer["agency_admin"]
    ok = client.post(
        "/api/v1/users",
        json={
            "username": "new.official",
            "password": "a-long-password",
            "role": "official",
            "agency": "astana-digital",
        },
        headers=headers,
    )
    assert ok.status_code == 201, ok.text
    before = _count_users(kernel)
    for payload in (
        {
            "username": "other.agency",
            "password": "a-long-password",
            "role": "official",
            "agency": "almaty-akimat",
        },
        {"username": "new.admin", "password": "a-long-password", "role": "platform_admin"},
        {
            "username": "new.police",
            "password": "a-long-password",
            "role": "police_officer",
            "agency": "astana-digital",
        },
    ):
        denied = client.post("/api/v1/users", json=payload, headers=headers)
        assert denied.status_code == 403, (payload, denied.text)
    assert _count_users(kernel) == before


def test_platform_admin_creates_any_account(client: Any, bearer: dict[str, dict[str, str]]) -> None:
    response = client.post(
        "/api/v1/users",
        json={"username": "new.guard", "password": "a-long-password", "role": "guard"},
        headers=bearer["platform_admin"],
    )
    assert response.status_code == 201
    bad = client.post(
        "/api/v1/users",
        json={"username": "x y", "password": "a-long-password", "role": "guard"},
        headers=bearer["platform_admin"],
    )
    assert bad.status_code == 400 and bad.json()["field"] == "username"
