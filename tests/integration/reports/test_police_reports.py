"""A police unit works its queue under the regulation; other units and other roles see nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.roles import AgencyKind, Role
from qorgau.kernel.events import read_events
from qorgau.kernel.keys import rewrap_all
from qorgau.kernel.ledger.tables import ledger_entries
from qorgau.reports import tables as t
from tests.integration.reports.flows import (
    SENTENCE,
    as_anonymous,
    as_user,
    open_with_receipt,
    post_form,
    report_ids,
    step,
    submit_anonymous,
)


def ledger_actions(kernel: Any) -> list[dict[str, Any]]:
    with kernel.db.read() as conn:
        return [json.loads(bytes(leaf)) for (leaf,) in conn.execute(sa.select(ledger_entries.c.leaf))]


def second_unit(kernel: Any) -> tuple[str, str]:
    """An Astana police unit with one officer; returns (unit id, officer password)."""
    unit_id = auth.do_create_agency(
        None,
        kernel,
        code="astana-police",
        names={"kk": "Астана полициясы", "ru": "Полиция Астаны", "en": "Astana Police Department"},
        kind=AgencyKind.POLICE_UNIT,
        region_code="astana",
    )
    auth.do_create_user(
        None,
        kernel,
        username="aliya.police",
        password="aliya-long-password",
        role=Role.POLICE_OFFICER,
        agency="astana-police",
        display_name="Әлия Полиция",
    )
    return unit_id, "aliya-long-password"


def test_an_officer_works_a_report_from_receipt_to_outcome(client: Any, kernel: Any, demo: Any) -> None:
    receipt = submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    queue = client.get("/police/reports")
    assert queue.status_code == 200 and "Rudeness and fights" in queue.text
    [report_id] = report_ids(client)

    assert step(client, report_id, "confirm", "protocol").status_code == 409  # not yet verified
    assert step(client, report_id, "triage", "within_competence", note="").status_code == 400  # a note is required
    assert step(client, report_id, "triage", "no_evidence").status_code == 400  # a reason of another step
    assert step(client, report_id, "triage", "within_competence", note="Our district.").status_code == 303
    assert step(client, report_id, "start_verification", "site_visit", note="Patrol 12 sent.").status_code == 303
    assert step(client, report_id, "mark_knowingly_false", "fabricated").status_code == 403  # the head's decision
    confirmed = step(
        client,
        report_id,
        "confirm",
        "protocol",
        note="Protocol 4471.",
        outcome="Both men were fined for disorderly conduct.",
    )
    assert confirmed.status_code == 303
    assert step(client, report_id, "close", "measures_taken", note="Done.").status_code == 303
    page = client.get(f"/police/reports/{report_id}")
    assert "Protocol 4471." in page.text and "Closed" in page.text

    as_anonymous(client)
    seen = open_with_receipt(client, receipt)
    assert "Both men were fined for disorderly conduct." in seen.text
    assert "An administrative offence report was drawn up" in seen.text  # the reason, not the note
    assert "Protocol 4471." not in seen.text and "Patrol 12" not in seen.text

    actions = [e["action"] for e in ledger_actions(kernel)]
    for action in ("report.submit", "report.triage", "report.start_verification", "report.confirm", "report.close"):
        assert action in actions


def test_every_view_of_an_original_is_in_the_ledger(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    before = [e for e in ledger_actions(kernel) if e["action"] == "report.view_original"]
    client.get(f"/police/reports/{report_id}")
    client.get(f"/police/reports/{report_id}")
    views = [e for e in ledger_actions(kernel) if e["action"] == "report.view_original"]
    assert len(views) == len(before) + 2
    assert views[-1]["object"] == {"report": report_id}
    assert views[-1]["actor"].startswith("police_officer:")


def test_officers_of_other_units_and_other_roles_see_nothing(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    _unit, password = second_unit(kernel)
    as_user(client, "aliya.police", password)
    assert "No reports here." in client.get("/police/reports").text
    assert client.get(f"/police/reports/{report_id}").status_code == 404
    assert step(client, report_id, "triage", "within_competence").status_code in (403, 404)
    for login in ("aigerim.admin", "nurlan.official", "madina.inspector"):
        as_user(client, login, demo[login].password)
        assert client.get("/police/reports").status_code == 403
        assert client.get(f"/police/reports/{report_id}").status_code == 403
    as_user(client, "aidos.chief", demo["aidos.chief"].password)  # the head of the unit
    assert client.get(f"/police/reports/{report_id}").status_code == 200


def test_overdue_reports_come_first(client: Any, kernel: Any, demo: Any) -> None:
    for _ in range(3):
        submit_anonymous(client)
    with kernel.db.read() as conn:
        ids = [r.id for r in conn.execute(sa.select(t.reports.c.id).order_by(t.reports.c.submitted_at))]
    late = ids[1]
    kernel.db.run(lambda tx: tx.execute(t.reports.update().where(t.reports.c.id == late).values(due_at=1)))
    as_user(client, "serik.police", demo["serik.police"].password)
    queue = client.get("/police/reports").text
    assert re.findall(r'href="/police/reports/([0-9a-f]{32})"', queue)[0] == late
    assert queue.count('class="is-overdue"') == 1 and "overdue" in queue


def test_forwarding_reseals_the_report_for_the_receiving_unit(client: Any, kernel: Any, demo: Any) -> None:
    unit_id, password = second_unit(kernel)
    submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    with kernel.db.read() as conn:
        sealed_before = conn.execute(sa.select(t.reports.c.data_key_sealed)).scalar()
    assert step(client, report_id, "forward", "other_territory", unit="nope").status_code == 400
    moved = step(client, report_id, "forward", "other_territory", note="Astana case.", unit=unit_id)
    assert moved.status_code == 303 and moved.headers["location"] == "/police/reports"
    assert client.get(f"/police/reports/{report_id}").status_code == 404
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.reports)).one()
    assert row.unit_id == unit_id and row.status == "forwarded" and row.data_key_sealed != sealed_before
    as_user(client, "aliya.police", password)
    page = client.get(f"/police/reports/{report_id}")
    assert page.status_code == 200 and SENTENCE in page.text
    assert step(client, report_id, "triage", "within_competence").status_code == 303


def test_a_duplicate_is_merged_into_the_earlier_report(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)
    submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    with kernel.db.read() as conn:
        first, second = conn.execute(
            sa.select(t.reports.c.id, t.reports.c.ref).order_by(t.reports.c.submitted_at)
        ).all()
    assert step(client, second.id, "merge_duplicate", "same_incident", duplicate_ref="ZZZZZ-ZZZZZ").status_code == 400
    merged = step(client, second.id, "merge_duplicate", "same_incident", duplicate_ref=first.ref.lower())
    assert merged.status_code == 303
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.reports).where(t.reports.c.id == second.id)).one()
    assert row.status == "merged_duplicate" and row.duplicate_of == first.id
    assert first.ref in client.get(f"/police/reports/{second.id}").text


def test_a_demand_for_personal_data_also_tells_the_regulator(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client, category="unlawful_data_demand")
    with kernel.db.read() as conn:
        report_id = conn.execute(sa.select(t.reports.c.id)).scalar()
        events = read_events(conn, 0, topics=["reports.unlawful_data_demand", "reports.submitted"])
    assert {e.topic for e in events} == {"reports.unlawful_data_demand", "reports.submitted"}
    assert [e.payload for e in events if e.topic == "reports.unlawful_data_demand"] == [{"report": report_id}]


def test_a_region_without_a_unit_goes_to_the_fallback_unit_flagged(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client, region="shymkent", lat="", long="")
    as_user(client, "serik.police", demo["serik.police"].password)
    queue = client.get("/police/reports").text
    assert "not this unit&#39;s region" in queue
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.reports)).one()
    assert row.routed_by_fallback and row.region_code == "shymkent"


def test_the_ledger_holds_no_report_content(client: Any, kernel: Any, demo: Any) -> None:
    receipt = submit_anonymous(client, description=f"{SENTENCE}. Call 8 701 555 66 77, IIN 850808301077.")
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    step(client, report_id, "triage", "within_competence", note="Secret internal note")
    post_form(
        client,
        f"/police/reports/{report_id}",
        f"/police/reports/{report_id}/messages",
        kind="question",
        body="A question with details",
    )
    dump = json.dumps(ledger_actions(kernel), ensure_ascii=False)
    for secret in (
        SENTENCE,
        "Secret internal note",
        "A question with details",
        receipt.replace(" ", ""),
        "850808301077",
        "555 66 77",
        "Abai avenue",
    ):
        assert secret not in dump, secret


def test_reports_stay_readable_after_the_key_ring_rotates(client: Any, kernel: Any, demo: Any) -> None:
    receipt = submit_anonymous(client)
    old = kernel.keyring.current.kid
    kernel.keyring = kernel.keyring.rotate()
    assert rewrap_all(kernel) >= 2  # the unit's private key and the report's public text, at least
    kernel.keyring = kernel.keyring.without(old)
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    assert SENTENCE in client.get(f"/police/reports/{report_id}").text
    as_anonymous(client)
    assert SENTENCE in open_with_receipt(client, receipt).text


@pytest.mark.parametrize("show", ["open", "closed", "all"])
def test_the_queue_filters(client: Any, kernel: Any, demo: Any, show: str) -> None:
    submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    ids = re.findall(r'href="/police/reports/([0-9a-f]{32})"', client.get(f"/police/reports?show={show}").text)
    assert len(ids) == (0 if show == "closed" else 1)
