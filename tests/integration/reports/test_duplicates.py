"""Possible duplicates: same unit, category and place (keyed ~150 m cells), within the window; merging."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from qorgau.kernel.ledger.tables import ledger_entries
from qorgau.reports import tables as t
from tests.integration.reports.flows import as_anonymous, as_user, post_form, submit_anonymous
from tests.integration.reports.test_police_reports import second_unit

LAT, LONG = 43.2389, 76.8897


def north(metres: float) -> str:
    return f"{LAT + metres / 111_320:.6f}"


def east(metres: float) -> str:
    return f"{LONG + metres / (111_320 * math.cos(math.radians(LAT))):.6f}"


def ids_in_order(kernel: Any) -> list[str]:
    with kernel.db.read() as conn:
        return [
            r.id for r in conn.execute(sa.select(t.reports.c.id).order_by(t.reports.c.submitted_at, t.reports.c.id))
        ]


def suggested(client: Any, report_id: str) -> set[str]:
    """The reports listed as possible duplicates on a report's page."""
    page = client.get(f"/police/reports/{report_id}")
    assert page.status_code == 200, page.text[:300]
    items = re.findall(r'<li class="rp-dup" data-testid="duplicate">(.*?)</li>', page.text, re.S)
    return {re.search(r'href="/police/reports/([0-9a-f]{32})"', item).group(1) for item in items}  # type: ignore[union-attr]


def ledger(kernel: Any) -> list[dict[str, Any]]:
    with kernel.db.read() as conn:
        return [json.loads(bytes(leaf)) for (leaf,) in conn.execute(sa.select(ledger_entries.c.leaf))]


def test_two_reports_100_metres_apart_are_suggested_to_each_other(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)
    submit_anonymous(client, lat=north(70), long=east(70))  # ~99 m to the north-east
    first, second = ids_in_order(kernel)
    with kernel.db.read() as conn:
        keys = [r.place_key for r in conn.execute(sa.select(t.reports.c.place_key))]
    assert all(k and len(k) == 64 for k in keys)
    as_user(client, "serik.police", demo["serik.police"].password)
    assert suggested(client, first) == {second}
    assert suggested(client, second) == {first}
    queue = client.get("/police/reports")
    assert queue.text.count('data-testid="dup-count"') == 2
    assert "possible duplicates: 1" in queue.text


def test_other_category_far_away_or_outside_the_window_is_not_suggested(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)  # the report the others are compared with
    submit_anonymous(client, category="noise", lat=north(50))  # same place, another category
    submit_anonymous(client, lat=north(10_000))  # 10 km away
    submit_anonymous(client, lat=north(-60))  # close, but sent 73 hours earlier (below)
    submit_anonymous(client, lat="", long="", address="Abai avenue 52")  # no point: compared by address
    base, other_category, far, old, by_address = ids_in_order(kernel)
    hour = 3600 * 1000
    kernel.db.run(
        lambda tx: tx.execute(
            t.reports.update().where(t.reports.c.id == old).values(submitted_at=t.reports.c.submitted_at - 73 * hour)
        )
    )
    as_user(client, "serik.police", demo["serik.police"].password)
    assert suggested(client, base) == set()
    assert suggested(client, other_category) == set()
    assert suggested(client, far) == set()
    assert suggested(client, by_address) == set()
    assert "possible duplicates" not in client.get("/police/reports").text

    # A longer window (a setting) brings the older report in.
    kernel.settings = replace(kernel.settings, reports_duplicate_window_hours=96)
    assert suggested(client, base) == {old}


def test_reports_without_a_point_match_by_address(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client, lat="", long="", address="Abai avenue 52")
    submit_anonymous(client, lat="", long="", address="  abai AVENUE, 52 ")
    submit_anonymous(client, lat="", long="", address="Abai avenue 54")
    a, b, c = ids_in_order(kernel)
    as_user(client, "serik.police", demo["serik.police"].password)
    assert suggested(client, a) == {b}
    assert suggested(client, c) == set()


def test_merge_into_this_uses_the_regulation_and_is_recorded(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)
    submit_anonymous(client, lat=north(40))
    primary, duplicate = ids_in_order(kernel)
    as_user(client, "serik.police", demo["serik.police"].password)
    page = client.get(f"/police/reports/{primary}")
    assert "Merge into this report" in page.text
    no_note = post_form(
        client, f"/police/reports/{primary}", f"/police/reports/{primary}/merge", duplicate=duplicate, note=""
    )
    assert no_note.status_code == 400
    merged = post_form(
        client,
        f"/police/reports/{primary}",
        f"/police/reports/{primary}/merge",
        duplicate=duplicate,
        note="Same fight.",
    )
    assert merged.status_code == 303 and merged.headers["location"] == f"/police/reports/{primary}"
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.reports).where(t.reports.c.id == duplicate)).one()
        history = conn.execute(sa.select(t.report_history).where(t.report_history.c.report_id == duplicate)).all()
    assert row.status == "merged_duplicate" and row.duplicate_of == primary and row.closed_at
    assert [h.action for h in history][-1] == "merge_duplicate" and history[-1].related == primary
    entry = [e for e in ledger(kernel) if e["action"] == "report.merge_duplicate"][-1]
    assert entry["object"] == {
        "report": duplicate,
        "from": "new",
        "to": "merged_duplicate",
        "reason": "same_incident",
        "into": primary,
    }
    page = client.get(f"/police/reports/{primary}")
    assert 'data-testid="merged"' in page.text and duplicate in page.text
    assert suggested(client, primary) == set()
    # The merged report points at the primary one.
    assert "Duplicate of" in client.get(f"/police/reports/{duplicate}").text
    # Merging again (it is no longer open) is refused with a clear error, not a 500.
    again = post_form(
        client, f"/police/reports/{primary}", f"/police/reports/{primary}/merge", duplicate=duplicate, note="Again."
    )
    assert again.status_code == 409


def test_merge_respects_roles_and_units(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client)
    submit_anonymous(client, lat=north(40))
    primary, duplicate = ids_in_order(kernel)
    as_user(client, "serik.police", demo["serik.police"].password)
    csrf_page = "/police/reports"

    def merge() -> Any:
        return post_form(client, csrf_page, f"/police/reports/{primary}/merge", duplicate=duplicate, note="Same.")

    _unit, password = second_unit(kernel)
    as_user(client, "aliya.police", password)  # another unit's officer
    assert merge().status_code == 404
    for login in ("aigerim.admin", "nurlan.official", "madina.inspector"):
        as_user(client, login, demo[login].password)
        csrf_page = "/account"
        assert merge().status_code == 403
    as_anonymous(client)
    csrf_page = "/reports/new"
    assert merge().status_code in (401, 302, 303)
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(t.reports.c.status).where(t.reports.c.id == duplicate)).scalar() == "new"
    # A report of another unit cannot be merged into ours.
    as_user(client, "aidos.chief", demo["aidos.chief"].password)  # the head of the unit may merge
    csrf_page = f"/police/reports/{primary}"
    assert (
        post_form(client, csrf_page, f"/police/reports/{primary}/merge", duplicate="0" * 32, note="Same.").status_code
        == 400
    )
    assert merge().status_code == 303
