"""Who may use each reports route that needs a report (the matrix lists them as covered here)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel.auth import services as auth
from qorgau.kernel.context import Ctx
from qorgau.reports import tables as t
from tests.integration.reports.flows import as_anonymous, as_user, jpeg, report_form, report_ids, step, submit
from tests.integration.test_authorization_matrix import ACCOUNT_OF

ROLES = [*ACCOUNT_OF, "unit_head", "anonymous"]


@pytest.fixture
def setting(client: Any, kernel: Any, demo: Any) -> dict[str, Any]:
    """A named report with a photo, found knowingly false, with an approved reveal request by serik.police."""
    citizen = demo["850808301077"]
    as_user(client, citizen.username, citizen.password)
    assert submit(client, [jpeg()], named="1").status_code == 303
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    step(client, report_id, "triage", "within_competence")
    step(client, report_id, "start_verification", "records_check")
    as_user(client, "aidos.chief", demo["aidos.chief"].password)
    step(client, report_id, "mark_knowingly_false", "fabricated")
    as_anonymous(client)
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role, login in [*ACCOUNT_OF.items(), ("unit_head", "aidos.chief")]:
        signed = auth.do_sign_in(kernel, login, demo[login].password)
        _id, token = auth.do_create_api_token(Ctx(kernel, signed.actor), name="reports", scopes=["*"])
        headers[role] = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    reveal = client.post(
        f"/police/reports/{report_id}/reveals",
        data={"reason": "court_request", "justification": "Court letter."},
        headers=headers["police_officer"],
        follow_redirects=False,
    )
    assert reveal.status_code == 303
    with kernel.db.read() as conn:
        reveal_id = conn.execute(sa.select(t.report_reveals.c.id)).scalar()
        attachment_id = conn.execute(sa.select(t.report_attachments.c.id)).scalar()
    approve = client.post(
        f"/police/reports/{report_id}/reveals/{reveal_id}/decision",
        data={"decision": "approve", "note": "Justified."},
        headers=headers["unit_head"],
        follow_redirects=False,
    )
    assert approve.status_code == 303
    return {"report": report_id, "reveal": reveal_id, "attachment": attachment_id, "headers": headers}


MULTIPART = ("/reports/send", "/answer")


def _status(client: Any, headers: dict[str, str], method: str, path: str, data: dict[str, str] | None) -> int:
    # Routes that take files read multipart bodies: send one, so the answer is about rights, not encoding.
    files = {"files": ("", b"", "application/octet-stream")} if path.endswith(MULTIPART) else None
    return client.request(method, path, headers=headers, data=data, files=files, follow_redirects=False).status_code


def test_staff_routes_open_only_for_their_unit(client: Any, kernel: Any, setting: dict[str, Any]) -> None:
    r, v, a = setting["report"], setting["reveal"], setting["attachment"]
    rows: list[tuple[str, str, dict[str, str] | None, dict[str, int]]] = [
        ("GET", f"/police/reports/{r}", None, {"police_officer": 200, "unit_head": 200}),
        ("GET", f"/police/reports/{r}/attachments/{a}", None, {"police_officer": 200, "unit_head": 200}),
        (
            "POST",
            f"/police/reports/{r}/messages",
            {"kind": "outcome", "body": "x"},
            {"police_officer": 303, "unit_head": 303},
        ),
        ("POST", f"/police/reports/{r}/reveals/{v}/identity", None, {"police_officer": 200}),
        ("POST", f"/police/reports/{r}/reveals/{v}/decision", {"decision": "refuse", "note": "x"}, {"unit_head": 409}),
        (
            "POST",
            f"/police/reports/{r}/reveals",
            {"reason": "court_request", "justification": "x"},
            {"police_officer": 303},
        ),
        (
            "POST",
            f"/police/reports/{r}/transition",
            {"action": "close", "reason": "referred", "note": "x"},
            # The officer closes it; the head, allowed too, then finds it closed.
            {"police_officer": 303, "unit_head": 409},
        ),
    ]
    for method, path, data, allowed in rows:
        for who in ROLES:
            status = _status(client, setting["headers"][who], method, path, data)
            if who in allowed:
                assert status == allowed[who], (who, method, path, status)
            elif who == "anonymous":
                assert status in (401, 302, 403), (who, path, status)  # a POST without a session fails CSRF first
            else:
                assert status in (403, 404), (who, method, path, status)


def test_reporter_routes_open_only_for_the_reporter(client: Any, kernel: Any, setting: dict[str, Any]) -> None:
    r = setting["report"]
    headers = setting["headers"]
    for who in ROLES:
        status = _status(client, headers[who], "GET", f"/reports/mine/{r}", None)
        expected = {"citizen": (200,), "anonymous": (401, 302, 303)}.get(who, (403, 404))
        assert status in expected, (who, status)
        for action in ("answer", "withdraw"):
            status = _status(client, headers[who], "POST", f"/reports/mine/{r}/{action}", {"body": "x", "reason": "x"})
            if who == "citizen":
                assert status in (200, 409), (who, action, status)
            else:
                assert status in (401, 403, 404), (who, action, status)


def test_staff_may_not_file_reports_or_use_receipts(client: Any, setting: dict[str, Any]) -> None:
    for who in ROLES:
        if who in ("citizen", "anonymous"):
            continue
        for path in (
            "/reports/check",
            "/reports/edit",
            "/reports/send",
            "/reports/follow-up/open",
            "/reports/follow-up/answer",
            "/reports/follow-up/withdraw",
        ):
            form = {**report_form(), "receipt": "x"}
            status = _status(client, setting["headers"][who], "POST", path, form)
            assert status == 403, (who, path, status)
    citizen = setting["headers"]["citizen"]
    assert _status(client, citizen, "POST", "/reports/check", {"category": "noise"}) == 400
    assert _status(client, citizen, "POST", "/reports/edit", {}) == 200
    assert _status(client, citizen, "POST", "/reports/follow-up/open", {"receipt": "1234"}) == 400
    assert _status(client, citizen, "POST", "/reports/follow-up/answer", {"pass": "x", "body": "x"}) == 403
    page = client.get("/reports/new", headers={"Accept": "text/html"})
    assert re.search(r'name="_csrf"', page.text)
