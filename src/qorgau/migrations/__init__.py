"""One Alembic history for SQLite and PostgreSQL, run programmatically (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from qorgau.settings import Settings

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the settings' database to `revision` (creating a SQLite file's folder first)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url), revision)


def is_current(settings: Settings) -> bool:
    """Whether the database is at the newest revision."""
    from qorgau.kernel.db import Database

    db = Database.unpooled(settings.resolved_database_url)
    try:
        with db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        db.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config(settings.resolved_database_url)).get_heads())
    return current == heads
