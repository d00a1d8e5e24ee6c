"""Public statistics of citizen reports: how many by region, category and month, small counts hidden.

Counts come from ``report_stats``, an aggregate kept in the same transaction as each submission, so the
page reads a few thousand rows at most whatever the number of reports. Nothing a reporter wrote is ever
here. Every published table goes through :func:`qorgau.reports.domain.protect_counts`: counts from 1 to
9 are shown as "<10", and further counts are hidden so that none of those can be worked out from the
totals. The tables published are linked only through the grand total (by category is the region table
turned round; the month table shares only its total), and a total hidden in one is hidden in both.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel import UnknownLocaleError
from babel.dates import format_date
from sqlalchemy.dialects import postgresql, sqlite

from qorgau.kernel import kz
from qorgau.kernel.context import Kernel
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.i18n import DISPLAY_TIME_ZONE
from qorgau.reports import catalog
from qorgau.reports import tables as t
from qorgau.reports.domain import SMALL_COUNT, Hidden, Protected, protect_counts

BY = ("region", "category", "month")
_ZONE = ZoneInfo(DISPLAY_TIME_ZONE)


def month_of(ms: int) -> str:
    """The month (``"2026-12"``) of a moment, in Kazakhstan's time."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(_ZONE).strftime("%Y-%m")


def month_name(month: str, lang: str) -> str:
    """``"2026-12"`` as "December 2026" / "декабрь 2026 г." / "2026 ж. желтоқсан"."""
    year, number = map(int, month.split("-"))
    try:
        return format_date(date(year, number, 1), "LLLL y", locale=lang)
    except (ValueError, UnknownLocaleError):
        return month


def count_submission(tx: Tx, region_code: str, category: str, at_ms: int) -> None:
    """Add one report to the aggregate, inside the submission's own transaction."""
    values = {"region_code": region_code, "category": category, "month": month_of(at_ms), "count": 1}
    keys = ["region_code", "category", "month"]
    table = t.report_stats
    if tx.dialect == "postgresql":
        pg = postgresql.insert(table).values(**values)
        tx.execute(pg.on_conflict_do_update(index_elements=keys, set_={"count": table.c.count + 1}))
    elif tx.dialect == "sqlite":
        lite = sqlite.insert(table).values(**values)
        tx.execute(lite.on_conflict_do_update(index_elements=keys, set_={"count": table.c.count + 1}))
    else:  # pragma: no cover - the platform runs on SQLite and PostgreSQL only
        raise NotImplementedError(tx.dialect)


@dataclass(frozen=True)
class Cell:
    """One published number: ``count`` is None when hidden, ``hidden`` says why."""

    count: int | None
    hidden: Hidden | None = None

    @property
    def display(self) -> str:
        if self.hidden == Hidden.SMALL:
            return f"<{SMALL_COUNT}"
        if self.hidden is not None:
            return "—"
        return str(self.count)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"count": self.count, "display": self.display}
        if self.hidden is not None:
            out["hidden"] = self.hidden.value
        return out


@dataclass(frozen=True)
class Line:
    code: str
    name: str
    cells: list[Cell]
    total: Cell


