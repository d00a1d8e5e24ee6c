"""Fan-out of committed stream ids: a per-process hub and the buses that feed it.

Buses carry stream ids only; the database stays the truth. A subscriber (WebSocket session, Matrix
``/sync`` long-poll, notification sender) remembers the last stream id it handled, waits on the
:class:`Hub` until a newer one is known, then reads the events themselves from the database with
:func:`qorgau.kernel.events.read_events`. A lost wake-up therefore only delays a subscriber; it
never loses an event.

- :class:`MemoryBus`: one process; ``publish`` notifies the hub directly.
- :class:`RedisBus`: several processes or machines; ``publish`` appends the id to a Redis stream and
  every process's reader task notifies its own hub. Whenever the reader (re)connects it also re-reads
  the newest stream id from the database, and it does so every ``reconcile_interval`` seconds, so a
  Redis outage or a dropped publish is healed from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis.asyncio as aredis

from qorgau.kernel.db import Database
from qorgau.kernel.events import latest_stream_id

__all__ = ["Bus", "Hub", "MemoryBus", "RedisBus", "make_bus"]

log = logging.getLogger(__name__)

DEFAULT_STREAM_KEY = "qorgau:events"


class Hub:
    """The newest stream id this process knows of, and the coroutines waiting for a newer one.

    `notify` may be called from any thread; waiters live on the event loop the hub is bound to
    (the first loop that calls :meth:`start` or :meth:`wait`). Waiting costs one future and one
    timer per waiter, and one wake-up wakes every waiter that is behind in a single loop callback,
    so thousands of waiters are cheap.
    """

    def __init__(self) -> None:
        self._latest = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake_scheduled = False
        # Min-heap of (after, seq, future): a wake-up pops exactly the waiters that are behind.
        self._waiters: list[tuple[int, int, asyncio.Future[int]]] = []
        self._seq = itertools.count()
        self._abandoned = 0

    @property
    def latest(self) -> int:
        """The newest stream id notified so far (0 before any)."""
        return self._latest

    @property
    def waiting(self) -> int:
        """How many coroutines are waiting now (counts them: for metrics, not hot paths)."""
        return sum(1 for w in self._waiters if not w[2].done())

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind the hub to `loop` (default: the running loop); waiters must run on that loop."""
        self._bind(loop or asyncio.get_running_loop())

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        if self._loop is loop:
            return loop
        with self._lock:
            old = self._loop
            if old is not None and old is not loop and not old.is_closed() and old.is_running():
                raise RuntimeError("this Hub is bound to another running event loop")
            self._loop = loop
            self._loop_thread = threading.get_ident()
            # Waiters and a pending wake-up of a finished loop are dead; start afresh on this one.
            self._waiters = []
            self._abandoned = 0
            self._wake_scheduled = False
        return loop

    def notify(self, stream_id: int) -> None:
        """Record that `stream_id` is committed and wake the waiters behind it. Thread-safe."""
        with self._lock:
            if stream_id <= self._latest:
                return
            self._latest = stream_id
            loop = self._loop
            if loop is None or self._wake_scheduled:
                return
            self._wake_scheduled = True
            same_thread = self._loop_thread == threading.get_ident()
        try:
            if same_thread:
                loop.call_soon(self._wake)
            else:
                loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: nobody is waiting on it any more
            with self._lock:
                self._wake_scheduled = False

    def _wake(self) -> None:
        with self._lock:
            self._wake_scheduled = False
            latest = self._latest
        heap = self._waiters
        while heap and heap[0][0] < latest:
            fut = heapq.heappop(heap)[2]
            if fut.done():  # timed out or cancelled earlier
                self._abandoned = max(0, self._abandoned - 1)
            else:
                fut.set_result(latest)

    async def wait(self, after: int, timeout: float | None) -> int:
        """Wait until a stream id greater than `after` is known, at most `timeout` seconds.

        Returns the newest stream id known when it wakes: greater than `after` unless the timeout
        ended first. Returns immediately when a newer id is already known or `timeout` <= 0;
        `timeout=None` waits without limit.
        """
        loop = self._bind(asyncio.get_running_loop())
        latest = self._latest
        if latest > after or (timeout is not None and timeout <= 0):
            return latest
        fut: asyncio.Future[int] = loop.create_future()
        heapq.heappush(self._waiters, (after, next(self._seq), fut))
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            return self._latest
        finally:
            if not fut.done():
                fut.cancel()
            if fut.cancelled():
                self._abandoned += 1
                self._compact()

    def _compact(self) -> None:
        if self._abandoned > 256 and self._abandoned * 2 > len(self._waiters):
            self._waiters = [w for w in self._waiters if not w[2].done()]
            heapq.heapify(self._waiters)
            self._abandoned = 0

    async def subscribe(self, after: int | None = None, *, poll: float = 30.0) -> AsyncIterator[int]:
        """Yield each newer stream id as it becomes known, starting after `after` (default: now).

        Ids are coalesced: a burst yields only its newest id, so the consumer reads the events
        after its own cursor from the database rather than counting on one id per event.
        """
        cursor = self._latest if after is None else after
        while True:
            latest = await self.wait(cursor, poll)
            if latest > cursor:
                cursor = latest
                yield latest


