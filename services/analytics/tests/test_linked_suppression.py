"""Breakdowns of one measure share their period totals: attacked together, they must still hide
every suppressed number (an attacker holds every table of the release at once)."""

from __future__ import annotations

import numpy as np
from huddle_analytics.domain.suppression import ProtectedTable, protect_linked
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

SMALL = st.one_of(st.integers(0, 12), st.integers(0, 40))


@st.composite
def releases(draw: st.DrawFn) -> tuple[int, list[list[list[int]]]]:
    """Columns, and two or three breakdowns of the same column totals."""
    columns = draw(st.integers(1, 4))
    first = draw(
        st.lists(st.lists(SMALL, min_size=columns, max_size=columns), min_size=1, max_size=4)
    )
    totals = [sum(row[j] for row in first) for j in range(columns)]
    tables = [first]
    for _ in range(draw(st.integers(1, 2))):
        parts = draw(st.integers(1, 3))
        table = [[0] * columns for _ in range(parts)]
        for j, total in enumerate(totals):
            cuts = sorted(
                draw(st.lists(st.integers(0, total), min_size=parts - 1, max_size=parts - 1))
            )
            bounds = [0, *cuts, total]
            for i in range(parts):
                table[i][j] = bounds[i + 1] - bounds[i]
        tables.append(table)
    return columns, tables


def attack(series: ProtectedTable, tables: list[ProtectedTable]) -> list[str]:
    """Min and max of every hidden number under every published equation; pinned ones.
    Zeros are never hidden, and the attacker knows it: every hidden number is at least 1."""
    variables: dict[str, int] = {}
    equations: list[tuple[dict[str, int], int]] = []

    def term(name: str, value: int | None, terms: dict[str, int], sign: int) -> int:
        if value is None:
            variables.setdefault(name, len(variables))
            terms[name] = terms.get(name, 0) + sign
            return 0
        return sign * value

    columns = len(series.columns)
    for t, table in enumerate(tables):
        for i, row in enumerate(table.cells):
            terms: dict[str, int] = {}
            constant = sum(term(f"t{t}c{i},{j}", v, terms, 1) for j, v in enumerate(row))
            constant += term(f"t{t}r{i}", table.row_totals[i], terms, -1)
            equations.append((terms, -constant))
        for j in range(columns):
            terms = {}
            constant = sum(
                term(f"t{t}c{i},{j}", table.cells[i][j], terms, 1) for i in range(len(table.cells))
            )
            constant += term(f"s{j}", series.cells[0][j], terms, -1)
            equations.append((terms, -constant))
        terms = {}
        constant = sum(term(f"t{t}r{i}", v, terms, 1) for i, v in enumerate(table.row_totals))
        constant += term("total", series.total, terms, -1)
        equations.append((terms, -constant))
    terms = {}
    constant = sum(term(f"s{j}", v, terms, 1) for j, v in enumerate(series.cells[0]))
    constant += term("total", series.total, terms, -1)
    equations.append((terms, -constant))
    if not variables:
        return []
    a = np.zeros((len(equations), len(variables)))
    b = np.zeros(len(equations))
    for row, (terms, constant) in enumerate(equations):
        for name, coefficient in terms.items():
            a[row, variables[name]] = coefficient
        b[row] = constant
    pinned = []
    for name, index in variables.items():
        c = np.zeros(len(variables))
        c[index] = 1
        low = linprog(c, A_eq=a, b_eq=b, bounds=(1, None), method="highs")
        high = linprog(-c, A_eq=a, b_eq=b, bounds=(1, None), method="highs")
        assert low.status == 0 and high.status in (0, 3), name
        if high.status == 0 and -high.fun - low.fun < 0.5:  # 3: unbounded above, not pinned
            pinned.append(name)
    return pinned


@settings(max_examples=300, deadline=None)
@given(releases(), st.integers(3, 15))
def test_breakdowns_sharing_their_totals_cannot_be_combined_to_recover_a_hidden_count(
    release: tuple[int, list[list[list[int]]]], k: int
) -> None:
    columns, tables = release
    labels = [f"p{j}" for j in range(columns)]
    totals = [sum(row[j] for row in tables[0]) for j in range(columns)]
    series, protected = protect_linked(
        labels,
        totals,
        {f"b{t}": ([f"r{i}" for i in range(len(rows))], rows) for t, rows in enumerate(tables)},
        k,
    )
    published = list(protected.values())
    for table in published:
        # The shared totals read the same in every table of the release.
        assert list(table.column_totals) == list(series.cells[0])
        assert table.total == series.total
        for value in (*table.row_totals, *(v for row in table.cells for v in row)):
            assert value is None or value == 0 or value >= k
    assert attack(series, published) == []


def test_a_total_pinned_only_by_combining_two_breakdowns_stays_hidden() -> None:
    # Table a alone gives x + y = 3 for two hidden totals; table b alone says x >= 2 (two hidden
    # cells of at least 1 in its column): together they would pin x = 2 and y = 1.
    series, tables = protect_linked(
        ["c0", "c1", "c2"],
        [24, 2, 13],
        {
            "a": (["a0", "a1"], [[12, 0, 12], [12, 2, 1]]),
            "b": (["b0", "b1", "b2"], [[8, 1, 3], [7, 0, 2], [9, 1, 8]]),
        },
        11,
    )
    assert attack(series, list(tables.values())) == []
