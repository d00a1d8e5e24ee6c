"""Small-count protection of the public statistics: nothing hidden can be worked out by subtraction."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.reports.domain import SMALL_COUNT, Hidden, Protected, protect_counts


def _determined(cells: list[list[int]], p: Protected) -> list[tuple[int, int]]:
    """The hidden positions an attacker can compute from the shown numbers by linear algebra.

    Unknowns are the hidden positions of the extended table; each row and column of the extended table
    (cells, then their total) is one equation. A hidden value is determined exactly when its unit vector
    lies in the row space of the equations' coefficient matrix (rank does not grow when it is added).
    """
    n, m = len(cells), len(cells[0])
    unknowns = sorted(p.hidden)
    index = {pos: k for k, pos in enumerate(unknowns)}
    equations = []
    for i in range(n + 1):  # row i: sum of its cells − its total = 0
        eq = [Fraction(0)] * len(unknowns)
        for j in range(m + 1):
            if (i, j) in index:
                eq[index[(i, j)]] += -1 if j == m else 1
        equations.append(eq)
    for j in range(m + 1):
        eq = [Fraction(0)] * len(unknowns)
        for i in range(n + 1):
            if (i, j) in index:
                eq[index[(i, j)]] += -1 if i == n else 1
        equations.append(eq)

    def rank(rows: list[list[Fraction]]) -> int:
        rows = [r[:] for r in rows]
        r = 0
        for c in range(len(unknowns)):
            pivot = next((k for k in range(r, len(rows)) if rows[k][c] != 0), None)
            if pivot is None:
                continue
            rows[r], rows[pivot] = rows[pivot], rows[r]
            for k in range(len(rows)):
                if k != r and rows[k][c] != 0:
                    f = rows[k][c] / rows[r][c]
                    rows[k] = [a - f * b for a, b in zip(rows[k], rows[r], strict=True)]
            r += 1
        return r

    base = rank(equations)
    found = []
    for pos, k in index.items():
        unit = [Fraction(0)] * len(unknowns)
        unit[k] = Fraction(1)
        if rank([*equations, unit]) == base:
            found.append(pos)
    return found


def _check(cells: list[list[int]], p: Protected) -> None:
    n, m = len(cells), len(cells[0])
    full = [[*row, sum(row)] for row in cells] + [
        [*(sum(cells[i][j] for i in range(n)) for j in range(m)), sum(map(sum, cells))]
    ]
    shown = [[*row, rt] for row, rt in zip(p.cells, p.row_totals, strict=True)] + [[*p.col_totals, p.total]]
    for i in range(n + 1):
        for j in range(m + 1):
            v = full[i][j]
            if 0 < v < SMALL_COUNT:
                assert p.hidden.get((i, j)) == Hidden.SMALL and shown[i][j] is None
            elif (i, j) in p.hidden:
                assert shown[i][j] is None and p.hidden[(i, j)] == Hidden.COMPLEMENT
            else:
                assert shown[i][j] == v  # what is shown is true
    assert _determined(cells, p) == []


def test_nothing_small_nothing_hidden() -> None:
    p = protect_counts([[10, 20], [30, 40]])
    assert p.hidden == {}
    assert p.cells == [[10, 20], [30, 40]] and p.row_totals == [30, 70] and p.col_totals == [40, 60]
    assert p.total == 100


def test_zeros_are_shown() -> None:
    p = protect_counts([[0, 20], [30, 0]])
    assert p.hidden == {} and p.cells == [[0, 20], [30, 0]]


def test_one_small_cell_takes_complements_with_it() -> None:
    cells = [[5, 20, 30], [40, 50, 60]]
    p = protect_counts(cells)
    assert p.hidden[(0, 0)] == Hidden.SMALL
    # Its row and its column each lose a second value, and so does the line those meet.
    assert len(p.hidden) >= 4
    _check(cells, p)
    # Without the complements, row 0's total minus the shown cells would give the 5 back.
    assert p.cells[0].count(None) >= 2 or p.row_totals[0] is None


def test_small_total_hidden() -> None:
    cells = [[3, 2], [40, 50]]
    p = protect_counts(cells)
    assert p.row_totals[0] is None and p.hidden[(0, 2)] == Hidden.SMALL
    _check(cells, p)


def test_all_small() -> None:
    cells = [[1, 2], [3, 2]]
    p = protect_counts(cells)
    assert p.total is None and all(v is None for row in p.cells for v in row)
    _check(cells, p)


def test_single_column_table() -> None:
    # A month series: each row total equals its cell, so both go together.
    cells = [[12], [4], [30], [25]]
    p = protect_counts(cells)
    assert p.cells[1] == [None] and p.row_totals[1] is None
    _check(cells, p)


def test_single_cell_table() -> None:
    for v in (0, 3, 10, 99):
        p = protect_counts([[v]])
        _check([[v]], p)


def test_forced_positions_are_hidden() -> None:
    cells = [[100, 200], [300, 400]]
    p = protect_counts(cells, force=[(2, 2)])
    assert p.total is None
    _check(cells, p)


@pytest.mark.parametrize("bad", [[], [[]], [[1, 2], [3]], [[-1]]])
def test_refuses_malformed(bad: list[list[int]]) -> None:
    with pytest.raises(ValueError):
        protect_counts(bad)


def test_checker_catches_a_leak() -> None:
    """The checker itself can fail: hiding only the small cell leaves it computable."""
    cells = [[5, 20], [40, 50]]
    leaky = Protected(
        cells=[[None, 20], [40, 50]],
        row_totals=[25, 90],
        col_totals=[45, 70],
        total=115,
        hidden={(0, 0): Hidden.SMALL},
    )
    assert _determined(cells, leaky) == [(0, 0)]


counts = st.integers(min_value=0, max_value=40) | st.integers(min_value=0, max_value=12)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda rows: st.integers(min_value=1, max_value=5).flatmap(
            lambda cols: st.lists(st.lists(counts, min_size=cols, max_size=cols), min_size=rows, max_size=rows)
        )
    )
)
def test_no_hidden_value_recoverable_by_subtraction(cells: list[list[int]]) -> None:
    _check(cells, protect_counts(cells))
