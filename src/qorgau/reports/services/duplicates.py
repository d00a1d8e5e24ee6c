"""Possible duplicates: reports of the same unit and category, from the same place, close in time.

The place of a report is encrypted; what the database holds is its keyed place key (see
:mod:`qorgau.reports.places`). An officer who may open a report also opens its place, computes the keys
of its cell and of the eight cells around it, and asks the database for open reports carrying one of
them within the window (``reports_duplicate_window_hours``). Merging is the regulation's own step
(merged_duplicate): the duplicate joins the report the officer is looking at.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.errors import Problem
from qorgau.reports import catalog, places, protection
from qorgau.reports import tables as t
from qorgau.reports.domain import FINAL, OPEN_FOR_REVIEW, Action, Status
from qorgau.reports.services.common import load_report, staff_of_report

HOUR_MS = 60 * 60 * 1000
_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Suggestion:
    """A report that may be the same incident as the one being looked at."""

    id: str
    ref: str
    category: catalog.Category | None
    status: Status
    submitted_at: int
    named: bool
    # Whether the regulation still allows merging it (it is not yet decided).
    mergeable: bool


@dataclass(frozen=True)
class MergedItem:
    id: str
    ref: str
    submitted_at: int
    merged_at: int


def window_ms(kernel: Kernel) -> int:
    return kernel.settings.reports_duplicate_window_hours * HOUR_MS


class _NearbyCache:
    """Report id → the place keys around it; places never change, so each report is opened once here."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, report_id: str) -> frozenset[str] | None:
        with self._lock:
            found = self._items.get(report_id)
            if found is not None:
                self._items.move_to_end(report_id)
            return found

    def put(self, report_id: str, keys: frozenset[str]) -> None:
        with self._lock:
            self._items[report_id] = keys
            self._items.move_to_end(report_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _cache(kernel: Kernel) -> _NearbyCache:
    cache = kernel.extras.get("reports.nearby")
    if cache is None:
        cache = kernel.extras.setdefault("reports.nearby", _NearbyCache())
    return cache


def nearby(kernel: Kernel, report_id: str, region_code: str, content: dict[str, Any]) -> frozenset[str]:
    cache = _cache(kernel)
    keys = cache.get(report_id)
    if keys is None:
        keys = frozenset(places.nearby_keys(kernel.hasher, region_code, content))
        cache.put(report_id, keys)
    return keys


def _open_candidates(unit_id: str) -> Any:
    r = t.reports
    return sa.select(r.c.id, r.c.ref, r.c.category, r.c.status, r.c.submitted_at, r.c.named, r.c.place_key).where(
        r.c.unit_id == unit_id,
        r.c.status.not_in([s.value for s in FINAL]),
        r.c.place_key.is_not(None),
        r.c.purged_at.is_(None),
    )


def suggestions(kernel: Kernel, conn: Any, row: Any, content: dict[str, Any]) -> list[Suggestion]:
    """Open reports of the same unit and category near `row`'s place within the window, oldest first."""
    if row.place_key is None or row.purged_at is not None or Status(row.status) in FINAL:
        return []
    keys = nearby(kernel, row.id, row.region_code, content)
    if not keys:
        return []
    r = t.reports
    window = window_ms(kernel)
    found = conn.execute(
        _open_candidates(row.unit_id)
        .where(
            r.c.id != row.id,
            r.c.category == row.category,
            r.c.place_key.in_(sorted(keys)),
            r.c.submitted_at.between(row.submitted_at - window, row.submitted_at + window),
        )
        .order_by(r.c.submitted_at, r.c.id)
        .limit(50)
    ).all()
    return [
        Suggestion(
            id=x.id,
            ref=x.ref,
            category=catalog.category(x.category),
            status=Status(x.status),
            submitted_at=x.submitted_at,
            named=bool(x.named),
            mergeable=Status(x.status) in OPEN_FOR_REVIEW,
        )
        for x in found
    ]


def merged_into(conn: Any, report_id: str) -> list[MergedItem]:
    """The reports merged into this one, with when they were merged."""
    r = t.reports
    rows = conn.execute(
        sa.select(r.c.id, r.c.ref, r.c.submitted_at, r.c.status_at)
        .where(r.c.duplicate_of == report_id, r.c.status == Status.MERGED_DUPLICATE.value)
        .order_by(r.c.submitted_at, r.c.id)
    ).all()
    return [MergedItem(x.id, x.ref, x.submitted_at, x.status_at) for x in rows]


def queue_counts(kernel: Kernel, conn: Any, unit_id: str, rows: Iterable[Any]) -> dict[str, int]:
    """For each open report of `rows` (full report rows of the unit), how many possible duplicates it has.

    Opens the place of each report not yet in the cache with the unit's key (the queue is the unit's).
    """
    rows = [x for x in rows if x.place_key is not None and x.purged_at is None and Status(x.status) not in FINAL]
    if not rows:
        return {}
    pool: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for x in conn.execute(_open_candidates(unit_id)):
        pool[(x.category, x.place_key)].append((x.id, x.submitted_at))
    window = window_ms(kernel)
    private: bytes | None = None
    counts: dict[str, int] = {}
    for x in rows:
        keys = _cache(kernel).get(x.id)
        if keys is None:
            if private is None:
                wrapped = conn.execute(
                    sa.select(t.report_unit_keys.c.private_key_enc).where(t.report_unit_keys.c.agency_id == unit_id)
                ).scalar_one()
                private = protection.unwrap_unit_key(kernel.keyring, unit_id, wrapped)
            data_key = protection.open_report_key(private, x.id, x.data_key_sealed)
            content = protection.decrypt_json(
                data_key, x.content_enc, table="reports", column="content_enc", row_id=x.id
            )
            keys = nearby(kernel, x.id, x.region_code, content)
        n = sum(
            1
            for key in keys
            for other_id, at in pool.get((x.category, key), ())
            if other_id != x.id and abs(at - x.submitted_at) <= window
        )
        if n:
            counts[x.id] = n
    return counts


def do_merge_duplicate(ctx: Ctx, primary_id: str, duplicate_id: str, note: str) -> Status:
    """Merge report `duplicate_id` into `primary_id` (both of the actor's unit) by the regulation's step."""
    from qorgau.reports.services.police import do_transition_report

    kernel = ctx.kernel
    with kernel.db.read() as conn:
        primary = load_report(conn, primary_id)
    staff_of_report(ctx, primary, "reports.act")
    if not duplicate_id or duplicate_id == primary_id:
        raise Problem("reports.unknown_duplicate", field="duplicate")
    with kernel.db.read() as conn:
        duplicate = conn.execute(sa.select(t.reports).where(t.reports.c.id == duplicate_id)).first()
    if duplicate is None or duplicate.unit_id != primary.unit_id:
        raise Problem("reports.unknown_duplicate", field="duplicate")
    if Status(primary.status) in (Status.MERGED_DUPLICATE, Status.WITHDRAWN):
        raise Problem("reports.illegal_transition")
    return do_transition_report(
        ctx, duplicate_id, Action.MERGE_DUPLICATE.value, "same_incident", note, duplicate_ref=primary.ref
    )
