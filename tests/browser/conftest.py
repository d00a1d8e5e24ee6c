"""Playwright drives Debian's Chromium (/usr/bin/chromium); it never downloads a browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, _truncate_pg

CHROMIUM = os.environ.get("QORGAU_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        message = f"Chromium is missing at {CHROMIUM}: run `make browser-deps` (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
        ],
    }


# The journeys an issue's "done when" names run on PostgreSQL too (the same app, another engine).
on_every_engine = pytest.mark.parametrize("database_url", BACKENDS, indirect=True)


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Browser tests check pages, not engines: SQLite, except the journeys marked `on_every_engine`."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_database")
        _truncate_pg(url)
        yield url
        return
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "qorgau.db"
    shutil.copyfile(template, target)
    yield f"sqlite:///{target}"


@pytest.fixture
def live_url(app: Any) -> Iterator[str]:
    from tests.live import serve

    with serve(app) as url:
        yield url


def shot(page: Any, name: str) -> None:
    """Keep a screenshot of what a person saw, for review (screenshots/ is not committed)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, live_url: str, login: str, password: str) -> None:
    """Sign in through the real form and land on the home page."""
    page.goto(live_url + "/login")
    page.locator("#login").fill(login)
    page.locator("#password").fill(password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(live_url + "/")


def no_overflow(page: Any) -> None:
    """The page fits the viewport's width (nothing scrolls sideways)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (page.url, overflow)
