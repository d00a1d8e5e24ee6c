"""A small Matrix client over the test app, for HTTP-level tests of the messenger."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest

SERVER = "qorgau.example.kz"
V3 = "/_matrix/client/v3"
_txn = itertools.count()


def mxid(username: str) -> str:
    return f"@{username}:{SERVER}"


@dataclass
class User:
    username: str
    user_id: str
    token: str
    device_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Mx:
    """Speaks plain Matrix HTTP to the app under test."""

    def __init__(self, client: Any, demo: dict[str, Any]) -> None:
        self.client = client
        self.demo = demo

    def request(self, method: str, path: str, user: User | None = None, **kw: Any) -> Any:
        headers = {**(user.auth if user else {}), **kw.pop("headers", {})}
        return self.client.request(method, path if path.startswith("/") else f"{V3}/{path}", headers=headers, **kw)

    def ok(self, method: str, path: str, user: User | None = None, **kw: Any) -> dict[str, Any]:
        response = self.request(method, path, user, **kw)
        assert response.status_code == 200, (method, path, response.status_code, response.text[:500])
        return response.json()  # type: ignore[no-any-return]

    def error(self, method: str, path: str, user: User | None, status: int, errcode: str, **kw: Any) -> dict[str, Any]:
        response = self.request(method, path, user, **kw)
        body = response.json()
        assert (response.status_code, body.get("errcode")) == (status, errcode), (path, response.status_code, body)
        assert isinstance(body.get("error"), str) and body["error"]
        return body  # type: ignore[no-any-return]

    def login(self, username: str, device_id: str | None = None) -> User:
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": username},
            "password": self.demo[username].password,
        }
        if device_id:
            body["device_id"] = device_id
        found = self.ok("POST", "login", json=body)
        return User(username, found["user_id"], found["access_token"], found["device_id"])

    def create_room(self, user: User, **body: Any) -> str:
        return str(self.ok("POST", "createRoom", user, json=body)["room_id"])

    def join(self, user: User, room_id: str) -> None:
        self.ok("POST", f"join/{room_id}", user, json={})

    def room_with(self, owner: User, *others: User, **body: Any) -> str:
        room_id = self.create_room(owner, invite=[u.user_id for u in others], **body)
        for other in others:
            self.join(other, room_id)
        return room_id

    def send(
        self, user: User, room_id: str, body: str, *, txn: str | None = None, event_type: str = "m.room.message"
    ) -> str:
        txn = txn or f"t{next(_txn)}"
        content = {"msgtype": "m.text", "body": body}
        return str(self.ok("PUT", f"rooms/{room_id}/send/{event_type}/{txn}", user, json=content)["event_id"])

    def sync(
        self, user: User, since: str | None = None, timeout: int = 0, filter: Any = None, **params: Any
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"timeout": timeout, **params}
        if since:
            query["since"] = since
        if filter is not None:
            query["filter"] = filter if isinstance(filter, str) else json.dumps(filter)
        return self.ok("GET", "sync", user, params=query)


def texts(answer: dict[str, Any], room_id: str) -> list[str]:
    room = answer.get("rooms", {}).get("join", {}).get(room_id, {})
    return [
        e["content"].get("body") for e in room.get("timeline", {}).get("events", []) if e["type"] == "m.room.message"
    ]


@pytest.fixture
def mx(client: Any, demo: dict[str, Any]) -> Mx:
    return Mx(client, demo)
