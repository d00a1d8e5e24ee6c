"""Database engines, the shared metadata, transactions and the group-commit writer.

One way to change state: a function `fn(tx)` run inside a write transaction, either directly
(`db.transaction()`) or through the group-commit writer (`writer.run(fn)`) on hot paths. `tx.after_commit`
registers work (event publication) that runs only once the transaction is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utc_now_ms() -> int:
    """Milliseconds since the epoch; timestamps are stored as integers so both engines agree."""
    return time.time_ns() // 1_000_000


@dataclass
class Tx:
    """A write transaction in progress: its connection and the work to run after commit."""

    conn: Connection
    callbacks: list[Callable[[], None]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    pre_commit: list[Callable[[Connection], None]] = field(default_factory=list)
    db: Database | None = None  # whose transaction this is (the event stream keeps per-database state)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once the transaction is durable (never if it rolls back)."""
        self.callbacks.append(fn)

    def before_commit(self, fn: Callable[[Connection], None]) -> None:
        """Run `fn(conn)` inside the transaction just before it commits (buffered writes flush here)."""
        self.pre_commit.append(fn)

    def execute(self, stmt: Any, params: Any = None) -> sa.CursorResult[Any]:
        return self.conn.execute(stmt, params) if params is not None else self.conn.execute(stmt)

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    for cb in callbacks:
        with contextlib.suppress(Exception):
            cb()


class Database:
    """An engine plus the conventions both engines must follow."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine = sa.create_engine(
                url,
                poolclass=sa.pool.QueuePool,
                pool_size=pool_size,
                max_overflow=20,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            sa.event.listen(self.engine, "connect", _sqlite_on_connect)
            sa.event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            self.engine = sa.create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name

    @classmethod
    def unpooled(cls, url: str) -> Database:
        db = cls.__new__(cls)
        db.url = url
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        db.engine = sa.create_engine(url, poolclass=NullPool)
        if url.startswith("sqlite"):
            sa.event.listen(db.engine, "connect", _sqlite_on_connect)
            sa.event.listen(db.engine, "begin", _sqlite_on_begin)
        db.dialect = db.engine.dialect.name
        return db

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (a deferred transaction on SQLite)."""
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); after-commit callbacks run on success."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(qorgau_write=True)
            with conn.begin():
                tx = Tx(conn, db=self)
                yield tx
                for flush in tx.pre_commit:
                    flush(conn)
        _run_callbacks(tx.callbacks)

    def run(self, fn: Callable[[Tx], T]) -> T:
        with self.transaction() as tx:
            return fn(tx)

    def ping(self) -> bool:
        try:
            with self.read() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