@dataclass(frozen=True)
class StatTable:
    by: str
    columns: list[tuple[str, str]]  # (code, name)
    rows: list[Line]
    column_totals: list[Cell]
    total: Cell

    def as_json(self) -> dict[str, object]:
        return {
            "by": self.by,
            "threshold": SMALL_COUNT,
            "columns": [{"code": c, "name": n} for c, n in self.columns],
            "rows": [
                {
                    "code": r.code,
                    "name": r.name,
                    "cells": [c.as_json() for c in r.cells],
                    "total": r.total.as_json(),
                }
                for r in self.rows
            ],
            "column_totals": [c.as_json() for c in self.column_totals],
            "total": self.total.as_json(),
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow([self.by, "name", *(c for c, _ in self.columns), "total"])
        for r in self.rows:
            w.writerow([r.code, r.name, *(c.display for c in r.cells), r.total.display])
        w.writerow(["total", "", *(c.display for c in self.column_totals), self.total.display])
        return out.getvalue()


def _cells(p: Protected, i: int, j: int, value: int | None) -> Cell:
    return Cell(value, p.hidden.get((i, j)))


def _table(
    by: str,
    row_keys: list[tuple[str, str]],
    col_keys: list[tuple[str, str]],
    p: Protected,
) -> StatTable:
    n, m = len(row_keys), len(col_keys)
    rows = [
        Line(
            code,
            name,
            [_cells(p, i, j, p.cells[i][j]) for j in range(m)],
            _cells(p, i, m, p.row_totals[i]),
        )
        for i, (code, name) in enumerate(row_keys)
    ]
    return StatTable(
        by=by,
        columns=col_keys,
        rows=rows,
        column_totals=[_cells(p, n, j, p.col_totals[j]) for j in range(m)],
        total=_cells(p, n, m, p.total),
    )


def _transpose(p: Protected) -> Protected:
    return Protected(
        cells=[list(col) for col in zip(*p.cells, strict=True)],
        row_totals=p.col_totals,
        col_totals=p.row_totals,
        total=p.total,
        hidden={(j, i): why for (i, j), why in p.hidden.items()},
    )


def _months(first: str | None, last: str) -> list[str]:
    if first is None or first > last:
        return [last]
    year, month = map(int, first.split("-"))
    out = []
    while True:
        key = f"{year:04d}-{month:02d}"
        out.append(key)
        if key >= last:
            return out
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class Statistics:
    by_region: StatTable
    by_category: StatTable
    by_month: StatTable

    def table(self, by: str) -> StatTable:
        return {"region": self.by_region, "category": self.by_category, "month": self.by_month}[by]


@dataclass(frozen=True)
class _Protected:
    """The two independent published tables, protected, with their row and column keys (codes)."""

    regions: list[str]
    categories: list[str]
    months: list[str]
    by_region: Protected
    by_month: Protected


def _protected(kernel: Kernel, now_ms: int | None) -> _Protected:
    """Sum the aggregate in the database (a few hundred rows come back) and protect both tables."""
    s = t.report_stats
    with kernel.db.read() as conn:
        grid_rows = conn.execute(
            sa.select(s.c.region_code, s.c.category, sa.func.sum(s.c.count)).group_by(s.c.region_code, s.c.category)
        ).all()
        month_rows = conn.execute(sa.select(s.c.month, sa.func.sum(s.c.count)).group_by(s.c.month)).all()
    regions = [r.code for r in kz.regions()]
    categories = [c.code for c in catalog.categories()]
    region_index = {code: i for i, code in enumerate(regions)}
    category_index = {code: j for j, code in enumerate(categories)}
    last = month_of(utc_now_ms() if now_ms is None else now_ms)
    months = _months(min((m for m, _ in month_rows), default=None), max([last, *(m for m, _ in month_rows)]))
    month_index = {m: i for i, m in enumerate(months)}

    grid = [[0] * len(categories) for _ in regions]
    series = [[0] for _ in months]
    for region_code, category, count in grid_rows:
        # A code retired from the data files still counts in the month series and the totals.
        i, j = region_index.get(region_code), category_index.get(category)
        if i is not None and j is not None:
            grid[i][j] += int(count)
    for month, count in month_rows:
        series[month_index[month]][0] += int(count)
    # Reports under a retired code would make the two grand totals differ; they are rare, and kept
    # out of the region table only (the month table counts them).
    by_region = protect_counts(grid)
    by_month = protect_counts(series)
    corner_region, corner_month = (len(regions), len(categories)), (len(months), 1)
    if (corner_region in by_region.hidden) != (corner_month in by_month.hidden):
        by_region = protect_counts(grid, force=[corner_region])
        by_month = protect_counts(series, force=[corner_month])
    return _Protected(regions, categories, months, by_region, by_month)


def public_statistics(kernel: Kernel, lang: str = "en", *, now_ms: int | None = None) -> Statistics:
    """The three published tables, protected; names in ``lang``."""
    p = _protected(kernel, now_ms)
    region_names = {r.code: r.name(lang) for r in kz.regions()}
    category_names = {c.code: c.name(lang) for c in catalog.categories()}
    regions = [(code, region_names[code]) for code in p.regions]
    categories = [(code, category_names[code]) for code in p.categories]
    return Statistics(
        by_region=_table("region", regions, categories, p.by_region),
        by_category=_table("category", categories, regions, _transpose(p.by_region)),
        by_month=_table("month", [(m, month_name(m, lang)) for m in p.months], [("reports", "reports")], p.by_month),
    )


def published_region_cells(kernel: Kernel, *, now_ms: int | None = None) -> set[tuple[str, str]]:
    """(region, category) pairs whose count the region table shows (not suppressed).

    Exactly the cells of :func:`public_statistics`' region table (the same protection, linked to the
    month table through the grand total), without building the three named tables.
    """
    p = _protected(kernel, now_ms)
    return {
        (region, category)
        for i, region in enumerate(p.regions)
        for j, category in enumerate(p.categories)
        if p.by_region.cells[i][j] is not None
    }


# --- charts ----------------------------------------------------------------------------------

CHART_WIDTH = 340
_LABEL_H = 19
_BAR_H = 15
_ROW_H = 46
_VALUE_ROOM = 56


@dataclass(frozen=True)
class Bar:
    label: str
    display: str
    hidden: bool
    y: int  # top of the label line
    width: float  # bar length in chart units (0 when hidden)


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    bar_h: int
    label_h: int
    max_bar: int


def chart(table: StatTable) -> Chart:
    """A horizontal bar chart of the row totals, laid out for the SVG template (no script)."""
    shown = [r.total.count for r in table.rows if r.total.count is not None]
    top = max(shown, default=0) or 1
    max_bar = CHART_WIDTH - _VALUE_ROOM
    bars = [
        Bar(
            label=r.name,
            display=r.total.display,
            hidden=r.total.count is None,
            y=k * _ROW_H,
            width=0.0 if r.total.count is None else round(max_bar * r.total.count / top, 1),
        )
        for k, r in enumerate(table.rows)
    ]
    return Chart(bars, CHART_WIDTH, max(_ROW_H, len(bars) * _ROW_H), _BAR_H, _LABEL_H, max_bar)
