"""The rule for knowingly false reports: a named reporter's identity opens only on an approved request."""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from qorgau.kernel.ledger.tables import ledger_entries
from qorgau.reports import tables as t
from tests.integration.reports.flows import as_user, post_form, report_ids, step, submit, submit_anonymous


def found_false_named_report(client: Any, demo: Any) -> str:
    citizen = demo["850808301077"]
    as_user(client, citizen.username, citizen.password)
    assert submit(client, named="1").status_code == 303
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    step(client, report_id, "triage", "within_competence")
    step(client, report_id, "start_verification", "records_check", note="Cameras show an empty street.")
    return report_id


def reveal(client: Any, report_id: str, **data: str) -> Any:
    page = f"/police/reports/{report_id}"
    return post_form(client, page, f"/police/reports/{report_id}/reveals", **data)


def test_a_named_reporter_is_revealed_only_after_the_head_approves(client: Any, kernel: Any, demo: Any) -> None:
    report_id = found_false_named_report(client, demo)
    request = {"reason": "false_report_proceedings", "justification": "Cameras prove nothing happened."}
    assert reveal(client, report_id, **request).status_code == 409  # not found false yet

    as_user(client, "aidos.chief", demo["aidos.chief"].password)
    assert step(client, report_id, "mark_knowingly_false", "fabricated", note="Nothing happened.").status_code == 303
    assert reveal(client, report_id, **request).status_code == 403  # the head does not request

    as_user(client, "serik.police", demo["serik.police"].password)
    assert reveal(client, report_id, reason="curiosity", justification="x").status_code == 400
    assert reveal(client, report_id, reason="false_report_proceedings", justification=" ").status_code == 400
    assert reveal(client, report_id, **request).status_code == 303
    assert reveal(client, report_id, **request).status_code == 409  # one pending request at a time
    with kernel.db.read() as conn:
        reveal_id = conn.execute(sa.select(t.report_reveals.c.id)).scalar()
    decision = f"/police/reports/{report_id}/reveals/{reveal_id}/decision"
    identity = f"/police/reports/{report_id}/reveals/{reveal_id}/identity"
    page = f"/police/reports/{report_id}"
    assert post_form(client, page, decision, decision="approve", note="mine").status_code == 403
    assert post_form(client, page, identity).status_code == 409  # not approved yet

    as_user(client, "aidos.chief", demo["aidos.chief"].password)
    assert "Approve" in client.get(page).text
    assert post_form(client, page, identity).status_code == 403  # only the requester sees it
    assert post_form(client, page, decision, decision="approve", note="").status_code == 400
    assert post_form(client, page, decision, decision="approve", note="Proceedings justified.").status_code == 303
    assert post_form(client, page, decision, decision="refuse", note="Again").status_code == 409

    as_user(client, "serik.police", demo["serik.police"].password)
    shown = post_form(client, page, identity)
    assert shown.status_code == 200 and 'data-testid="identity"' in shown.text
    assert "850808301077" in shown.text and "Әлия Серікқызы" in shown.text
    assert "850808301077" not in client.get(page).text  # only in the response to the request

    with kernel.db.read() as conn:
        entries = [json.loads(bytes(leaf)) for (leaf,) in conn.execute(sa.select(ledger_entries.c.leaf))]
    revealed = [e for e in entries if e["action"] == "report.identity_reveal"]
    assert len(revealed) == 1
    assert revealed[0]["subject"] == kernel.subject_ref("iin", "850808301077")
    assert {"report.reveal_request", "report.reveal_approve"} <= {e["action"] for e in entries}
    assert "850808301077" not in json.dumps(entries)

    citizen = demo["850808301077"]
    as_user(client, citizen.username, citizen.password)
    assert "Your identity was revealed to an officer" in client.get("/reports/mine").text


def test_the_head_may_refuse_and_nothing_opens(client: Any, kernel: Any, demo: Any) -> None:
    report_id = found_false_named_report(client, demo)
    as_user(client, "aidos.chief", demo["aidos.chief"].password)
    step(client, report_id, "mark_knowingly_false", "defamatory", note="Made up.")
    as_user(client, "serik.police", demo["serik.police"].password)
    reveal(client, report_id, reason="court_request", justification="Court letter 12.")
    with kernel.db.read() as conn:
        reveal_id = conn.execute(sa.select(t.report_reveals.c.id)).scalar()
    page = f"/police/reports/{report_id}"
    as_user(client, "aidos.chief", demo["aidos.chief"].password)
    post_form(client, page, f"{page}/reveals/{reveal_id}/decision", decision="refuse", note="No court letter attached.")
    as_user(client, "serik.police", demo["serik.police"].password)
    assert post_form(client, page, f"{page}/reveals/{reveal_id}/identity").status_code == 409
    assert "Refused" in client.get(page).text


def test_an_anonymous_report_has_nothing_to_reveal(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    page = client.get(f"/police/reports/{report_id}")
    assert 'data-testid="reveal-anonymous"' in page.text
    refused = reveal(client, report_id, reason="false_report_proceedings", justification="Who sent this?")
    assert refused.status_code == 409
    assert "This report is anonymous: there is no identity to reveal" in refused.text
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.report_reveals)).scalar() == 0
    assert re.search(r"reveal", client.get("/police/reports").text) is None
