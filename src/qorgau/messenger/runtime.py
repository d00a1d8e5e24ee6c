"""Process-wide state of the messenger: small caches that keep hot paths off the database.

Nothing here is a source of truth. Each cache holds values that never change for their key (an event's
decrypted content for a given redaction state, the power levels of a given state event) or that are
allowed to be stale for a few seconds (a signed-in device), so several processes never disagree.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from qorgau.kernel.context import Kernel
    from qorgau.messenger.sync import SyncEngine

K = TypeVar("K")
V = TypeVar("V")

CONTENT_CACHE_SIZE = 16_384
# A signed-in device is re-read from the database at least this often, so a sign-out (or a disabled
# account, or a role change) made through another process takes effect within this time.
SESSION_CACHE_SECONDS = 5.0


# How often (seconds) a thread holding the GIL is asked to hand it over. Python's 5 ms default makes the
# group-commit writer (and /sync reads in threads) wait for the busy event loop for up to 5 ms per
# hand-over; 1 ms keeps a lone send's round trip short at a negligible cost in throughput.
GIL_SWITCH_INTERVAL = 0.001
# glibc malloc arenas: by default up to 8 per core, one per thread that allocates (writer, thread pool).
# Each keeps its own freed memory, so a loaded server's RSS grew by up to ~100 MiB
# (bench/matrix_sync.py); two arenas suffice.
MALLOC_ARENA_MAX = 2
_M_ARENA_MAX = -8  # mallopt parameter number (malloc.h)
# Blocks this large or larger come straight from the kernel and go back to it when freed. glibc's own
# threshold grows after the first large free (up to 32 MiB), after which each argon2id hash's 19 MiB
# work area (every sign-in) stayed resident: +19 MiB after one sign-in, +95 MiB after twenty from
# four threads. A fixed threshold also turns the adaptive growth off.
MMAP_THRESHOLD = 1024 * 1024
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_process() -> None:
    """Process-wide knobs for a messenger server (once, before the server's threads start)."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt(_M_ARENA_MAX, MALLOC_ARENA_MAX)  # not glibc (musl): no mallopt, nothing to tune
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        except (OSError, AttributeError):
            pass


class LRU(Generic[K, V]):
    """A thread-safe least-recently-used map of bounded size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class TTLCache(Generic[K, V]):
    """A thread-safe map whose entries expire `ttl` seconds after they were stored."""

    def __init__(self, ttl: float, size: int = 100_000) -> None:
        self.ttl = ttl
        self.size = size
        self._data: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        found = self._data.get(key)
        if found is None:
            return None
        expires, value = found
        if expires < time.monotonic():
            with self._lock:
                self._data.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._data) >= self.size:
                now = time.monotonic()
                self._data = {k: v for k, v in self._data.items() if v[0] >= now}
                if len(self._data) >= self.size:
                    self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)

    def discard_where(self, predicate: Callable[[V], bool]) -> None:
        with self._lock:
            self._data = {k: v for k, v in self._data.items() if not predicate(v[1])}


class Runtime:
    """The messenger's per-process caches and its /sync engine (started on the first /sync)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        # (event_id, redacted) -> decrypted content: redaction changes the key, never the value.
        self.contents: LRU[tuple[str, bool], dict[str, Any]] = LRU(CONTENT_CACHE_SIZE)
        # event id of an m.room.power_levels event -> its parsed levels (redaction keeps every level).
        self.power_levels: LRU[str, Any] = LRU(4096)
        # event id of a room's current m.room.history_visibility -> every setting the room had until
        # it: a new setting is a new event, so a cached list never goes stale.
        self.history_visibility: LRU[str, Any] = LRU(4096)
        self.sessions: TTLCache[str, Any] = TTLCache(SESSION_CACHE_SECONDS)
        self.filters: LRU[tuple[str, str], Any] = LRU(4096)
        self.sync: SyncEngine | None = None
        self._lock = threading.Lock()

    def sync_engine(self, hub: Any) -> SyncEngine:
        """This process's sync engine, fed by `hub` (created on first use, on the running loop)."""
        engine = self.sync
        if engine is None or engine.hub is not hub:
            from qorgau.messenger.sync import SyncEngine

            with self._lock:
                if self.sync is None or self.sync.hub is not hub:
                    if self.sync is not None:
                        self.sync.close()
                    self.sync = SyncEngine(self.kernel, hub)
                engine = self.sync
        return engine


def runtime(kernel: Kernel) -> Runtime:
    """The messenger runtime of this kernel (one per process)."""
    found = kernel.extras.get("messenger")
    if found is None:
        found = kernel.extras.setdefault("messenger", Runtime(kernel))
    return found  # type: ignore[no-any-return]
