"""Tests for qorgau.kernel.events (the outbox) and qorgau.kernel.realtime (Hub, MemoryBus)."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from qorgau.kernel import events
from qorgau.kernel.db import Database, GroupCommitWriter, Tx
from qorgau.kernel.events import (
    Emitted,
    Event,
    StreamJournal,
    attach,
    emit,
    events_table,
    get_bus,
    latest_stream_id,
    read_events,
    set_bus,
    stream_journal,
)
from qorgau.kernel.realtime import Hub, MemoryBus, RedisBus, make_bus


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    events.metadata.create_all(database.engine, tables=[events_table])
    yield database
    database.dispose()


class RecordingBus:
    """Records published ids and whether each was already committed (visible to another connection)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.ids: list[int] = []
        self.committed_when_published: list[bool] = []
        self.lock = threading.Lock()

    def publish(self, stream_id: int) -> None:
        with self.db.read() as conn:
            visible = latest_stream_id(conn) >= stream_id
        with self.lock:
            self.ids.append(stream_id)
            self.committed_when_published.append(visible)


@pytest.fixture
def bus(db: Database) -> Iterator[RecordingBus]:
    recording = RecordingBus(db)
    previous = set_bus(recording)
    yield recording
    set_bus(previous)


@pytest.fixture
def no_bus() -> Iterator[None]:
    previous = set_bus(None)
    yield
    set_bus(previous)


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one())


# -- emit, commit and rollback ---------------------------------------------------------------------


def test_emit_publishes_only_after_commit(db: Database, bus: RecordingBus) -> None:
    with db.transaction() as tx:
        sid = emit(tx, "messenger.message_sent", {"room_id": 7, "message_id": 42})
        assert sid > 0
        assert bus.ids == []  # not before commit
        with db.read() as other:
            assert latest_stream_id(other) == 0  # not visible to others yet
    assert bus.ids == [sid]
    assert bus.committed_when_published == [True]


def test_rollback_publishes_nothing_and_leaves_no_row(db: Database, bus: RecordingBus) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.transaction() as tx:
        emit(tx, "reports.created", {"report_id": 1})
        raise RuntimeError("boom")
    assert bus.ids == []
    assert _count(db) == 0
    with db.read() as conn:
        assert latest_stream_id(conn) == 0
        assert read_events(conn, 0) == []


def test_emit_without_bus_still_writes(db: Database, no_bus: None) -> None:
    assert get_bus() is None
    with db.transaction() as tx:
        sid = emit(tx, "t")
    with db.read() as conn:
        assert latest_stream_id(conn) == sid
        assert read_events(conn, 0)[0].payload == {}


def test_group_commit_writer_publishes_after_commit_once(db: Database, bus: RecordingBus) -> None:
    writer = GroupCommitWriter(db, window=0.02)
    writer.start()
    try:

        def job(i: int) -> Callable[[Tx], int]:
            def fn(tx: Tx) -> int:
                sid = emit(tx, "messenger.message_sent", {"n": i})
                if i % 10 == 3:
                    raise ValueError(f"job {i} fails after emitting")
                return sid

            return fn

        futures = [writer.submit(job(i)) for i in range(100)]
        ok: list[int] = []
        failed = 0
        for fut in futures:
            try:
                ok.append(fut.result(timeout=30))
            except ValueError:
                failed += 1
    finally:
        writer.stop()
    assert failed == 10
    assert len(ok) == 90
    # Every acknowledged id was published exactly once, after its commit; failed jobs published nothing
    # (including the attempt inside the batch that was rolled back).
    assert sorted(bus.ids) == sorted(ok)
    assert all(bus.committed_when_published)
    assert _count(db) == 90
    with db.read() as conn:
        stored = [e.stream_id for e in read_events(conn, 0, limit=1000)]
        payload_ns = sorted(e.payload["n"] for e in read_events(conn, 0, limit=1000))
    assert stored == sorted(ok)
    assert payload_ns == [i for i in range(100) if i % 10 != 3]


def test_stream_ids_strictly_increase(db: Database, no_bus: None) -> None:
    ids: list[int] = []
    for _ in range(20):
        with db.transaction() as tx:
            ids.append(emit(tx, "a"))
    with db.transaction() as tx:
        ids.extend(emit(tx, "b") for _ in range(20))
    with pytest.raises(RuntimeError), db.transaction() as tx:
        emit(tx, "c")
        raise RuntimeError
    with db.transaction() as tx:
        ids.append(emit(tx, "d"))
    assert all(b > a for a, b in itertools.pairwise(ids))
    # Pruning the newest rows never lets an id be handed out twice.
    with db.transaction() as tx:
        tx.execute(sa.delete(events_table).where(events_table.c.stream_id >= ids[-3]))
    with db.transaction() as tx:
        again = emit(tx, "e")
    assert again > ids[-1]