class Bus(Protocol):
    """What the app needs from a bus: publish ids, feed a hub, report health."""

    hub: Hub | None

    def publish(self, stream_id: int) -> None:
        """Announce a committed stream id; never raises."""
        ...

    async def start(self, hub: Hub, db: Database | None = None) -> None:
        """Start feeding `hub`; `db` is read to catch up on ids the bus may have missed."""
        ...

    async def stop(self) -> None:
        """Stop feeding the hub and release connections."""
        ...

    def ping(self) -> bool:
        """Whether the bus's transport is reachable."""
        ...

    def lag(self) -> int:
        """How many stream ids the database is ahead of the hub (0 when caught up)."""
        ...


def _db_latest(db: Database) -> int:
    with db.read() as conn:
        return latest_stream_id(conn)


def _lag(db: Database | None, hub: Hub | None) -> int:
    if db is None:
        return 0
    return max(0, _db_latest(db) - (hub.latest if hub is not None else 0))


class MemoryBus:
    """The single-process bus: `publish` notifies the hub directly."""

    def __init__(self, hub: Hub | None = None) -> None:
        self.hub = hub
        self.db: Database | None = None

    def publish(self, stream_id: int) -> None:
        """Notify the hub of `stream_id` (a no-op before :meth:`start`)."""
        hub = self.hub
        if hub is not None:
            hub.notify(stream_id)

    async def start(self, hub: Hub, db: Database | None = None) -> None:
        """Bind `hub` to the running loop and, with `db`, tell it the newest committed id."""
        self.hub, self.db = hub, db
        hub.start()
        if db is not None:
            hub.notify(await asyncio.to_thread(_db_latest, db))

    async def stop(self) -> None:
        """Nothing to release."""

    def ping(self) -> bool:
        """Always reachable."""
        return True

    def lag(self) -> int:
        """Stream ids the database holds beyond the hub's latest (reads the database)."""
        return _lag(self.db, self.hub)


