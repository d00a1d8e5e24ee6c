"""Open311's list keeps to the cells the statistics publish: the narrow computation equals the page's."""

from __future__ import annotations

import random
from typing import Any

import pytest

from qorgau.kernel import kz
from qorgau.reports import catalog, open311, statistics
from qorgau.reports import tables as t


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_published_cells_are_exactly_the_shown_region_cells(kernel: Any, seed: int) -> None:
    rng = random.Random(seed)
    regions = [r.code for r in kz.regions()] + ["retired_region"]
    categories = [c.code for c in catalog.categories()]
    rows = [
        {"region_code": r, "category": c, "month": m, "count": rng.choice([1, 2, 5, 9, 10, 14, 60, 300])}
        for r in regions
        for c in categories
        for m in ("2026-09", "2026-10", "2026-11")
        if rng.random() < 0.4
    ]
    kernel.db.run(lambda tx: tx.execute(t.report_stats.insert(), rows))
    now = 1_796_000_000_000  # December 2026
    table = statistics.public_statistics(kernel, "en", now_ms=now).by_region
    shown = {
        (line.code, table.columns[j][0])
        for line in table.rows
        for j, cell in enumerate(line.cells)
        if cell.count is not None
    }
    assert statistics.published_region_cells(kernel, now_ms=now) == shown
    assert open311.published_cells(kernel) == shown
    # Small counts are never among them.
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["region_code"], row["category"])
        counts[key] = counts.get(key, 0) + row["count"]
    assert all(counts.get(cell, 0) == 0 or counts[cell] >= 10 for cell in shown)
