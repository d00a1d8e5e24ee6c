"""The one Alembic history builds exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from qorgau.kernel.db import Database
from qorgau.tables import metadata


def test_migrated_schema_matches_the_code(database_url: str) -> None:
    db = Database.unpooled(database_url)
    try:
        with db.engine.connect() as conn:
            diff: list[Any] = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    finally:
        db.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_migrate_command_is_idempotent(tmp_path: Any) -> None:
    from qorgau.migrations import is_current, upgrade
    from qorgau.settings import load_settings

    settings = load_settings(env={}, data_dir=tmp_path / "d")
    upgrade(settings)
    upgrade(settings)
    assert is_current(settings)


def test_the_history_is_one_line() -> None:
    from alembic.script import ScriptDirectory

    from qorgau.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, "two migrations share a parent: chain them"
