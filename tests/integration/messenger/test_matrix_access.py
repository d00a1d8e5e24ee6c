"""Who may use each Matrix route, and who may not: every /_matrix route is listed here.

- Anonymous callers get 401 M_MISSING_TOKEN everywhere but discovery, login and registration.
- Only officials of an agency get a token; an account that stops being one loses it.
- Room routes answer M_FORBIDDEN to an official who is not in the room, and work for a member.
"""

from __future__ import annotations

import re
from typing import Any

from qorgau.kernel.auth import services as auth
from qorgau.messenger.matrix import ROUTES
from qorgau.messenger.runtime import runtime
from tests.integration.messenger.conftest import Mx, mxid

PUBLIC = {
    ("GET", "/_matrix/client/versions"),
    ("GET", "/.well-known/matrix/client"),
    ("GET", "/_matrix/client/v3/login"),
    ("POST", "/_matrix/client/v3/login"),
    ("POST", "/_matrix/client/v3/register"),
}


def matrix_routes() -> list[tuple[str, str]]:
    found = []
    for handler in ROUTES:
        for path in handler.paths:
            for method in handler.http_methods:
                found.append((method, path))
    return sorted(found)


def _concrete(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def test_every_matrix_route_is_covered_here(app: Any) -> None:
    listed = set(matrix_routes())
    for route in app.routes:
        if route.path.startswith(("/_matrix", "/.well-known/matrix")):
            for handler in getattr(route, "route_handlers", []):
                for method in handler.http_methods:
                    if method not in ("HEAD", "OPTIONS"):
                        assert (method, route.path) in listed, (method, route.path)


def test_anonymous_callers_need_a_token(client: Any) -> None:
    for method, path in matrix_routes():
        url = _concrete(path, {"room_id": "!r:x", "user_id": mxid("nurlan.official")})
        response = client.request(method, url, json={})
        if (method, path) in PUBLIC:
            assert response.status_code != 401, (method, path)
        else:
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["errcode"] == "M_MISSING_TOKEN"


def test_an_account_that_stops_being_an_official_loses_the_messenger(mx: Mx, kernel: Any) -> None:
    dana = mx.login("dana.official")
    mx.ok("GET", "account/whoami", dana)
    auth.do_set_role(None, kernel, username="dana.official", role="guard")
    runtime(kernel).sessions.discard_where(lambda _s: True)  # the per-process cache expires within seconds
    mx.error("GET", "account/whoami", dana, 401, "M_UNKNOWN_TOKEN")


ROOM_ROUTES = [(m, p) for m, p in matrix_routes() if "{room_id" in p and "/user/" not in p]


def test_room_routes_are_for_members_only(mx: Mx) -> None:
    nurlan, dana, erlan = mx.login("nurlan.official"), mx.login("dana.official"), mx.login("erlan.security")
    for method, path in ROOM_ROUTES:
        room = mx.room_with(nurlan, dana)
        event_id = mx.send(nurlan, room, "ішкі хабар")

        def call(
            user: Any, target: str, method: str = method, path: str = path, room: str = room, event_id: str = event_id
        ) -> Any:
            values = {
                "room_id": room,
                "event_id": event_id,
                "user_id": user.user_id,
                "event_type": {"GET": "m.room.create", "PUT": "m.room.topic"}[method]
                if "/state/" in path
                else "m.room.message",
                "state_key": "",
                "txn_id": f"{user.username}-txn-{room}",
                "receipt_type": "m.read",
            }
            body: dict[str, Any] = {"user_id": target, "typing": False, "topic": "t", "body": "b"}
            return mx.request(method, _concrete(path, values), user, json=body)

        if path.endswith("/unban"):
            mx.ok("POST", f"rooms/{room}/ban", nurlan, json={"user_id": dana.user_id})
        outsider = call(erlan, dana.user_id)
        assert outsider.status_code == 403, (method, path, outsider.text)
        assert outsider.json()["errcode"] == "M_FORBIDDEN"
        member = call(nurlan, erlan.user_id if path.endswith("/invite") else dana.user_id)
        assert member.status_code == 200, (method, path, member.text)


USER_ROUTES = [(m, p) for m, p in matrix_routes() if "/user/{user_id" in p or ("/profile/" in p and m == "PUT")]


def test_user_routes_are_for_their_owner_only(mx: Mx) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    values = {"room_id": room, "data_type": "m.tag", "filter_id": "f"}
    body = {"displayname": "x", "tags": {}}
    for method, path in USER_ROUTES:
        other = mx.request(method, _concrete(path, {**values, "user_id": dana.user_id}), nurlan, json=body)
        assert other.status_code == 403 and other.json()["errcode"] == "M_FORBIDDEN", (method, path, other.text)
        own = mx.request(method, _concrete(path, {**values, "user_id": nurlan.user_id}), nurlan, json=body)
        assert own.status_code in (200, 404), (method, path, own.text)  # 404: nothing stored yet
