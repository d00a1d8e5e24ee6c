"""Health, readiness, metrics, translated error pages, and logs without personal data."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.test_auth_http import csrf_from


def test_health_and_readiness(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready == {"status": "ok", "database": True, "bus": True}


def test_metrics_count_requests_per_route_template(client: Any) -> None:
    client.get("/healthz")
    client.get("/api/v1/ledger/entries?start=0&end=0")
    text = client.get("/metrics").text
    assert re.search(r'qorgau_http_requests_total\{method="GET",route="/healthz",status="200"\} \d+', text)
    assert 'route="/api/v1/ledger/entries"' in text
    assert "qorgau_http_request_duration_seconds_bucket" in text
    assert re.search(r"^qorgau_ledger_size \d+", text, re.M)
    assert re.search(r"^qorgau_bus_lag \d+", text, re.M)


def test_unknown_page_is_a_translated_html_page(client: Any) -> None:
    page = client.get("/no/such/page", headers={"Accept": "text/html", "Accept-Language": "ru"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Страница не найдена" in page.text
    api = client.get("/api/v1/no-such", headers={"Accept-Language": "kk"})
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")
    body = api.json()
    assert body["code"] == "http.not_found" and body["status"] == 404 and body["title"]


def test_malformed_json_body_is_a_problem_not_a_crash(client: Any) -> None:
    response = client.post(
        "/api/v1/users", content=b"{not json", headers={"Content-Type": "application/json", "Authorization": ""}
    )
    assert response.status_code in (400, 401)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text


def test_logs_carry_no_personal_data(client: Any, capfd: Any) -> None:
    from qorgau.kernel.observability import configure_logging

    configure_logging("debug", json_logs=True)
    page = client.get("/signup")
    client.post(
        "/signup",
        data={
            "iin": "850808301077",
            "phone": "+7 701 555 66 77",
            "display_name": "Жанна Исаева",
            "password": "another-long-password",
            "password_confirm": "another-long-password",
            "_csrf": csrf_from(page.text),
        },
    )
    client.get("/transparency?index=850808301077")
    out, err = capfd.readouterr()
    logs = out + err
    assert '"event": "request"' in logs
    for secret in ("850808301077", "7015556677", "555 66 77", "Жанна", "another-long-password"):
        assert secret not in logs, secret
