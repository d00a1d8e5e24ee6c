"""The group-commit writer: batches concurrent writes, acknowledges after commit, isolates failures."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from qorgau.kernel.db import Database, GroupCommitWriter, Prebuilt, Tx

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


def test_prebuilt_statements_run_on_the_driver_with_their_constants(db: Database) -> None:
    insert = Prebuilt(counter.insert().values(id=sa.bindparam("id"), n=sa.bindparam("n")).returning(counter.c.id))
    # A constant in the statement (n > 5) is a bind value of its own: it must reach the driver too.
    count_big = Prebuilt(sa.select(sa.func.count()).select_from(counter).where(counter.c.n > 5))
    with db.transaction() as tx:
        assert insert.first(tx, {"id": 1, "n": 3}) == (1,)
        assert insert.first(tx, {"id": 2, "n": 30}) == (2,)
        assert count_big.scalar(tx, {}) == 1
    with db.transaction() as tx:  # rolled back with its transaction like any other statement
        insert.run(tx, {"id": 3, "n": 40})
        tx.conn.rollback()
    with db.read() as conn:  # a read connection starts its transaction as SQLAlchemy would
        assert count_big.scalar(conn, {}) == 1
        assert conn.in_transaction()
        assert Prebuilt(sa.select(counter.c.n).where(counter.c.id == sa.bindparam("id"))).first(conn, {"id": 9}) is None


def test_the_writer_keeps_its_connection_and_replaces_a_broken_one(db: Database) -> None:
    writer = GroupCommitWriter(db)
    writer.start()
    writer.run(lambda tx: tx.execute(counter.insert().values(id=1, n=1)))
    first = writer._conn
    writer.run(lambda tx: tx.execute(counter.insert().values(id=2, n=2)))
    assert writer._conn is first  # one connection across batches
    assert first is not None
    first.invalidate()  # as when the server drops it
    writer.run(lambda tx: tx.execute(counter.insert().values(id=3, n=3)))
    assert writer._conn is not first
    with pytest.raises(sa.exc.IntegrityError):  # a failing job ...
        writer.run(lambda tx: tx.execute(counter.insert().values(id=3, n=4)))
    writer.run(lambda tx: tx.execute(counter.insert().values(id=4, n=4)))  # ... leaves the writer working
    writer.stop()
    assert writer._conn is None
    with db.read() as conn:
        assert conn.execute(sa.select(counter.c.id).order_by(counter.c.id)).scalars().all() == [1, 2, 3, 4]