class Prebuilt:
    """A statement compiled once per dialect and run on the driver's own cursor.

    For the few statements every message goes through: SQLAlchemy's execution machinery costs about
    four times what SQLite spends on such a statement (measured: 46 µs against 9 µs per indexed
    lookup). Values go to the driver as they are and rows come back as plain tuples, so use it only
    for columns of strings, integers, bytes and booleans (booleans read back as 0/1 on SQLite), with
    no expanding ``IN`` parameters.
    """

    __slots__ = ("_compiled", "stmt")

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def _prepare(self, conn: Connection) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect)
            # Constants in the statement (`type = 'm.room.power_levels'`) are bind values of their own.
            names = tuple(compiled.positiontup) if compiled.positional else None
            found = (compiled.string, names, dict(compiled.params))
            self._compiled[dialect.name] = found
        return found

    def cursor(self, conn: Connection | Tx, params: dict[str, Any]) -> Any:
        """Execute with `params` (by bind name) in `conn`'s transaction; the driver's cursor."""
        connection = conn.conn if isinstance(conn, Tx) else conn
        if not connection.in_transaction():
            connection.begin()  # as SQLAlchemy's own first execute would (autobegin)
        sql, names, constants = self._prepare(connection)
        values = {**constants, **params}
        args: Any = tuple(values[name] for name in names) if names is not None else values
        driver = connection.connection.driver_connection
        assert driver is not None
        cur = driver.cursor()
        cur.execute(sql, args)
        return cur

    def run(self, conn: Connection | Tx, params: dict[str, Any]) -> None:
        """Execute a statement that returns no rows."""
        self.cursor(conn, params).close()

    def first(self, conn: Connection | Tx, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row (a tuple) or None."""
        cur = self.cursor(conn, params)
        try:
            return cur.fetchone()  # type: ignore[no-any-return]
        finally:
            cur.close()

    def scalar(self, conn: Connection | Tx, params: dict[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event choose the BEGIN flavour instead of pysqlite's implicit BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # FULL: an acknowledged write survives power loss too; group commit pays the fsync once per batch.
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # On the driver's connection: SQLAlchemy's execute path (context, result proxy, events) cost the
    # group-commit writer more than the BEGIN itself, once per batch. pysqlite keeps no transaction
    # state of its own here (isolation_level None), so nothing else needs to know.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("BEGIN IMMEDIATE" if conn.get_execution_options().get("qorgau_write") else "BEGIN")


@dataclass
class _Job:
    fn: Callable[[Tx], Any]
    future: Future[Any]


class GroupCommitWriter:
    """Batches writes that arrive within `window` seconds into one transaction.

    Each caller's future resolves only after the batch has committed, so acknowledged means durable.
    If any job in a batch fails, the batch is rolled back and its jobs re-run one transaction each,
    so one bad write never fails its neighbours.
    """

    def __init__(self, db: Database, *, window: float = 0.001, max_batch: int = 1024) -> None:
        self.db = db
        self.window = window
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.jobs = 0
        self._last_batch = 1
        # The writer thread's own connection, kept across batches: checking one out of the pool and
        # resetting it on return cost as much as a message's statements. Used only by that thread.
        self._conn: Connection | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="qorgau-group-commit", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout=10)
            self._thread = None

    def submit(self, fn: Callable[[Tx], T]) -> Future[T]:
        if self._thread is None:
            self.start()
        fut: Future[T] = Future()
        self._queue.put(_Job(fn, fut))
        return fut

    def run(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in the next batch and return its result once committed."""
        return self.submit(fn).result()

    async def arun(self, fn: Callable[[Tx], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._close()
                return
            batch = [first]
            # Wait for company only while fewer jobs have come than last time: a lone writer commits at
            # once, while many concurrent writers keep sharing transactions.
            expected = self._last_batch
            deadline = time.monotonic() + self.window
            stop = False
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if len(batch) >= expected or remaining <= 0:
                        break
                    try:
                        job = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._last_batch = len(batch)
            self._commit(batch)
            if stop:
                self._close()
                return

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Tx]:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.db.engine.connect().execution_options(qorgau_write=True)
        conn = self._conn
        try:
            with conn.begin():
                tx = Tx(conn, db=self.db)
                yield tx
                for flush in tx.pre_commit:
                    flush(conn)
        except BaseException:
            # Whatever failed (a job, or the connection itself: a restarted server), the next
            # transaction starts on a fresh connection.
            self._close()
            raise
        _run_callbacks(tx.callbacks)

    def _commit(self, batch: list[_Job]) -> None:
        # Jobs may run twice (in the batch, then alone after a neighbour failed): they must only touch
        # the database, and defer anything else to tx.after_commit.
        results: list[Any] = []
        try:
            with self._transaction() as tx:
                for job in batch:
                    results.append(job.fn(tx))
        except Exception:
            for job in batch:
                self._run_alone(job)
            return
        self.batches += 1
        self.jobs += len(batch)
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def _run_alone(self, job: _Job) -> None:
        try:
            with self._transaction() as tx:
                result = job.fn(tx)
        except BaseException as exc:
            job.future.set_exception(exc)
            return
        self.batches += 1
        self.jobs += 1
        job.future.set_result(result)
