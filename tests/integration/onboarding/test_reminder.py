"""The onboarding dashboard's reminder: a notice to exactly the officials who have not joined yet."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from qorgau.kernel.auth import tables as at
from qorgau.messenger import tables as t
from tests.integration.messenger.test_letters import As


def missing_in(kernel: Any, agency_code: str) -> set[str]:
    u, a = at.users, at.agencies
    with kernel.db.read() as conn:
        return set(
            conn.execute(
                sa.select(u.c.id)
                .join(a, a.c.id == u.c.agency_id)
                .where(a.c.code == agency_code, u.c.joined_at.is_(None), u.c.disabled == sa.false())
            ).scalars()
        )


def test_the_agency_admin_reminds_those_missing_and_follows_the_notice(
    client: Any, demo: dict[str, Any], kernel: Any
) -> None:
    admin = As(client, demo, "aigerim.admin")
    page = admin.get("/admin/onboarding")
    assert 'data-testid="remind"' in page.text
    missing = missing_in(kernel, "astana-digital")
    assert missing, "the demo has officials who have not joined"
    sent = admin.post(
        "/admin/onboarding/remind",
        data={"_csrf": admin.csrf, "title": "Напоминание", "body": "Подключитесь до 1 марта."},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"].startswith("/messenger/notices/sent/")
    notice_id = sent.headers["location"].rsplit("/", 1)[1]
    with kernel.db.read() as conn:
        recipients = set(
            conn.execute(
                sa.select(t.notice_recipients.c.account_id).where(t.notice_recipients.c.notice_id == notice_id)
            ).scalars()
        )
    assert recipients == missing
    tracked = admin.get(f"/messenger/notices/sent/{notice_id}")
    assert f"0 / {len(missing)}" in tracked.text

    # Only those who may send notices may remind; an official may not.
    official = As(client, demo, "nurlan.official")
    refused = official.post("/admin/onboarding/remind", data={"_csrf": official.csrf, "title": "x", "body": "y"})
    assert refused.status_code == 403


def test_an_empty_reminder_is_refused_with_nothing_sent(client: Any, demo: dict[str, Any], kernel: Any) -> None:
    admin = As(client, demo, "aigerim.admin")
    response = admin.post("/admin/onboarding/remind", data={"_csrf": admin.csrf, "title": "", "body": "y"})
    assert response.status_code == 400
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.notices)).scalar() == 0
