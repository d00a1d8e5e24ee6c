"""What people do on the reports pages, as helpers the stories below are told with."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from tests.integration.test_auth_http import csrf_from, sign_in

SENTENCE = "Two men in red jackets were fighting next to the fountain on Abai avenue"


def jpeg(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(out, "JPEG")
    return out.getvalue()


def report_form(**overrides: str) -> dict[str, str]:
    form = {
        "category": "rudeness_fight",
        "description": f"{SENTENCE}. One of them shouted at passers-by.",
        "region": "almaty",
        "address": "Abai avenue 52",
        "lat": "43.2389",
        "long": "76.8897",
        "occurred_at": "2025-06-01T21:15",
    }
    form.update(overrides)
    return form


def as_anonymous(client: Any) -> None:
    """A fresh browser with nothing but its language (the stories assert English wording)."""
    client.cookies.clear()
    client.headers["Accept-Language"] = "en"


def as_user(client: Any, login: str, password: str) -> None:
    as_anonymous(client)
    response = sign_in(client, login, password)
    assert response.status_code in (302, 303), response.text[:300]


def submit(client: Any, files: list[bytes] = (), **overrides: str) -> Any:  # type: ignore[assignment]
    """Fill in the form, look at the check step, send; returns the last response."""
    page = client.get("/reports/new")
    assert page.status_code == 200, page.text[:300]
    form = {"_csrf": csrf_from(page.text), **report_form(**overrides)}
    check = client.post("/reports/check", data=form)
    assert check.status_code == 200, check.text[:500]
    return client.post(
        "/reports/send",
        data=form,
        files=[("files", (f"evidence-{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files)] or None,
        follow_redirects=False,
    )


def receipt_of(response: Any) -> str:
    found = re.search(r'data-testid="receipt"[^>]*>(.*?)</p>', response.text, re.S)
    assert found, response.text[:500]
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def submit_anonymous(client: Any, files: list[bytes] = (), **overrides: str) -> str:  # type: ignore[assignment]
    as_anonymous(client)
    response = submit(client, files, **overrides)
    assert response.status_code == 200, response.text[:500]
    return receipt_of(response)


def open_with_receipt(client: Any, receipt: str) -> Any:
    page = client.get("/reports/follow-up")
    return client.post("/reports/follow-up/open", data={"_csrf": csrf_from(page.text), "receipt": receipt})


def follow_up_pass(page: Any) -> str:
    found = re.search(r'name="pass" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def report_ids(client: Any) -> list[str]:
    return re.findall(r'href="/police/reports/([0-9a-f]{32})"', client.get("/police/reports?show=all").text)


def step(client: Any, report_id: str, action: str, reason: str, note: str = "Checked.", **extra: str) -> Any:
    page = client.get(f"/police/reports/{report_id}")
    return client.post(
        f"/police/reports/{report_id}/transition",
        data={"_csrf": csrf_from(page.text), "action": action, "reason": reason, "note": note, **extra},
        follow_redirects=False,
    )


def post_form(client: Any, csrf_page: str, path: str, **data: str) -> Any:
    page = client.get(csrf_page)
    return client.post(path, data={"_csrf": csrf_from(page.text), **data}, follow_redirects=False)