def test_concurrent_writers_commit_in_stream_order(db: Database, no_bus: None) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(25):
                with db.transaction() as tx:
                    emit(tx, "w")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as conn:
        ids = [e.stream_id for e in read_events(conn, 0, limit=1000)]
    assert len(ids) == 100
    assert ids == sorted(set(ids))


def test_read_events_resumes_after_id_with_topics_and_limit(db: Database, no_bus: None) -> None:
    sids: list[int] = []
    with db.transaction() as tx:
        for i in range(10):
            sids.append(emit(tx, "x" if i % 2 == 0 else "y", {"i": i, "text": "Қазақстан"}))
    with db.read() as conn:
        all_events = read_events(conn, 0)
        assert [e.stream_id for e in all_events] == sids
        first = all_events[0]
        assert isinstance(first, Event)
        assert first.topic == "x"
        assert first.payload == {"i": 0, "text": "Қазақстан"}
        assert abs(first.created_at - time.time() * 1000) < 60_000

        assert [e.stream_id for e in read_events(conn, sids[4])] == sids[5:]
        assert read_events(conn, sids[-1]) == []
        assert [e.stream_id for e in read_events(conn, 0, limit=3)] == sids[:3]
        assert [e.payload["i"] for e in read_events(conn, sids[2], topics={"y"})] == [3, 5, 7, 9]
        assert [e.payload["i"] for e in read_events(conn, 0, topics=["x"], limit=2)] == [0, 2]
        assert read_events(conn, 0, topics=[]) == []
        assert latest_stream_id(conn) == sids[-1]
        with pytest.raises(ValueError):
            read_events(conn, 0, limit=0)


def test_empty_stream_latest_is_zero(db: Database) -> None:
    with db.read() as conn:
        assert latest_stream_id(conn) == 0


@pytest.mark.parametrize("topic", ["", "x" * 65])
def test_emit_rejects_bad_topic(db: Database, no_bus: None, topic: str) -> None:
    with pytest.raises(ValueError), db.transaction() as tx:
        emit(tx, topic)
    assert _count(db) == 0


# -- Hub ----------------------------------------------------------------------------------------------


async def test_hub_wait_returns_at_once_when_behind() -> None:
    hub = Hub()
    hub.notify(5)
    started = time.monotonic()
    assert await hub.wait(3, 10) == 5
    assert await hub.wait(5, 0) == 5
    assert time.monotonic() - started < 0.1


async def test_hub_wait_times_out() -> None:
    hub = Hub()
    hub.notify(2)
    started = time.monotonic()
    assert await hub.wait(2, 0.2) == 2
    elapsed = time.monotonic() - started
    assert 0.18 <= elapsed < 1.0
    assert hub.waiting == 0


async def test_hub_wakes_on_notify_from_another_thread() -> None:
    hub = Hub()
    hub.start()
    timer = threading.Timer(0.1, hub.notify, args=(7,))
    started = time.monotonic()
    timer.start()
    try:
        assert await hub.wait(0, 5) == 7
    finally:
        timer.cancel()
    assert time.monotonic() - started < 1.0


async def test_hub_does_not_wake_waiters_ahead_of_the_id() -> None:
    hub = Hub()
    ahead = asyncio.create_task(hub.wait(10, 0.3))
    behind = asyncio.create_task(hub.wait(0, 5))
    await asyncio.sleep(0.01)
    await asyncio.to_thread(hub.notify, 4)
    assert await behind == 4
    assert not ahead.done()
    assert await ahead == 4  # timed out, reporting the latest it knows
    hub.notify(3)  # older ids never move `latest` back
    assert hub.latest == 4


async def test_thousand_waiters_all_wake() -> None:
    hub = Hub()
    hub.start()
    waiters = [asyncio.create_task(hub.wait(0, 10)) for _ in range(1000)]
    await asyncio.sleep(0.01)
    assert hub.waiting == 1000
    started = time.monotonic()
    threading.Thread(target=hub.notify, args=(1,)).start()
    results = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert results == [1] * 1000
    assert time.monotonic() - started < 2.0
    assert hub.waiting == 0


async def test_timed_out_waiters_are_dropped() -> None:
    hub = Hub()
    await asyncio.gather(*(hub.wait(0, 0.01) for _ in range(2000)))
    assert hub.waiting <= 300  # lazily compacted, never an unbounded heap
    assert len(hub._waiters) <= 600


async def test_hub_subscribe_yields_newer_ids() -> None:
    hub = Hub()
    hub.notify(1)
    got: list[int] = []

    async def consume() -> None:
        async for sid in hub.subscribe():
            got.append(sid)
            if sid >= 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    await asyncio.to_thread(hub.notify, 2)
    await asyncio.sleep(0.01)
    hub.notify(3)
    await asyncio.wait_for(task, 2)
    assert got == [2, 3]


# -- MemoryBus, RedisBus without Redis, make_bus ------------------------------------------------------


