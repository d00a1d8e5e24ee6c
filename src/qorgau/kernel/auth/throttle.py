"""Per-client sign-in throttling kept in process memory, keyed by a keyed hash of the client address.

Client addresses never reach the database; the per-account lockout lives on the account row.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Slot:
    failures: int = 0
    locked_until: float = 0.0
    touched: float = 0.0


class ClientThrottle:
    """Locks a client out after `max_failures`, doubling the lockout on every further failure."""

    def __init__(self, max_failures: int, base_seconds: int, max_seconds: int, capacity: int = 100_000) -> None:
        self.max_failures = max_failures
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.capacity = capacity
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: float | None = None) -> int:
        """Seconds until `key` may try again (0: it may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or slot.locked_until <= now:
                return 0
            return max(1, int(slot.locked_until - now + 0.999))

    def failure(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._slots) >= self.capacity:
                self._evict(now)
            slot = self._slots.setdefault(key, _Slot())
            slot.failures += 1
            slot.touched = now
            over = slot.failures - self.max_failures
            if over >= 0:
                slot.locked_until = now + lockout_seconds(over, self.base_seconds, self.max_seconds)

    def success(self, key: str) -> None:
        with self._lock:
            self._slots.pop(key, None)

    def _evict(self, now: float) -> None:
        stale = sorted(self._slots.items(), key=lambda kv: kv[1].touched)[: self.capacity // 10 or 1]
        for key, _slot in stale:
            self._slots.pop(key, None)


def lockout_seconds(over: int, base: int, cap: int) -> int:
    """Back-off: base, 2·base, 4·base … capped."""
    return int(min(cap, base * (2 ** min(over, 20))))
