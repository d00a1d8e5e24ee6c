"""Nothing identifies an anonymous reporter: no address, browser or cookie kept — not in tables, logs or metrics."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from qorgau.reports import receipts
from qorgau.reports.services import common
from tests.integration.reports.flows import follow_up_pass, jpeg, receipt_of, report_form
from tests.integration.reports.test_citizen_reports import found_anywhere
from tests.integration.test_auth_http import csrf_from

ADDRESS = "203.0.113.77"
BROWSER = "QorgauProbe/9.9 (distinctive-agent-7f3a)"


@pytest.fixture
def traced_client(app: Any) -> Any:
    """A browser with a distinctive user agent, reaching the app from a distinctive address."""
    inner = app.asgi_handler

    async def from_address(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["client"] = (ADDRESS, 40001)
        await inner(scope, receive, send)

    app.asgi_handler = from_address
    with TestClient(app=app, base_url="http://testserver.local") as client:
        client.headers.update({"User-Agent": BROWSER, "Accept-Language": "en"})
        yield client


def test_an_anonymous_report_and_its_follow_up_leave_no_trace_of_the_reporter(
    traced_client: Any, kernel: Any, demo: Any, capfd: Any
) -> None:
    from qorgau.kernel.observability import configure_logging

    configure_logging("debug", json_logs=True)
    client = traced_client
    cookies: list[str] = []

    def keep(response: Any) -> Any:
        cookies.extend(response.headers.get_list("set-cookie"))
        assert response.status_code < 500, response.text[:300]
        return response

    keep(client.get("/reports"))
    page = keep(client.get("/reports/new"))
    form = {"_csrf": csrf_from(page.text), **report_form()}
    keep(client.post("/reports/check", data=form))
    sent = keep(client.post("/reports/send", data=form, files=[("files", ("p.jpg", jpeg(), "image/jpeg"))]))
    receipt = receipt_of(sent)
    keep(client.get("/reports/follow-up"))
    keep(client.post("/reports/follow-up/open", data={"_csrf": form["_csrf"], "receipt": receipts.new_receipt()}))
    # The wrong receipt was counted, in memory, under the day's keyed hash of this very address.
    assert common.client_key(kernel, ADDRESS) in common.limits(kernel).receipts._slots
    opened = keep(client.post("/reports/follow-up/open", data={"_csrf": form["_csrf"], "receipt": receipt}))
    answered = keep(
        client.post(
            "/reports/follow-up/answer",
            data={"_csrf": form["_csrf"], "pass": follow_up_pass(opened), "body": "More details."},
            files=[("files", ("q.jpg", jpeg((0, 0, 255)), "image/jpeg"))],
        )
    )
    keep(
        client.post(
            "/reports/follow-up/withdraw",
            data={"_csrf": form["_csrf"], "pass": follow_up_pass(answered), "reason": "resolved"},
        )
    )
    metrics = client.get("/metrics").text

    for trace in (ADDRESS, BROWSER, "distinctive-agent-7f3a"):
        assert not found_anywhere(kernel, trace), f"{trace} is stored in the database"
    out, err = capfd.readouterr()
    logs = out + err
    assert '"event": "request"' in logs
    for trace in (ADDRESS, BROWSER, "distinctive-agent", receipt.replace(" ", "")):
        assert trace not in logs, f"{trace} is in the logs"
        assert trace not in metrics, f"{trace} is in the metrics"
    assert 'route="/reports/follow-up/open"' in metrics and 'route="/reports/send"' in metrics
    assert {c.split("=", 1)[0] for c in cookies} <= {"qorgau_pre"}, cookies  # only the CSRF binding


def test_abuse_counters_are_keyed_by_a_daily_hash_kept_in_memory(kernel: Any, monkeypatch: Any) -> None:
    today = common.client_key(kernel, ADDRESS)
    assert ADDRESS not in today and len(today) == 64
    assert common.client_key(kernel, ADDRESS) == today
    monkeypatch.setattr(common, "_today", lambda: "2099-01-01")
    assert common.client_key(kernel, ADDRESS) != today
    first = common.limits(kernel)
    monkeypatch.setattr(common, "_today", lambda: "2099-01-02")
    assert common.limits(kernel) is not first  # a new day starts from empty counters


def test_too_many_reports_from_one_connection_are_slowed_down(client: Any, kernel: Any, demo: Any) -> None:
    from dataclasses import replace

    kernel.settings = replace(kernel.settings, reports_submissions_per_hour=2)
    kernel.extras.pop("reports.limits", None)
    client.headers["Accept-Language"] = "en"
    page = client.get("/reports/new")
    form = {"_csrf": csrf_from(page.text), **report_form()}
    statuses = [client.post("/reports/send", data=form).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
