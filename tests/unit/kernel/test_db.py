"""The group-commit writer: batches concurrent writes, acknowledges after commit, isolates failures."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from qorgau.kernel.db import Database, GroupCommitWriter, Tx

counter = sa.Table("counter", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    counter.metadata.create_all(database.engine)
    return database


def test_sqlite_pragmas(db: Database) -> None:
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_concurrent_writes_share_batches_and_all_commit(db: Database) -> None:
    writer = GroupCommitWriter(db, window=0.005)
    writer.start()
    n = 400

    def insert(i: int) -> None:
        writer.run(lambda tx: tx.execute(counter.insert().values(id=i, n=i)))

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(counter)).scalar_one() == n
    assert writer.jobs == n
    assert writer.batches < n, "concurrent writes should share transactions"


def test_a_failing_job_does_not_fail_its_batch_neighbours(db: Database) -> None:
    writer = GroupCommitWriter(db, window=0.05)
    writer.start()
    db.run(lambda tx: tx.execute(counter.insert().values(id=1, n=1)))
    good = [writer.submit(lambda tx, i=i: tx.execute(counter.insert().values(id=100 + i, n=i))) for i in range(5)]
    bad = writer.submit(lambda tx: tx.execute(counter.insert().values(id=1, n=2)))  # duplicate key
    for fut in good:
        fut.result(timeout=10)
    with pytest.raises(sa.exc.IntegrityError):
        bad.result(timeout=10)
    writer.stop()
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(counter)).scalar_one() == 6


def test_after_commit_runs_only_on_commit(db: Database) -> None:
    seen: list[str] = []

    def ok(tx: Tx) -> None:
        tx.execute(counter.insert().values(id=7, n=7))
        tx.after_commit(lambda: seen.append("ok"))

    def fails(tx: Tx) -> None:
        tx.after_commit(lambda: seen.append("rolled back"))
        raise RuntimeError("boom")

    db.run(ok)
    with pytest.raises(RuntimeError):
        db.run(fails)
    assert seen == ["ok"]
