"""A citizen reports an offence — anonymously or under their name — and follows it up."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from PIL import ExifTags, Image

from qorgau.reports import tables as t
from qorgau.tables import metadata
from tests.integration.reports.flows import (
    SENTENCE,
    as_anonymous,
    as_user,
    follow_up_pass,
    jpeg,
    open_with_receipt,
    post_form,
    receipt_of,
    report_ids,
    step,
    submit,
    submit_anonymous,
)
from tests.integration.test_auth_http import csrf_from
from tests.unit.reports.test_media import jpeg_with_gps


def all_values(kernel: Any) -> list[Any]:
    """Every value of every row of every table."""
    values: list[Any] = []
    with kernel.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                values.extend(row)
    return values


def found_anywhere(kernel: Any, needle: str) -> bool:
    raw = needle.encode("utf-8")
    for value in all_values(kernel):
        if isinstance(value, str) and needle in value:
            return True
        if isinstance(value, bytes | memoryview) and raw in bytes(value):
            return True
    return False


def test_anonymous_citizen_reports_with_a_photo_and_gets_a_receipt(client: Any, kernel: Any, demo: Any) -> None:
    as_anonymous(client)
    response = submit(client, [jpeg()])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    receipt = receipt_of(response)
    assert re.fullmatch(r"(\d{4} ){6}\d{4}", receipt)
    assert "Almaty City Police Department" in response.text or "Алматы" in response.text
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.reports)).one()
        files = conn.execute(sa.select(t.report_attachments)).all()
    assert row.status == "new" and not row.named and row.reporter_ref is None
    assert row.receipt_verifier.startswith("$argon2id$") and len(row.receipt_index) == 64
    assert len(files) == 1 and files[0].kind == "photo" and files[0].scrubbed
    assert not found_anywhere(kernel, receipt.replace(" ", ""))


def test_the_report_text_is_nowhere_in_the_database(client: Any, kernel: Any, demo: Any, database_url: str) -> None:
    receipt = submit_anonymous(client, [jpeg()])
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    assert SENTENCE in client.get(f"/police/reports/{report_id}").text
    post_form(
        client,
        f"/police/reports/{report_id}",
        f"/police/reports/{report_id}/messages",
        kind="question",
        body="Which fountain exactly?",
    )
    as_anonymous(client)
    page = open_with_receipt(client, receipt)
    assert "Which fountain exactly?" in page.text
    for needle in (SENTENCE, "red jackets", "Which fountain", "Abai avenue 52", "43.2389"):
        assert not found_anywhere(kernel, needle), needle
    if database_url.startswith("sqlite"):
        kernel.db.dispose()
        path = Path(database_url.removeprefix("sqlite:///"))
        dump = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert len(dump) > 100_000
        for needle in (SENTENCE, "red jackets", "Which fountain"):
            assert needle.encode() not in dump, needle


def test_a_photo_with_gps_reaches_the_officer_without_it(client: Any, kernel: Any, demo: Any) -> None:
    submit_anonymous(client, [jpeg_with_gps()])
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    page = client.get(f"/police/reports/{report_id}")
    [attachment_id] = re.findall(r"/attachments/([0-9a-f]{32})", page.text)
    photo = client.get(f"/police/reports/{report_id}/attachments/{attachment_id}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["cache-control"] == "no-store"
    img = Image.open(io.BytesIO(photo.content))
    assert img.size == (64, 48)
    assert not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"PhoneMaker" not in photo.content and b"Exif" not in photo.content


def test_the_check_step_shows_what_the_public_version_hides(client: Any, demo: Any) -> None:
    as_anonymous(client)
    page = client.get("/reports/new")
    text = "Кассир потребовал мой ИИН 850808301077 и телефон +7 701 234 56 78 для скидки."
    check = client.post(
        "/reports/check",
        data={
            "_csrf": csrf_from(page.text),
            "category": "unlawful_data_demand",
            "description": text,
            "region": "almaty",
        },
    )
    assert check.status_code == 200
    assert check.text.count('class="rp-redact"') >= 2
    assert "[IIN]" in check.text and "[PHONE]" in check.text


def test_a_form_with_a_mistake_comes_back_filled_in_with_the_field_named(client: Any, demo: Any) -> None:
    as_anonymous(client)
    page = client.get("/reports/new")
    token = csrf_from(page.text)
    cases = [
        ({"category": "jaywalking"}, "category"),
        ({"description": "short"}, "description"),
        ({"description": "x" * 4001}, "description"),
        ({"region": "atlantis"}, "region"),
        ({"lat": "55.75", "long": "37.61"}, "lat"),
        ({"lat": "43.2", "long": ""}, "long"),
        ({"occurred_at": "2999-01-01T10:00"}, "occurred_at"),
    ]
    from tests.integration.reports.flows import report_form

    for change, field in cases:
        response = client.post("/reports/check", data={"_csrf": token, **report_form(**change)})
        assert response.status_code == 400, (change, response.status_code)
        assert 'role="alert"' in response.text
        assert 'value="Abai avenue 52"' in response.text  # what was typed is kept
        if field in ("description", "region"):
            assert f'id="{field}"' in response.text and 'aria-invalid="true"' in response.text


def test_files_that_are_not_photos_video_or_voice_are_refused(client: Any, kernel: Any, demo: Any) -> None:
    as_anonymous(client)
    response = submit(client, [b"%PDF-1.7 not a photo at all"])
    assert response.status_code == 415
    assert 'role="alert"' in response.text
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.reports)).scalar() == 0


def test_the_reporter_follows_up_answers_and_adds_a_file(client: Any, kernel: Any, demo: Any) -> None:
    receipt = submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    [report_id] = report_ids(client)
    step(client, report_id, "triage", "needs_details")
    post_form(
        client,
        f"/police/reports/{report_id}",
        f"/police/reports/{report_id}/messages",
        kind="question",
        body="Did anyone get hurt?",
    )

    as_anonymous(client)
    page = open_with_receipt(client, receipt.replace(" ", "-"))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Did anyone get hurt?" in page.text and SENTENCE in page.text
    answer = {
        "_csrf": csrf_from(page.text),
        "pass": follow_up_pass(page),
        "nonce": "n" * 22,
        "body": "One man, lightly.",
    }
    files = [("files", ("bruise.jpg", jpeg((10, 200, 10)), "image/jpeg"))]
    after = client.post("/reports/follow-up/answer", data=answer, files=files)
    assert after.status_code == 200 and "One man, lightly." in after.text
    client.post("/reports/follow-up/answer", data=answer, files=files)  # the form sent twice
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.report_messages)).scalar() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(t.report_attachments)).scalar() == 1

    as_user(client, "serik.police", demo["serik.police"].password)
    assert "new answer" in client.get("/police/reports").text
    officer_page = client.get(f"/police/reports/{report_id}")
    assert "One man, lightly." in officer_page.text
    assert "new answer" not in client.get("/police/reports").text  # read now


def test_wrong_receipts_are_told_apart_and_throttled(client: Any, kernel: Any, demo: Any) -> None:
    receipt = submit_anonymous(client).replace(" ", "")
    typo = receipt[:5] + str((int(receipt[5]) + 1) % 10) + receipt[6:]
    assert open_with_receipt(client, typo).status_code == 400
    from qorgau.reports import receipts

    for _ in range(kernel.settings.reports_receipt_max_failures):
        assert open_with_receipt(client, receipts.new_receipt()).status_code in (404, 429)
    locked = open_with_receipt(client, receipt)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1


def test_a_forged_or_old_follow_up_pass_opens_nothing(client: Any, kernel: Any, demo: Any) -> None:
    from qorgau.reports.services import reporter

    receipt = submit_anonymous(client)
    page = open_with_receipt(client, receipt)
    good = follow_up_pass(page)
    report_id, expires, mac = good.split(".")
    old = reporter.issue_pass(kernel, report_id, now_ms=1_000)
    for bad in (f"{report_id}.{int(expires) + 1}.{mac}", f"{'0' * 32}.{expires}.{mac}", old, "garbage"):
        response = client.post(
            "/reports/follow-up/answer", data={"_csrf": csrf_from(page.text), "pass": bad, "body": "hello"}
        )
        assert response.status_code == 403, bad


def test_the_reporter_withdraws_until_the_report_is_triaged(client: Any, kernel: Any, demo: Any) -> None:
    first = submit_anonymous(client)
    page = open_with_receipt(client, first)
    withdrawn = client.post(
        "/reports/follow-up/withdraw",
        data={"_csrf": csrf_from(page.text), "pass": follow_up_pass(page), "reason": "mistake"},
    )
    assert withdrawn.status_code == 200 and "Withdrawn by the reporter" in withdrawn.text

    second = submit_anonymous(client)
    as_user(client, "serik.police", demo["serik.police"].password)
    open_ids = re.findall(r'href="/police/reports/([0-9a-f]{32})"', client.get("/police/reports").text)
    assert len(open_ids) == 1
    step(client, open_ids[0], "triage", "within_competence")
    as_anonymous(client)
    page = open_with_receipt(client, second)
    assert "Withdraw the report" not in page.text
    refused = client.post(
        "/reports/follow-up/withdraw",
        data={"_csrf": csrf_from(page.text), "pass": follow_up_pass(page), "reason": "mistake"},
    )
    assert refused.status_code == 409


def test_a_citizen_reports_under_their_name_and_follows_it_in_the_account(client: Any, kernel: Any, demo: Any) -> None:
    citizen = demo["850808301077"]
    as_user(client, citizen.username, citizen.password)
    sent = submit(client, named="1")
    assert sent.status_code in (302, 303)
    own = client.get(sent.headers["location"])
    assert own.status_code == 200 and "Your report has been sent." in own.text and SENTENCE in own.text
    report_id = sent.headers["location"].split("/")[3].split("?")[0]
    assert report_id in client.get("/reports/mine").text

    as_user(client, "serik.police", demo["serik.police"].password)
    officer_page = client.get(f"/police/reports/{report_id}")
    assert "Named reporter (identity sealed)" in officer_page.text
    for secret in ("Әлия", "850808301077", "701 234"):
        assert secret not in officer_page.text
    step(client, report_id, "triage", "within_competence")

    as_user(client, citizen.username, citizen.password)
    mine = client.get("/reports/mine")
    assert 'class="is-unread"' in mine.text and "Accepted for review" in mine.text
    client.get(f"/reports/mine/{report_id}")
    assert 'class="is-unread"' not in client.get("/reports/mine").text

    other = {"iin": "061211600012", "phone": "+7 702 111 22 33", "password": "another-long-password"}
    page = client.get("/signup")
    client.cookies.clear()
    page = client.get("/signup")
    client.post("/signup", data={**other, "password_confirm": other["password"], "_csrf": csrf_from(page.text)})
    assert client.get(f"/reports/mine/{report_id}").status_code == 404
    assert report_id not in client.get("/reports/mine").text


def test_a_citizen_may_still_report_anonymously_while_signed_in(client: Any, kernel: Any, demo: Any) -> None:
    citizen = demo["850808301077"]
    as_user(client, citizen.username, citizen.password)
    response = submit(client)
    assert response.status_code == 200 and receipt_of(response)
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.reports)).one()
    assert not row.named and row.reporter_ref is None and row.identity_enc is None
    assert "You have not sent any report under your name" in client.get("/reports/mine").text