async def test_memory_bus_end_to_end_through_group_commit(db: Database) -> None:
    with db.transaction() as tx:
        existing = emit(tx, "before.start")
    hub = Hub()
    memory = MemoryBus()
    await memory.start(hub, db)
    assert hub.latest == existing  # caught up from the database at start
    previous = set_bus(memory)
    writer = GroupCommitWriter(db)
    try:
        waiter = asyncio.create_task(hub.wait(existing, 5))
        await asyncio.sleep(0.01)
        sid = await writer.arun(lambda tx: emit(tx, "messenger.message_sent", {"message_id": 1}))
        assert await waiter == sid
        with db.read() as conn:
            assert [e.stream_id for e in read_events(conn, existing)] == [sid]
        assert memory.lag() == 0
        assert memory.ping() is True
    finally:
        writer.stop()
        set_bus(previous)
        await memory.stop()


async def test_redis_bus_never_raises_when_redis_is_down(db: Database, no_bus: None) -> None:
    dead = RedisBus("redis://127.0.0.1:1/0", connect_timeout=0.2, reconcile_interval=0)
    hub = Hub()
    with db.transaction() as tx:
        sid = emit(tx, "x")
    started = time.monotonic()
    await dead.start(hub, db, ready_timeout=0.3)
    assert hub.latest == sid  # the database still feeds the hub
    assert dead.connected is False
    assert dead.ping() is False
    dead.publish(sid + 1)  # queues, notifies the local hub, never raises
    assert hub.latest == sid + 1
    assert dead.flush(timeout=0.3) is False
    await dead.stop(timeout=0.3)
    assert time.monotonic() - started < 5


def test_make_bus() -> None:
    assert isinstance(make_bus("memory"), MemoryBus)
    redis_bus = make_bus("redis://127.0.0.1:6379/0")
    assert isinstance(redis_bus, RedisBus)
    assert redis_bus.stream_key == "qorgau:events"
    with pytest.raises(ValueError):
        make_bus("kafka://nope")


# -- PostgreSQL: commit order equals stream-id order ------------------------------------------------


@pytest.fixture
def pg_db() -> Iterator[Database]:
    url = os.environ.get("QORGAU_TEST_DATABASE_URL", "").strip()
    if not url.startswith("postgresql"):
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("QORGAU_TEST_DATABASE_URL is not set (required when CI=true)")
        pytest.skip("QORGAU_TEST_DATABASE_URL is not set to a PostgreSQL URL")
    schema = f"test_events_{uuid.uuid4().hex[:12]}"
    admin = Database.unpooled(url)
    with admin.engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    database = Database(f"{url}{sep}options=-csearch_path%3D{schema}", pool_size=4)
    try:
        events.metadata.create_all(database.engine, tables=[events_table])
        yield database
    finally:
        database.dispose()
        with admin.engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_later_id_never_commits_first(pg_db: Database, no_bus: None) -> None:
    """A reader resuming "after N" must never skip an id that commits after N+1 became visible."""
    first_emitted = threading.Event()
    first_id: list[int] = []

    def slow_writer() -> None:
        with pg_db.transaction() as tx:
            first_id.append(emit(tx, "slow"))
            first_emitted.set()
            time.sleep(0.3)

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert first_emitted.wait(5)
    with pg_db.transaction() as tx:  # waits for the slow transaction to commit
        second = emit(tx, "fast")
    with pg_db.read() as conn:
        visible = [e.stream_id for e in read_events(conn, 0)]
    slow.join()
    assert second > first_id[0]
    assert visible == [first_id[0], second]  # the earlier id was committed before the later one


def test_the_journal_answers_only_ranges_committed_here(db: Database, no_bus: None) -> None:
    journal = stream_journal(db)
    with db.transaction() as tx:
        a = emit(tx, "messenger.one", {"room": "!r"})
        attach(tx, a, "kept in memory")
        b = emit(tx, "reports.two", {})
    with pytest.raises(RuntimeError), db.transaction() as tx:
        emit(tx, "messenger.rolled_back", {})
        raise RuntimeError("boom")
    records = journal.span(a - 1, b)
    assert records is not None
    assert [(r.stream_id, r.topic, r.payload, r.local) for r in records] == [
        (a, "messenger.one", {"room": "!r"}, "kept in memory"),
        (b, "reports.two", {}, None),
    ]
    other = Database(db.url)  # another process's handle on the same database
    try:
        with other.transaction() as tx:
            c = emit(tx, "messenger.elsewhere", {})
    finally:
        other.dispose()
    assert journal.span(a - 1, c) is None  # c was not committed here: read it from the database
    assert journal.span(c - 1, c) is None
    assert stream_journal(other).span(c - 1, c) is not None


def test_the_journal_forgets_the_oldest_ids_first() -> None:
    journal = StreamJournal(size=3)
    for stream_id in range(1, 6):
        journal.add(Emitted(stream_id, "messenger.x", {}))
    assert journal.span(0, 5) is None
    assert journal.span(1, 5) is None
    assert [r.stream_id for r in journal.span(2, 5) or []] == [3, 4, 5]
    assert journal.span(5, 5) == []
