"""The public statistics page, as a visitor sees it on a desktop and on a phone, in kk/ru/en."""

from __future__ import annotations

from typing import Any

import pytest

from qorgau.kernel import kz
from qorgau.reports import catalog, statistics
from qorgau.reports import tables as t
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser


def seed(kernel: Any) -> None:
    regions = [r.code for r in kz.regions()]
    cats = [c.code for c in catalog.categories()]
    months = ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", statistics.month_of(1_796_000_000_000)]

    def write(tx: Any) -> None:
        for i, region in enumerate(regions):
            for j, category in enumerate(cats):
                for k, month in enumerate(sorted(set(months))):
                    n = (i * 37 + j * 11 + k * 5) % 60
                    if j == 1 and i in (2, 5):  # a few small counts, hidden with their complements
                        n = 3 if k == 0 else 0
                    if i == 7:  # a region with hardly any reports
                        n = 1 if (j, k) == (0, 0) else 0
                    if n:
                        tx.execute(
                            t.report_stats.insert().values(region_code=region, category=category, month=month, count=n)
                        )

    kernel.writer.run(write)


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_statistics_page_desktop_and_phone(browser: Any, live_url: str, kernel: Any, lang: str) -> None:
    seed(kernel)
    for name, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
        context = browser.new_context(viewport=viewport, extra_http_headers={"Accept-Language": lang})
        page = context.new_page()
        try:
            page.goto(live_url + "/reports")
            page.locator("a[href='/reports/statistics']").click()
            page.wait_for_url(live_url + "/reports/statistics")
            assert page.locator("html").get_attribute("lang") == lang
            chart = page.locator("svg.st-chart")
            assert chart.is_visible()
            assert chart.get_attribute("role") == "img"
            assert page.locator("svg.st-chart title").count() == 1 and page.locator("svg.st-chart desc").count() == 1
            assert page.locator("svg.st-chart text.st-label").count() == len(kz.regions())
            assert page.locator("[data-testid=stat-table] tbody tr").count() == len(kz.regions())
            # The chart's labels stay legible on a phone.
            font = page.evaluate(
                "(() => { const t = document.querySelector('svg.st-chart text.st-label');"
                " return t.getBoundingClientRect().height; })()"
            )
            assert font >= 10, font
            assert page.locator("[data-testid=stat-table] td", has_text="<10").count() >= 2
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, overflow
            shot(page, f"reports-statistics-{name}-{lang}")
            page.locator(".st-tab[href$='by=month']").click()
            page.wait_for_url("**by=month")
            assert page.locator("svg.st-chart text.st-label").count() >= 6
            shot(page, f"reports-statistics-month-{name}-{lang}")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, overflow
        finally:
            context.close()
