"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL when configured), a kernel, an app.

With QORGAU_TEST_DATABASE_URL set, every database-backed test runs on SQLite and again on PostgreSQL,
in a database of its own created for this run. With CI=true, a missing or unreachable PostgreSQL or
Redis fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.settings import Settings, load_settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("QORGAU_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("QORGAU_TEST_REDIS_URL", "")


# One deployment secret for every test's settings (each still gets its own key ring and database).
TEST_SECRET_KEY = "5f" * 32


def require_service(name: str, url: str) -> str:
    """Skip when a service is not configured, but fail in CI: CI must exercise it for real."""
    if not url:
        message = f"{name} is not configured (set QORGAU_TEST_{name.upper()}_URL)"
        if IN_CI:
            pytest.fail(message + " — required in CI")
        pytest.skip(message)
    return url


def _pg_url(admin_url: str, dbname: str) -> str:
    return str(sa.make_url(admin_url).set(database=dbname))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this run's own, dropped at the end."""
    admin = require_service("database", PG_ADMIN_URL)
    from qorgau.kernel.db import Database

    name = f"qorgau_t_{uuid.uuid4().hex[:12]}"
    admin_db = Database.unpooled(admin)
    try:
        with admin_db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        message = f"PostgreSQL at {admin} is unreachable: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    url = _pg_url(admin, name)
    _migrate(url)
    yield url
    with admin_db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_db.dispose()


def _migrate(url: str) -> None:
    from alembic import command

    from qorgau.migrations import alembic_config

    command.upgrade(alembic_config(url), "head")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("template") / "qorgau.db"
    _migrate(f"sqlite:///{path}")
    return path


def _truncate_pg(url: str) -> None:
    from qorgau.kernel.db import Database
    from qorgau.tables import metadata

    db = Database.unpooled(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    db.dispose()


BACKENDS = ["sqlite", "postgres"] if (PG_ADMIN_URL or IN_CI) else ["sqlite"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "qorgau.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
    else:
        url: str = request.getfixturevalue("pg_database")
        _truncate_pg(url)
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        env={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        log_json=True,
        log_level="warning",
        ledger_sign_interval_ms=50,
    )


@pytest.fixture
def kernel(settings: Settings) -> Iterator[Any]:
    from qorgau.kernel.context import build_kernel

    k = build_kernel(settings)
    yield k
    k.close()


@pytest.fixture
def app(kernel: Any) -> Any:
    from qorgau.app import create_app

    return create_app(kernel=kernel)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from litestar.testing import TestClient

    with TestClient(app=app, base_url="http://testserver.local") as c:
        yield c


# Demo passwords derive from the deployment secret, which every test shares (TEST_SECRET_KEY), so the
# argon2id hash of each demo password is computed once per run instead of ~15 times per test (about a
# second of setup each). Hashes are real and salted; sign-ins still verify them for real.
_DEMO_HASHES: dict[str, str] = {}


@pytest.fixture
def demo(kernel: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The demo data set; returns accounts by username."""
    from qorgau.demo import load_demo
    from qorgau.kernel.auth import passwords, services

    def once(password: str) -> str:
        found = _DEMO_HASHES.get(password)
        if found is None:
            found = _DEMO_HASHES[password] = passwords.hash_password(password)
        return found

    with monkeypatch.context() as patch:
        patch.setattr(services, "hash_password", once)
        return {a.username: a for a in load_demo(kernel)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running for the rest of the session,
    which async tests (pytest-asyncio) cannot share."""
    items.sort(key=lambda item: "tests/browser/" in str(item.path).replace("\\", "/"))