class RedisBus:
    """A bus over a Redis stream, for several app processes sharing one database.

    ``publish`` only records the id and returns: a publisher thread appends the newest pending id
    with ``XADD <stream_key> MAXLEN ~ <maxlen> * id <stream_id>`` using a synchronous client, so the
    group-commit writer never waits on Redis, a batch of ids costs one ``XADD``, and a Redis outage
    costs retries with backoff, never an exception in the caller. The local hub is notified at once.

    ``start`` runs a reader task (``redis.asyncio``) that blocks on ``XREAD`` and notifies the hub.
    Whenever it (re)connects it pins its position in the stream and then re-reads the newest stream
    id from the database, so nothing committed before or during an outage is missed; it also re-reads
    the database every `reconcile_interval` seconds to heal a publish that never reached Redis.
    """

    def __init__(
        self,
        url: str,
        stream_key: str = DEFAULT_STREAM_KEY,
        *,
        maxlen: int = 100_000,
        block_ms: int = 1000,
        reconcile_interval: float = 5.0,
        connect_timeout: float = 2.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.url = url
        self.stream_key = stream_key
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.reconcile_interval = reconcile_interval
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.hub: Hub | None = None
        self.db: Database | None = None
        self.reader_client_name = f"qorgau-bus-{id(self):x}"
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self._sync = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            socket_timeout=connect_timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
        )
        # Publisher thread state, guarded by _cond.
        self._cond = threading.Condition()
        self._pending = 0
        self._published = 0
        self._closing = False
        self._pub_thread: threading.Thread | None = None
        # Reader task state (event loop only).
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._stopping = False
        self.connected = False
        self.publish_failures = 0
        self.read_failures = 0

    # -- publishing (any thread) ---------------------------------------------------------------

    def publish(self, stream_id: int) -> None:
        """Queue `stream_id` for Redis and notify the local hub; never raises."""
        try:
            hub = self.hub
            if hub is not None:
                hub.notify(stream_id)
            with self._cond:
                if stream_id > self._pending:
                    self._pending = stream_id
                if self._pub_thread is None or not self._pub_thread.is_alive():
                    self._closing = False
                    self._pub_thread = threading.Thread(target=self._publisher, name="qorgau-bus-publish", daemon=True)
                    self._pub_thread.start()
                self._cond.notify_all()
        except Exception:
            log.exception("could not queue stream id %s for the bus", stream_id)

    def _publisher(self) -> None:
        backoff = 0.05
        failing = False
        while True:
            with self._cond:
                while self._pending <= self._published and not self._closing:
                    self._cond.wait()
                if self._pending <= self._published:
                    return
                target = self._pending
            try:
                self._sync.xadd(self.stream_key, {"id": str(target)}, maxlen=self.maxlen, approximate=True)
            except Exception as exc:
                self.publish_failures += 1
                if not failing:
                    log.warning("bus publish to Redis failed, retrying with backoff: %s", exc)
                failing = True
                retry_at = time.monotonic() + backoff * (0.5 + random.random())
                with self._cond:  # new publishes only raise `_pending`; they do not cut the backoff
                    while not self._closing and (remaining := retry_at - time.monotonic()) > 0:
                        self._cond.wait(remaining)
                    if self._closing:  # shutting down: the database still has the events
                        return
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if failing:
                log.info("bus publish to Redis recovered")
            failing, backoff = False, 0.05
            with self._cond:
                self._published = max(self._published, target)
                self._cond.notify_all()

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every id published so far has reached Redis; False if `timeout` ran out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._pending
            while self._published < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._pub_thread is None or not self._pub_thread.is_alive():
                    return self._published >= target
                self._cond.wait(remaining)
        return True

    def _stop_publisher(self, timeout: float) -> None:
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._pub_thread
        if thread is not None:
            thread.join(timeout=timeout)

    # -- reading (event loop) ------------------------------------------------------------------

    async def start(self, hub: Hub, db: Database | None = None, *, ready_timeout: float = 2.0) -> None:
        """Start the reader task feeding `hub` (bound to the running loop).

        Reads the newest id from `db` first, then waits up to `ready_timeout` seconds for the reader
        to reach Redis; if Redis is down the app still starts and the reader keeps retrying.
        """
        if self._task is not None and not self._task.done():
            return
        self.hub, self.db = hub, db
        hub.start()
        if db is not None:
            hub.notify(await asyncio.to_thread(_db_latest, db))
        self._ready = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._reader(hub, db), name="qorgau-bus-reader")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ready_timeout):
                await self._ready.wait()

    async def stop(self, timeout: float = 2.0) -> None:
        """Cancel the reader task, flush pending publishes (up to `timeout`), close connections."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            # Python 3.11's asyncio.wait_for (used inside redis-py) can swallow a cancellation that
            # races with a completed write, so cancel until the task is really done; the reader also
            # checks `_stopping` between reads (each XREAD blocks at most `block_ms`).
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.2)
            if not task.cancelled() and task.exception() is not None:
                log.warning("bus reader ended with an error: %s", task.exception())
        self.connected = False
        await asyncio.to_thread(self._stop_publisher, timeout)
        self._sync.connection_pool.disconnect()

    def _reader_client(self) -> aredis.Redis:
        import redis.asyncio as aredis
        from redis.asyncio.retry import Retry as AsyncRetry
        from redis.backoff import NoBackoff

        return aredis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.block_ms / 1000 + 5,
            # Errors must surface: each reconnect re-reads the database (a silent retry would not).
            retry=AsyncRetry(NoBackoff(), 0),
            client_name=self.reader_client_name,
        )

    async def _resync(self, hub: Hub, db: Database | None) -> None:
        if db is not None:
            hub.notify(await asyncio.to_thread(_db_latest, db))

    async def _reader(self, hub: Hub, db: Database | None) -> None:
        backoff = 0.1
        client: aredis.Redis | None = None
        last_id: str | None = None  # None: (re)connect, pin the stream position, re-read the database
        next_reconcile = time.monotonic() + self.reconcile_interval
        try:
            while not self._stopping:
                try:
                    if client is None:
                        client = self._reader_client()
                    if last_id is None:
                        # Pin first, then read the database: whatever commits after the read is
                        # XADDed after the pin, so it is either in the database read or in XREAD.
                        newest = await client.xrevrange(self.stream_key, count=1)
                        position = newest[0][0] if newest else "0-0"
                        await self._resync(hub, db)
                        last_id = position
                        next_reconcile = time.monotonic() + self.reconcile_interval
                        if self.read_failures:
                            log.info("bus reader reconnected to Redis")
                        self.connected = True
                        backoff = 0.1
                        if self._ready is not None:
                            self._ready.set()
                    response = await client.xread({self.stream_key: last_id}, count=1000, block=self.block_ms)
                    top = 0
                    for entry_id, fields in _entries(response):
                        last_id = entry_id
                        with contextlib.suppress(TypeError, ValueError):
                            top = max(top, int(fields.get("id", 0)))
                    if top:
                        hub.notify(top)
                    if self.reconcile_interval > 0 and time.monotonic() >= next_reconcile:
                        next_reconcile = time.monotonic() + self.reconcile_interval
                        await self._resync(hub, db)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.read_failures += 1
                    self.connected = False
                    log.warning("bus reader error, retrying in %.1fs: %s", backoff, exc)
                    last_id = None
                    if client is not None:
                        with contextlib.suppress(Exception):
                            await client.aclose()
                        client = None
                    await asyncio.sleep(backoff * (0.5 + random.random()))
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            self.connected = False
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    # -- health --------------------------------------------------------------------------------

    def ping(self) -> bool:
        """Redis ``PING`` through the publishing client; False on any error."""
        try:
            return bool(self._sync.ping())
        except Exception:
            return False

    def lag(self) -> int:
        """Stream ids the database holds beyond the hub's latest (reads the database)."""
        return _lag(self.db, self.hub)


def _entries(response: Any) -> list[tuple[str, dict[str, Any]]]:
    """Flatten an XREAD reply, RESP2 (list of [key, entries]) or RESP3 (dict key -> entries)."""
    if not response:
        return []
    streams = response.values() if isinstance(response, dict) else (item[1] for item in response)
    out: list[tuple[str, dict[str, Any]]] = []
    for entries in streams:
        # RESP3 nests the entries one level deeper: [[(id, fields), ...]].
        if entries and isinstance(entries[0], list) and entries[0] and not isinstance(entries[0][0], str):
            entries = entries[0]
        out.extend((entry_id, fields or {}) for entry_id, fields in entries)
    return out


def make_bus(spec: str) -> MemoryBus | RedisBus:
    """The bus named by a setting: ``"memory"`` or a Redis URL (``redis://``, ``rediss://``, ``unix://``)."""
    spec = spec.strip()
    if spec == "memory":
        return MemoryBus()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(spec)
    raise ValueError(f"unknown bus {spec!r}: expected 'memory' or a redis:// URL")
