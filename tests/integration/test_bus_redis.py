"""RedisBus across processes: ids published by one process wake the hubs of the others.

Needs Redis: set QORGAU_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0). Without it these tests are
skipped, except in CI (CI=true), where a missing Redis is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from qorgau.kernel.db import Database, metadata
from qorgau.kernel.events import emit, events_table, set_bus
from qorgau.kernel.realtime import Hub, RedisBus

pytestmark = pytest.mark.redis

REPO_SRC = Path(__file__).resolve().parents[2] / "src"


def require_redis_url() -> str:
    """The test Redis URL; skip without one, but fail in CI where Redis must be there."""
    url = os.environ.get("QORGAU_TEST_REDIS_URL", "").strip()
    if not url:
        message = "QORGAU_TEST_REDIS_URL is not set"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{message} (required when CI=true)")
        pytest.skip(message)
    return url


@pytest.fixture
def redis_url() -> str:
    return require_redis_url()


@pytest.fixture
def stream_key(redis_url: str) -> Iterator[str]:
    key = f"qorgau:test:events:{uuid.uuid4().hex}"
    yield key
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(key)
    finally:
        client.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "shared.db"
    setup = Database(f"sqlite:///{path}")
    metadata.create_all(setup.engine, tables=[events_table])
    setup.dispose()
    return path


@pytest.fixture
def no_global_bus() -> Iterator[None]:
    previous = set_bus(None)
    yield
    set_bus(previous)


@contextlib.asynccontextmanager
async def process(db_path: Path, url: str, key: str, **bus_kwargs: Any) -> AsyncIterator[tuple[RedisBus, Hub]]:
    """One simulated app process: its own Database, RedisBus and Hub, all on the shared file."""
    db = Database(f"sqlite:///{db_path}")
    bus = RedisBus(url, key, **bus_kwargs)
    hub = Hub()
    await bus.start(hub, db)
    assert bus.connected, "the reader did not reach Redis within start()"
    try:
        yield bus, hub
    finally:
        await bus.stop()
        db.dispose()


def emit_committed(db_path: Path, topic: str = "messenger.message_sent") -> int:
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.transaction() as tx:
            return emit(tx, topic, {"message_id": 1})
    finally:
        db.dispose()


async def test_emit_in_one_process_wakes_the_other(
    db_path: Path, redis_url: str, stream_key: str, no_global_bus: None
) -> None:
    async with (
        process(db_path, redis_url, stream_key) as (bus_a, hub_a),
        process(db_path, redis_url, stream_key, reconcile_interval=0) as (bus_b, hub_b),
    ):
        set_bus(bus_a)
        before = hub_b.latest
        waiter = asyncio.create_task(hub_b.wait(before, 5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        sid = await asyncio.to_thread(emit_committed, db_path)
        assert await waiter == sid
        assert time.monotonic() - started < 1.0
        assert hub_a.latest == sid
        assert bus_b.lag() == 0
        assert bus_a.ping() and bus_b.ping()

        # A burst: the other hub ends on the newest id.
        ids = [await asyncio.to_thread(emit_committed, db_path) for _ in range(20)]
        deadline = time.monotonic() + 2
        while hub_b.latest < ids[-1] and time.monotonic() < deadline:
            await hub_b.wait(hub_b.latest, deadline - time.monotonic())
        assert hub_b.latest == ids[-1]


CHILD = """
import asyncio, sys
from qorgau.kernel.db import Database
from qorgau.kernel.realtime import Hub, RedisBus

async def main():
    db = Database(sys.argv[1])
    hub = Hub()
    bus = RedisBus(sys.argv[2], sys.argv[3], reconcile_interval=0)
    await bus.start(hub, db)
    base = hub.latest
    print("READY", base, int(bus.connected), flush=True)
    got = await hub.wait(base, 15)
    print("GOT", got, flush=True)
    await bus.stop()
    db.dispose()

asyncio.run(main())
"""


async def test_second_os_process_receives_the_id(
    db_path: Path, redis_url: str, stream_key: str, no_global_bus: None
) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_SRC), os.environ.get("PYTHONPATH", "")]))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        f"sqlite:///{db_path}",
        redis_url,
        stream_key,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    publisher = RedisBus(redis_url, stream_key)
    try:
        assert child.stdout is not None
        ready = (await asyncio.wait_for(child.stdout.readline(), 20)).decode().split()
        assert ready[:1] == ["READY"] and ready[2] == "1", ready
        set_bus(publisher)
        sid = await asyncio.to_thread(emit_committed, db_path)
        assert publisher.flush(2.0)
        got = (await asyncio.wait_for(child.stdout.readline(), 5)).decode().split()
        assert got == ["GOT", str(sid)]
        assert await asyncio.wait_for(child.wait(), 10) == 0
    finally:
        set_bus(None)
        if child.returncode is None:
            child.kill()
            await child.wait()
        await publisher.stop()


async def test_missed_wake_up_is_recovered_from_the_database_on_restart(
    db_path: Path, redis_url: str, stream_key: str, no_global_bus: None
) -> None:
    async with process(db_path, redis_url, stream_key, reconcile_interval=0) as (bus_b, hub_b):
        before = hub_b.latest
        await bus_b.stop()
        # Nobody publishes this one: the wake-up is lost for good; only the database has it.
        sid = await asyncio.to_thread(emit_committed, db_path)
        assert await hub_b.wait(before, 0.2) == before
        db = Database(f"sqlite:///{db_path}")
        try:
            await bus_b.start(hub_b, db)
            assert bus_b.connected
            assert hub_b.latest == sid
            assert await hub_b.wait(before, 0) == sid
            assert bus_b.lag() == 0
        finally:
            await bus_b.stop()
            db.dispose()


async def test_reader_reconnect_rereads_the_database(
    db_path: Path, redis_url: str, stream_key: str, no_global_bus: None
) -> None:
    async with process(db_path, redis_url, stream_key, reconcile_interval=0) as (bus_b, hub_b):
        before = hub_b.latest
        sid = await asyncio.to_thread(emit_committed, db_path)  # committed, never published
        assert await hub_b.wait(before, 0.3) == before
        assert bus_b.lag() == 1

        # Drop the reader's Redis connection: the reader reconnects and re-reads the database.
        admin = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            ids = [c["id"] for c in admin.client_list() if c.get("name") == bus_b.reader_client_name]
            assert ids, "reader connection not found"
            for client_id in ids:
                admin.client_kill_filter(_id=client_id)
        finally:
            admin.close()
        assert await hub_b.wait(before, 3) == sid
        assert bus_b.read_failures >= 1
        assert bus_b.lag() == 0
        deadline = time.monotonic() + 3
        while not bus_b.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert bus_b.connected


async def test_periodic_reconcile_heals_a_lost_publish(
    db_path: Path, redis_url: str, stream_key: str, no_global_bus: None
) -> None:
    async with process(db_path, redis_url, stream_key, reconcile_interval=0.3, block_ms=100) as (_, hub_b):
        before = hub_b.latest
        sid = await asyncio.to_thread(emit_committed, db_path)  # committed, never published
        assert await hub_b.wait(before, 3) == sid
