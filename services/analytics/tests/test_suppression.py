"""DOMAIN.md, "Anonymised reporting": small-cell and complementary suppression, attacked.

The attackers here are written independently of the module: a linear-programming attacker that takes
the min and max of every hidden entry, and a brute-force attacker that lists integer fillings.
"""

from __future__ import annotations

import itertools
import json
import random
import time

import numpy as np
import pytest
from huddle_analytics.domain.suppression import (
    DEFAULT_THRESHOLD,
    ProtectedTable,
    coarsen,
    enough,
    protect_counts,
    protect_share,
    protect_table,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

Grid = list[list[int | None]]
Position = tuple[int, int]

# Many small counts, as in per-unit reporting, with zeros and some large ones.
COUNTS = st.one_of(st.just(0), st.integers(1, 5), st.integers(0, 15), st.integers(0, 40))
THRESHOLDS = st.integers(3, 15)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tables(draw: st.DrawFn, max_rows: int = 6, max_columns: int = 6) -> list[list[int]]:
    n_rows = draw(st.integers(1, max_rows))
    n_columns = draw(st.integers(1, max_columns))
    row = st.lists(COUNTS, min_size=n_columns, max_size=n_columns)
    return draw(st.lists(row, min_size=n_rows, max_size=n_rows))


def protect(counts: list[list[int]], k: int) -> ProtectedTable:
    rows = [f"r{i}" for i in range(len(counts))]
    columns = [f"c{j}" for j in range(len(counts[0]))]
    return protect_table(rows, columns, counts, k)


def full_grid(table: ProtectedTable) -> Grid:
    """The published table with its margins as one (R+1) x (C+1) grid."""
    body: Grid = [[*row, total] for row, total in zip(table.cells, table.row_totals, strict=True)]
    return [*body, [*table.column_totals, table.total]]


def true_grid(counts: list[list[int]]) -> list[list[int]]:
    body = [[*row, sum(row)] for row in counts]
    column_totals = [sum(column) for column in zip(*body, strict=True)]
    return [*body, column_totals]


def lines(n_rows: int, n_columns: int) -> list[tuple[list[Position], Position]]:
    """Every (addends, total) equation of a grid with margins, totals row and column included."""
    result = [([(i, j) for j in range(n_columns)], (i, n_columns)) for i in range(n_rows + 1)]
    result += [([(i, j) for i in range(n_rows)], (n_rows, j)) for j in range(n_columns + 1)]
    return result


def attacker_ranges(table: ProtectedTable, lowest: int = 0) -> dict[Position, tuple[float, float]]:
    """What an analyst with a solver learns: min and max of each hidden entry given the published ones."""
    grid = full_grid(table)
    n_rows, n_columns = len(table.rows), len(table.columns)
    hidden = [(i, j) for i, row in enumerate(grid) for j, value in enumerate(row) if value is None]
    index = {position: n for n, position in enumerate(hidden)}
    a_eq, b_eq = [], []
    for addends, total in lines(n_rows, n_columns):
        coefficients = np.zeros(len(hidden))
        constant = 0.0
        for position, sign in [*((a, 1) for a in addends), (total, -1)]:
            value = grid[position[0]][position[1]]
            if value is None:
                coefficients[index[position]] += sign
            else:
                constant -= sign * value
        if coefficients.any():
            a_eq.append(coefficients)
            b_eq.append(constant)
    ranges: dict[Position, tuple[float, float]] = {}
    for position in hidden:
        objective = np.zeros(len(hidden))
        objective[index[position]] = 1.0
        bounds = [(lowest, None)] * len(hidden)
        low = linprog(objective, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs")
        high = linprog(-objective, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs")
        assert low.status == 0, low.message  # the true table is a solution: always feasible
        top = float("inf") if high.status == 3 else -high.fun
        assert high.status in (0, 3), high.message
        ranges[position] = (low.fun, top)
    return ranges


def exposed(table: ProtectedTable, lowest: int = 0) -> list[Position]:
    """Hidden entries the solver pins to a single value (vertices are integral: 0.5 is a safe margin)."""
    ranges = attacker_ranges(table, lowest)
    return [position for position, (low, high) in ranges.items() if high - low < 0.5]


def published(table: ProtectedTable) -> list[tuple[Position, int]]:
    grid = full_grid(table)
    return [
        ((i, j), value)
        for i, row in enumerate(grid)
        for j, value in enumerate(row)
        if value is not None
    ]


# --- properties ----------------------------------------------------------------------------------


@SETTINGS
@given(tables(), THRESHOLDS)
def test_no_published_count_is_between_1_and_k_minus_1(counts: list[list[int]], k: int) -> None:
    for _, value in published(protect(counts, k)):
        assert not 1 <= value < k


@SETTINGS
@given(tables(), THRESHOLDS)
@example([[0, 1], [1, 1]], 3)  # the last resort: only the grand total is left to hide
def test_a_suppressed_cell_cannot_be_recovered_from_totals(counts: list[list[int]], k: int) -> None:
    assert exposed(protect(counts, k), lowest=0) == []


@SETTINGS
@given(tables(), THRESHOLDS)
def test_even_knowing_hidden_counts_are_never_zero_nothing_is_recovered(
    counts: list[list[int]], k: int
) -> None:
    # Zeros are always published, so a shrewd analyst may assume every hidden entry is at least 1.
    table = protect(counts, k)
    truth = true_grid(counts)
    assert all(
        truth[i][j] >= 1
        for i, row in enumerate(full_grid(table))
        for j, v in enumerate(row)
        if v is None
    )
    assert exposed(table, lowest=1) == []


@SETTINGS
@given(tables(), THRESHOLDS)
def test_published_counts_are_the_true_counts(counts: list[list[int]], k: int) -> None:
    table = protect(counts, k)
    truth = true_grid(counts)
    for (i, j), value in published(table):
        assert value == truth[i][j]
    assert table.suppressed == sum(value is None for row in full_grid(table) for value in row)


@SETTINGS
@given(tables(), THRESHOLDS)
def test_totals_are_consistent_when_all_are_visible(counts: list[list[int]], k: int) -> None:
    table = protect(counts, k)
    grid = full_grid(table)
    for addends, (ti, tj) in lines(len(table.rows), len(table.columns)):
        values = [grid[i][j] for i, j in addends]
        total = grid[ti][tj]
        if total is not None and None not in values:
            assert sum(v for v in values if v is not None) == total


@SETTINGS
@given(tables(), THRESHOLDS)
def test_zero_is_published(counts: list[list[int]], k: int) -> None:
    grid = full_grid(protect(counts, k))
    for i, row in enumerate(true_grid(counts)):
        for j, value in enumerate(row):
            if value == 0:
                assert grid[i][j] == 0


@settings(max_examples=40, deadline=None)
@given(tables(), THRESHOLDS)
def test_same_input_same_output(counts: list[list[int]], k: int) -> None:
    assert protect(counts, k) == protect([list(row) for row in counts], k)


@st.composite
def tiny_tables(draw: st.DrawFn) -> list[list[int]]:
    n_columns = draw(st.sampled_from([2, 3]))
    small = st.one_of(st.just(0), st.integers(1, 4), st.integers(0, 12))
    row = st.lists(small, min_size=n_columns, max_size=n_columns)
    return draw(st.lists(row, min_size=2, max_size=2))


def possible_values(
    table: ProtectedTable, truth: list[list[int]], lowest: int, reach: int = 2
) -> dict[Position, set[int]]:
    """Brute force: every integer filling of the hidden cells consistent with the published table.

    Fillings are listed within +-reach of each true cell: if the published table allows another
    value at all, it allows one within +-1 of the truth (the line equations are totally unimodular).
    """
    grid = full_grid(table)
    n_rows, n_columns = len(table.rows), len(table.columns)
    hidden_cells = [(i, j) for i in range(n_rows) for j in range(n_columns) if grid[i][j] is None]
    hidden_all = [
        (i, j) for i, row in enumerate(grid) for j, value in enumerate(row) if value is None
    ]
    ranges = [
        range(max(lowest, truth[i][j] - reach), truth[i][j] + reach + 1) for i, j in hidden_cells
    ]
    seen: dict[Position, set[int]] = {position: set() for position in hidden_all}
    for filling in itertools.product(*ranges):
        cells = [[grid[i][j] for j in range(n_columns)] for i in range(n_rows)]
        for (i, j), value in zip(hidden_cells, filling, strict=True):
            cells[i][j] = value
        candidate = true_grid(cells)  # type: ignore[arg-type]
        if any(
            grid[i][j] is not None and grid[i][j] != candidate[i][j]
            for i in range(n_rows + 1)
            for j in range(n_columns + 1)
        ):
            continue
        if any(candidate[i][j] < lowest for i, j in hidden_all):
            continue
        for i, j in hidden_all:
            seen[(i, j)].add(candidate[i][j])
    return seen


@settings(max_examples=60, deadline=None)
@given(tiny_tables(), THRESHOLDS, st.sampled_from([0, 1]))
def test_brute_force_finds_two_possible_values_for_every_hidden_entry(
    counts: list[list[int]], k: int, lowest: int
) -> None:
    table = protect(counts, k)
    for position, values in possible_values(table, true_grid(counts), lowest).items():
        assert len(values) >= 2, (position, values, table)


# --- hand examples -------------------------------------------------------------------------------


def test_a_single_small_cell_forces_a_second_suppression_in_its_row_and_column() -> None:
    counts = [[3, 20, 30], [25, 40, 50], [35, 45, 60]]
    table = protect(counts, DEFAULT_THRESHOLD)
    assert table.cells[0][0] is None
    assert any(value is None for value in table.cells[0][1:])
    assert any(row[0] is None for row in table.cells[1:])
    # the smallest non-zero neighbours are taken, margins stay, and it is safe
    assert table.cells == ((None, None, 30), (None, None, 50), (35, 45, 60))
    assert table.row_totals == (53, 115, 140)
    assert table.column_totals == (63, 105, 140)
    assert table.total == 308
    assert table.suppressed == 4
    assert exposed(table) == []


def test_a_small_total_is_suppressed_with_its_complement() -> None:
    table = protect_counts(["a", "b", "c"], [0, 4, 3])
    assert table.total is None
    assert table.cells == ((0, None, None),)
    assert exposed(table) == []


def test_a_bridge_left_by_line_checks_is_caught_by_the_solver() -> None:
    counts = [[12, 12, 8, 12], [15, 12, 3, 20], [12, 12, 30, 3], [30, 3, 5, 12]]
    # Line checks alone hide two 2x2 cycles joined by the 8: every line holds two hidden cells,
    # yet the 8 is a bridge between them, and the solver attacker recovers it.
    line_checks_only = ProtectedTable(
        rows=("r0", "r1", "r2", "r3"),
        columns=("c0", "c1", "c2", "c3"),
        cells=(
            (None, 12, None, None),
            (15, None, None, 20),
            (None, 12, 30, None),
            (30, None, None, 12),
        ),
        row_totals=(44, 50, 57, 50),
        column_totals=(69, 39, 46, 47),
        total=201,
        suppressed=9,
    )
    assert exposed(line_checks_only) == [(0, 2)]
    table = protect(counts, DEFAULT_THRESHOLD)
    assert table.cells[0][2] is None
    assert table.suppressed > 9
    assert exposed(table) == []


def test_cells_pinned_by_non_negativity_are_protected() -> None:
    # Row 0 would publish 1 + 1 hidden with total 22 and 20 visible: hidden counts >= 1 pin both.
    counts = [[1, 1, 20], [2, 8, 40], [40, 30, 12], [20, 5, 40]]
    table = protect(counts, DEFAULT_THRESHOLD)
    assert exposed(table, lowest=1) == []
    assert exposed(table, lowest=0) == []


def test_complement_of_a_share_is_protected() -> None:
    # 95 of 100 offered were reached: publishing 95 and 100 gives away the 5 not reached.
    assert protect_share(95, 100) == (None, 100, None)
    assert protect_share(5, 100) == (None, 100, None)
    assert protect_share(60, 100) == (60, 100, 0.6)
    assert protect_share(3, 7) == (None, None, None)


def test_a_share_of_zero_or_of_everyone_is_published() -> None:
    assert protect_share(0, 40) == (0, 40, 0.0)
    assert protect_share(40, 40) == (40, 40, 1.0)
    assert protect_share(0, 0) == (0, 0, None)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200), THRESHOLDS)
def test_a_published_share_never_reveals_a_small_numerator_or_complement(
    a: int, b: int, k: int
) -> None:
    numerator, denominator = min(a, b), max(a, b)
    shown_numerator, shown_denominator, share = protect_share(numerator, denominator, k)
    for value in (shown_numerator, shown_denominator):
        assert value is None or not 1 <= value < k
    if shown_numerator is not None and shown_denominator is not None:
        assert not 1 <= shown_denominator - shown_numerator < k
    if share is not None:
        assert shown_numerator is not None and shown_denominator is not None
        assert share == numerator / denominator


def test_threshold_is_configurable() -> None:
    assert DEFAULT_THRESHOLD == 11
    assert protect_counts(["a", "b"], [6, 30]).cells == ((None, None),)
    assert protect_counts(["a", "b"], [6, 30], k=5).cells == ((6, 30),)
    assert protect_counts(["a", "b"], [4, 30], k=5).cells == ((None, None),)
    assert enough(11) and not enough(10)
    assert enough(5, k=5) and not enough(4, k=5)
    assert not enough(0)


def test_statistics_need_enough_people() -> None:
    assert [n for n in range(15) if enough(n)] == [11, 12, 13, 14]


def test_coarsen_before_suppressing() -> None:
    months = [[5, 7, 6], [12, 15, 20], [4, 9, 8]]  # 3 hospitals x 3 months
    quarter = [[sum(row)] for row in months]
    built: list[str] = []

    def build(grain: str, counts: list[list[int]], columns: list[str]) -> ProtectedTable:
        built.append(grain)
        return protect_table(["h1", "h2", "h3"], columns, counts)

    grain, table = coarsen(
        [
            ("month", lambda: build("month", months, ["jan", "feb", "mar"])),
            ("quarter", lambda: build("quarter", quarter, ["q1"])),
        ]
    )
    assert grain == "quarter"
    assert table.cells == ((18,), (47,), (21,))
    assert table.suppressed == 0
    assert built == ["month", "quarter"]


def test_coarsen_keeps_the_finest_grain_that_is_readable_and_builds_no_more() -> None:
    built: list[str] = []

    def build(grain: str) -> ProtectedTable:
        built.append(grain)
        return protect_counts(["a", "b"], [20, 30])

    grain, _ = coarsen([("month", lambda: build("month")), ("quarter", lambda: build("quarter"))])
    assert grain == "month"
    assert built == ["month"]


def test_coarsen_falls_back_to_the_coarsest_grain() -> None:
    grain, table = coarsen(
        [
            ("hospital", lambda: protect_counts(["a", "b"], [3, 4])),
            ("network", lambda: protect_counts(["all"], [7])),
        ]
    )
    assert grain == "network"
    assert table.cells == ((None,),)
    with pytest.raises(ValueError, match="at least one"):
        coarsen([])


def test_as_dict_is_json_friendly() -> None:
    table = protect_table(["a", "b"], ["x", "y"], [[3, 20], [30, 40]])
    data = table.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert (
        data
        == {
            "rows": ["a", "b"],
            "columns": ["x", "y"],
            "cells": [[None, None], [None, None]],
            "row_totals": [None, None],
            "column_totals": [None, None],
            "total": 93,
            "suppressed": 8,
        }
        or exposed(table) == []
    )
    assert set(data) == {
        "rows",
        "columns",
        "cells",
        "row_totals",
        "column_totals",
        "total",
        "suppressed",
    }


def test_totals_hidden_in_a_linked_table_stay_hidden_here() -> None:
    # The period totals were hidden in the published series: the breakdown must not show them, nor
    # let them be worked out from its cells.
    table = protect_table(
        ["a", "b"],
        ["jan", "feb"],
        [[20, 30], [25, 40]],
        column_totals_hidden=[True, True],
        total_hidden=False,
    )
    assert table.column_totals == (None, None)
    assert table.total == 115
    assert exposed(table, lowest=1) == []


def test_totals_shown_in_a_linked_table_are_not_used_as_complements() -> None:
    # Left alone, the 45 column total is the cheapest complement in the totals row; the series
    # already shows it, so hiding it here would protect nothing: the grand total goes instead.
    counts = [[3, 20, 30], [4, 25, 40]]
    table = protect_table(
        ["a", "b"], ["x", "y", "z"], counts, column_totals_hidden=[True, False, False]
    )
    assert protect(counts, DEFAULT_THRESHOLD).column_totals == (None, None, 70)
    assert table.column_totals == (None, 45, 70)
    assert table.total is None
    assert exposed(table, lowest=1) == []


@st.composite
def linked_tables(draw: st.DrawFn) -> tuple[list[list[int]], list[bool], bool]:
    counts = draw(tables(max_rows=5, max_columns=5))
    mask = draw(st.lists(st.booleans(), min_size=len(counts[0]), max_size=len(counts[0])))
    return counts, mask, draw(st.booleans())


@settings(max_examples=80, deadline=None)
@given(linked_tables(), THRESHOLDS)
def test_a_linked_table_hides_the_totals_hidden_elsewhere_and_stays_safe(
    linked: tuple[list[list[int]], list[bool], bool], k: int
) -> None:
    counts, mask, total_hidden = linked
    rows = [f"r{i}" for i in range(len(counts))]
    columns = [f"c{j}" for j in range(len(counts[0]))]
    table = protect_table(
        rows, columns, counts, k, column_totals_hidden=mask, total_hidden=total_hidden
    )
    truth = true_grid(counts)
    for j, hide in enumerate(mask):
        if hide and truth[-1][j] > 0:  # zero may always be published
            assert table.column_totals[j] is None
    if total_hidden and truth[-1][-1] > 0:
        assert table.total is None
    assert all(not 1 <= value < k for _, value in published(table))
    assert exposed(table, lowest=1) == []


def test_counts_must_be_non_negative_integers_of_the_right_shape() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        protect_table(["a"], ["x"], [[-1]])
    with pytest.raises(ValueError, match="row labels"):
        protect_table(["a", "b"], ["x"], [[1]])
    with pytest.raises(ValueError, match="columns"):
        protect_table(["a"], ["x", "y"], [[1]])
    with pytest.raises(ValueError, match="threshold"):
        protect_table(["a"], ["x"], [[1]], k=0)
    with pytest.raises(ValueError, match="numerator"):
        protect_share(5, 3)
    with pytest.raises(ValueError, match="column_totals_hidden"):
        protect_table(["a"], ["x", "y"], [[1, 2]], column_totals_hidden=[True])


def test_a_large_table_is_protected_quickly() -> None:
    rng = random.Random(20240611)  # fixed seed: a reproducible 30 x 15 table of mostly small counts
    counts = [[rng.choice([0, 0, 1, 2, 3, 5, 8, 12, 20, 45]) for _ in range(15)] for _ in range(30)]
    start = time.perf_counter()
    table = protect(counts, DEFAULT_THRESHOLD)
    assert time.perf_counter() - start < 2.0
    assert all(not 1 <= value < DEFAULT_THRESHOLD for _, value in published(table))
    assert exposed(table, lowest=1) == []
