"""The Matrix hot paths (/sync, send) answered by the fast lane: same answers, errors, logs and metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qorgau.messenger import fastlane
from tests.integration.messenger.conftest import V3, Mx


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The routes the fast lane answered during the test (so a test knows it did not fall through)."""
    seen: list[str] = []
    original = fastlane.MatrixFastLane.serve

    async def spy(self: Any, scope: Any, receive: Any, send: Any, route: str, params: tuple[str, ...]) -> None:
        seen.append(route)
        await original(self, scope, receive, send, route, params)

    monkeypatch.setattr(fastlane.MatrixFastLane, "serve", spy)
    return seen


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", V3 + "/sync", (fastlane.SYNC_ROUTE, ())),
        ("PUT", V3 + "/rooms/!r:s/send/m.room.message/t1", (fastlane.SEND_ROUTE, ("!r:s", "m.room.message", "t1"))),
        ("POST", V3 + "/sync", None),
        ("GET", V3 + "/sync/", None),
        ("PUT", V3 + "/rooms/!r:s/send/m.room.message", None),  # no transaction id
        ("PUT", V3 + "/rooms/!r:s/send/m.room.message/t1/", None),  # trailing slash: the framework decides
        ("PUT", V3 + "/rooms/!r:s/send/m.room.message/a/b", None),  # an encoded slash, decoded
        ("PUT", V3 + "/rooms//send/m.room.message/t1", None),
        ("PUT", V3 + "/rooms/!r:s/state/m.room.name/x", None),
        ("GET", "/_matrix/client/r0/sync", None),
    ],
)
def test_only_the_two_hot_routes_match(method: str, path: str, expected: Any) -> None:
    assert fastlane.match({"method": method, "path": path}) == expected


def test_chat_goes_through_the_fast_lane_with_the_frameworks_answers(mx: Mx, served: list[str]) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    first = mx.ok("GET", "sync", dana, params={"timeout": "0"})
    sent = mx.request(
        "PUT", f"rooms/{room}/send/m.room.message/fast-1", nurlan, json={"msgtype": "m.text", "body": "Сәлем"}
    )
    assert sent.status_code == 200 and sent.headers["content-type"] == "application/json"
    assert len(sent.headers["x-request-id"]) == 16
    event_id = sent.json()["event_id"]
    # The same transaction id again is the same event (idempotent per token and txnId).
    again = mx.ok("PUT", f"rooms/{room}/send/m.room.message/fast-1", nurlan, json={"msgtype": "m.text", "body": "x"})
    assert again == {"event_id": event_id}
    later = mx.ok("GET", "sync", dana, params={"since": first["next_batch"], "timeout": "5000"})
    timeline = later["rooms"]["join"][room]["timeline"]["events"]
    assert [(e["event_id"], e["content"]["body"]) for e in timeline] == [(event_id, "Сәлем")]
    assert served.count(fastlane.SEND_ROUTE) == 2 and served.count(fastlane.SYNC_ROUTE) == 2


def test_a_filter_and_the_token_in_the_query_string(mx: Mx, served: list[str]) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    for n in range(3):
        mx.send(nurlan, room, f"message {n}")
    only_one = json.dumps({"room": {"timeline": {"limit": 1}}})
    answer = mx.ok("GET", "sync", params={"filter": only_one, "access_token": dana.token})
    timeline = answer["rooms"]["join"][room]["timeline"]
    assert [e["content"]["body"] for e in timeline["events"]] == ["message 2"] and timeline["limited"] is True
    assert fastlane.SYNC_ROUTE in served


def test_errors_keep_matrix_shape(mx: Mx, served: list[str]) -> None:
    nurlan, dana = mx.login("nurlan.official"), mx.login("dana.official")
    room = mx.room_with(nurlan, dana)
    send = f"rooms/{room}/send/m.room.message/"
    mx.error("GET", "sync", None, 401, "M_MISSING_TOKEN")
    unknown = mx.error("GET", "sync", None, 401, "M_UNKNOWN_TOKEN", headers={"Authorization": "Bearer mxt_nope"})
    assert unknown["soft_logout"] is False
    mx.error("GET", "sync", None, 401, "M_MISSING_TOKEN", headers={"Authorization": "Basic eDp5"})
    mx.error("GET", "sync", nurlan, 400, "M_INVALID_PARAM", params={"since": "garbage"})
    mx.error("PUT", send + "t1", None, 401, "M_MISSING_TOKEN", json={"body": "x"})
    mx.error("PUT", send + "t2", nurlan, 400, "M_NOT_JSON", content=b"{nope")
    mx.error("PUT", send + "t3", nurlan, 400, "M_BAD_JSON", json=["a", "list"])
    too_large = mx.request("PUT", send + "t4", nurlan, content=b"{" + b" " * (fastlane.MAX_BODY + 1) + b"}")
    assert (too_large.status_code, too_large.json()["errcode"]) == (413, "M_TOO_LARGE")
    mx.error("PUT", f"rooms/!nowhere:{'qorgau.example.kz'}/send/m.room.message/t5", nurlan, 403, "M_FORBIDDEN", json={})
    outsider = mx.login("serik.police")
    mx.error("PUT", send + "t6", outsider, 403, "M_FORBIDDEN", json={"msgtype": "m.text", "body": "x"})
    assert served.count(fastlane.SEND_ROUTE) == 6
    # Nothing of the refused requests was stored: the room holds no message.
    events = mx.ok("GET", f"rooms/{room}/messages", nurlan, params={"dir": "b", "limit": "50"})["chunk"]
    assert [e for e in events if e["type"] == "m.room.message"] == []


def test_requests_the_lane_does_not_serve_reach_the_framework(mx: Mx, served: list[str]) -> None:
    nurlan = mx.login("nurlan.official")
    room = mx.create_room(nurlan)
    mx.error("PUT", f"rooms/{room}/send/m.room.message", nurlan, 404, "M_UNRECOGNIZED", json={})
    mx.error("POST", "sync", nurlan, 405, "M_UNRECOGNIZED")
    assert served == []


def test_metrics_and_the_request_log_name_the_route_not_the_path(
    mx: Mx, client: Any, capfd: Any, served: list[str]
) -> None:
    from qorgau.kernel.observability import configure_logging

    configure_logging("info", json_logs=True)
    try:
        nurlan = mx.login("nurlan.official")
        room = mx.create_room(nurlan)
        capfd.readouterr()
        mx.send(nurlan, room, "секретный текст")
        mx.ok("GET", "sync", nurlan, params={"timeout": "0"})
        mx.error("GET", "sync", None, 401, "M_MISSING_TOKEN")
        _out, err = capfd.readouterr()
    finally:
        configure_logging("warning", json_logs=True)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("PUT", fastlane.SEND_ROUTE, 200),
        ("GET", fastlane.SYNC_ROUTE, 200),
        ("GET", fastlane.SYNC_ROUTE, 401),
    ]
    assert all(r["level"] == "info" and r["timestamp"].endswith("Z") and len(r["request_id"]) == 16 for r in requests)
    assert room not in err and "секретный" not in err and nurlan.token not in err
    metrics = client.get("/metrics").text
    assert f'qorgau_http_requests_total{{method="GET",route="{fastlane.SYNC_ROUTE}",status="401"}} 1' in metrics
    assert f'method="PUT",route="{fastlane.SEND_ROUTE}",status="200"' in metrics
