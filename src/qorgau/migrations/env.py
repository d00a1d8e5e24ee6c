"""Alembic environment: the shared metadata of every service, batch mode so SQLite can alter tables."""

from __future__ import annotations

from alembic import context

from qorgau.kernel.db import Database
from qorgau.tables import metadata

config = context.config


def run_migrations_online() -> None:
    db = Database.unpooled(config.get_main_option("sqlalchemy.url") or "")
    with db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    db.dispose()


run_migrations_online()
