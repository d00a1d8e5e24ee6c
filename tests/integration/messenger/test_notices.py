"""Government notices over HTTP: an agency admin broadcasts, officials confirm, the sender sees the share."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel.auth import tables as at
from qorgau.messenger import tables as t
from tests.integration.messenger.test_letters import As, agency_id, ledger_actions, ledger_leaves


@pytest.fixture
def people(client: Any, demo: dict[str, Any]) -> dict[str, As]:
    names = ("aigerim.admin", "nurlan.official", "dana.official", "serik.police", "admin")
    return {name: As(client, demo, name) for name in names}


def send(person: As, **fields: Any) -> Any:
    return person.post("/messenger/notices", data={"_csrf": person.csrf, **fields}, follow_redirects=False)


def notice_id_of(response: Any) -> str:
    assert response.status_code == 303, response.text[:800]
    found = re.match(r"/messenger/notices/sent/([0-9a-f]{32})$", response.headers["location"])
    assert found
    return found.group(1)


def officials_of(kernel: Any, agency: str, role: str) -> int:
    u = at.users
    with kernel.db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(u.c.agency_id == agency, u.c.role == role, u.c.disabled == sa.false())
            ).scalar()
            or 0
        )


def test_admin_broadcasts_officials_confirm_and_the_sender_sees_the_share(kernel: Any, people: dict[str, As]) -> None:
    admin, nurlan, dana = people["aigerim.admin"], people["nurlan.official"], people["dana.official"]
    digital, akimat = agency_id(kernel, "astana-digital"), agency_id(kernel, "almaty-akimat")
    notice_id = notice_id_of(
        send(
            admin,
            title="Переход на национальный мессенджер",
            body="До 1 марта все сотрудники подключаются к Qorgau.",
            agencies=[digital, akimat],
            roles=["official"],
        )
    )
    expected = officials_of(kernel, digital, "official") + officials_of(kernel, akimat, "official")
    page = admin.get(f"/messenger/notices/sent/{notice_id}")
    assert page.status_code == 200
    assert 'data-confirmed="0"' in page.text and f"0 / {officials_of(kernel, akimat, 'official')}" in page.text

    # Each official sees it waiting (a badge in the messenger), confirms once.
    inbox = dana.get("/messenger/notices")
    assert "Переход на национальный мессенджер" in inbox.text and 'data-testid="confirm"' in inbox.text
    assert 'class="mx-unread"' in dana.get("/messenger").text
    confirmed = dana.post(f"/messenger/notices/{notice_id}/confirm", data={"_csrf": dana.csrf}, follow_redirects=False)
    assert confirmed.status_code == 303
    again = dana.post(f"/messenger/notices/{notice_id}/confirm", data={"_csrf": dana.csrf}, follow_redirects=False)
    assert again.status_code == 303
    assert 'data-testid="confirmed"' in dana.get("/messenger/notices").text
    assert 'class="mx-unread"' not in dana.get("/messenger").text

    shares = admin.get(f"/messenger/notices/sent/{notice_id}/shares").text
    assert 'data-confirmed="1"' in shares
    assert f"1 / {officials_of(kernel, akimat, 'official')}" in shares
    nurlan.post(f"/messenger/notices/{notice_id}/confirm", data={"_csrf": nurlan.csrf})
    assert 'data-confirmed="2"' in admin.get(f"/messenger/notices/sent/{notice_id}/shares").text
    assert f"2 / {expected}" not in shares  # the total is fixed when the notice goes out
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(t.notices.c.recipients).where(t.notices.c.id == notice_id)).scalar() == expected

    actions = ledger_actions(kernel)
    assert actions.count("notice.sent") == 1 and actions.count("notice.confirmed") == 2
    assert "национальный".encode() not in b"".join(ledger_leaves(kernel))
    # Title and text are sealed at rest.
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.notices).where(t.notices.c.id == notice_id)).one()
    assert "Переход".encode() not in row.title and "сотрудники".encode() not in row.body


def test_audience_by_region_and_role(kernel: Any, people: dict[str, As]) -> None:
    admin, dana, serik = people["aigerim.admin"], people["dana.official"], people["serik.police"]
    notice_id = notice_id_of(
        send(admin, title="Алматы", body="Только полиции Алматы", regions=["almaty"], roles=["police_officer"])
    )
    assert "Только полиции Алматы" in serik.get("/messenger/notices").text
    assert "Только полиции Алматы" not in dana.get("/messenger/notices").text
    assert dana.post(f"/messenger/notices/{notice_id}/confirm", data={"_csrf": dana.csrf}).status_code == 404


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"title": "", "body": "x"}, 400),
        ({"title": "x" * 201, "body": "x"}, 400),
        ({"title": "T", "body": ""}, 400),
        ({"title": "T", "body": "x", "roles": ["citizen"]}, 400),
        ({"title": "T", "body": "x", "regions": ["atlantis"]}, 400),
        ({"title": "T", "body": "x", "agencies": ["f" * 32]}, 400),
        ({"title": "T", "body": "x", "regions": ["mangystau"], "roles": ["security_officer"]}, 400),
    ],
)
def test_bad_notices_are_refused_and_nothing_is_sent(
    kernel: Any, people: dict[str, As], fields: dict[str, Any], status: int
) -> None:
    response = send(people["aigerim.admin"], **fields)
    assert response.status_code == status and 'data-testid="form-error"' in response.text
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.notices)).scalar() == 0


def test_only_admins_send_and_only_the_sender_side_tracks(kernel: Any, people: dict[str, As]) -> None:
    nurlan = people["nurlan.official"]
    assert send(nurlan, title="T", body="x").status_code == 403
    assert nurlan.get("/messenger/notices/new").status_code == 403
    notice_id = notice_id_of(send(people["aigerim.admin"], title="T", body="x"))
    assert nurlan.get(f"/messenger/notices/sent/{notice_id}").status_code == 403
    # Another agency's admin does not see this agency's notice; the platform admin only their own.
    assert people["admin"].get(f"/messenger/notices/sent/{notice_id}").status_code == 404
    assert people["aigerim.admin"].get("/messenger/notices/sent/" + "0" * 32).status_code == 404
    assert "T" in people["aigerim.admin"].get("/messenger/notices/sent").text
