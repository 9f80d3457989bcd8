"""Small-cell suppression of published aggregate tables (DOMAIN.md, "Anonymised reporting").

A published count is never 1 to k-1 (k defaults to 11), and no hidden count can be worked out from
what is published: totals, complements and shares are protected together with the cells.

The table and its margins form an (R+1) x (C+1) grid: entry (i, C) is the total of row i, entry
(R, j) the total of column j, entry (R, C) the grand total. Every grid row and every grid column is
a "line" whose cells add up to its total. The method:

1. primary suppression: hide every entry from 1 to k-1;
2. complementary suppression: a line with exactly one hidden entry gives it away, so hide the
   smallest non-zero entry of that line as well (preferring inner cells to totals), until stable;
3. verification with the attacker's own model (linear programming: hidden entries unknown, every
   line equation, published entries fixed): any hidden entry that still has a single possible value
   (a "bridge" in the pattern, or one pinned by non-negativity) gets another entry of one of its
   lines hidden, and the loop goes back to step 2.

Zeros are always published, and hiding them would give no protection (a count cannot go below zero),
so every hidden entry is at least 1; the verifier assumes the attacker knows that too, which is
stricter than the plain "hidden >= 0" model.

It terminates: each round hides at least one more entry, and once every non-zero entry is hidden no
entry is determined (any cell can grow together with its row, column and grand totals).

Linked tables (several breakdowns sharing one published series of totals) are only checked one at
a time: `column_totals_hidden` / `total_hidden` hide here the shared totals hidden there and avoid
hiding those shown there, but the check never sees the other table's equations, so an attacker
combining them may still narrow or pin a hidden entry. Protect them jointly (one table, or repeat
until the shared pattern is stable) where that matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

DEFAULT_THRESHOLD = 11

# Preference order for complementary suppression: inner cells first, the grand total last.
_CELL, _MARGIN, _GRAND_TOTAL = 0, 1, 2


@dataclass(frozen=True)
class ProtectedTable:
    """A table safe to publish: None marks a suppressed entry."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[int | None, ...], ...]
    row_totals: tuple[int | None, ...]
    column_totals: tuple[int | None, ...]
    total: int | None
    suppressed: int  # how many entries (cells and margins) are hidden

    @property
    def suppressed_share(self) -> float:
        """Share of the inner cells that are hidden (what `coarsen` compares)."""
        n_cells = len(self.rows) * len(self.columns)
        if n_cells == 0:
            return 0.0
        hidden = sum(1 for row in self.cells for value in row if value is None)
        return hidden / n_cells

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": list(self.rows),
            "columns": list(self.columns),
            "cells": [list(row) for row in self.cells],
            "row_totals": list(self.row_totals),
            "column_totals": list(self.column_totals),
            "total": self.total,
            "suppressed": self.suppressed,
        }


def enough(n: int, k: int = DEFAULT_THRESHOLD) -> bool:
    """May a statistic over n people (a median, a mean, a confidence interval) be published?"""
    _check_threshold(k)
    return n >= k


def protect_table(
    rows: Sequence[str],
    columns: Sequence[str],
    counts: Sequence[Sequence[int]],
    k: int = DEFAULT_THRESHOLD,
    *,
    column_totals_hidden: Sequence[bool] | None = None,
    total_hidden: bool | None = None,
) -> ProtectedTable:
    """Protect a two-way table of non-negative counts with its row, column and grand totals.

    `column_totals_hidden` links the table to another one already published with the same column
    totals (e.g. the series of period totals): True marks a total hidden there, so it is hidden here
    too (unless it is zero); False marks a total published there, so hiding it here would protect
    nothing and it is never chosen as a complementary suppression (only as a last resort).
    `total_hidden` does the same for the grand total. Best effort: the other table's own equations
    are not part of the check (see the module notes on linked tables).
    """
    _check_threshold(k)
    matrix = _validated(rows, columns, counts)
    grid = _Grid(matrix, len(rows), len(columns))
    forced = [False] * len(grid.values)
    if column_totals_hidden is not None:
        if len(column_totals_hidden) != len(columns):
            raise ValueError(
                f"{len(column_totals_hidden)} column_totals_hidden for {len(columns)} columns"
            )
        for j, hide in enumerate(column_totals_hidden):
            entry = len(rows) * (len(columns) + 1) + j
            forced[entry] = bool(hide)
            grid.locked[entry] = not hide
    if total_hidden is not None:
        forced[-1] = total_hidden
        grid.locked[-1] = not total_hidden
    hidden = _suppress(grid, k, forced)
    return grid.publish(tuple(rows), tuple(columns), hidden)


def protect_counts(
    labels: Sequence[str], counts: Sequence[int], k: int = DEFAULT_THRESHOLD
) -> ProtectedTable:
    """Protect a one-way breakdown with its total, as a one-row table (row label "all").

    In the result `cells[0]` and `column_totals` carry the same protected values, and `total`
    (equal to `row_totals[0]`) is the breakdown's total.
    """
    return protect_table(("all",), labels, (tuple(counts),), k)


def protect_share(
    numerator: int, denominator: int, k: int = DEFAULT_THRESHOLD
) -> tuple[int | None, int | None, float | None]:
    """Publishable (numerator, denominator, share) of "numerator out of denominator".

    The share goes only when both counts go and neither the numerator nor its complement
    (denominator - numerator) is from 1 to k-1: "95 of 100 reached" gives away the 5 not reached.
    """
    if isinstance(numerator, bool) or isinstance(denominator, bool):
        raise TypeError("counts must be integers")
    if not 0 <= numerator <= denominator:
        raise ValueError("need 0 <= numerator <= denominator")
    # The share is the breakdown (numerator, complement) with its total: protect it as such.
    table = protect_counts(("yes", "no"), (numerator, denominator - numerator), k)
    published_numerator, published_denominator = table.cells[0][0], table.total
    if published_numerator is None or published_denominator is None or denominator == 0:
        return published_numerator, published_denominator, None
    return published_numerator, published_denominator, published_numerator / published_denominator


def coarsen(
    candidates: Sequence[tuple[str, Callable[[], ProtectedTable]]],
    max_suppressed_share: float = 0.25,
) -> tuple[str, ProtectedTable]:
    """Pick the finest grain (month before quarter, hospital before network) that stays readable.

    Candidates go from finest to coarsest; each is built only when reached. The first whose share of
    hidden cells is at most `max_suppressed_share` wins, otherwise the coarsest.
    """
    if not candidates:
        raise ValueError("coarsen needs at least one candidate grain")
    for grain, build in candidates[:-1]:
        table = build()
        if table.suppressed_share <= max_suppressed_share:
            return grain, table
    grain, build = candidates[-1]
    return grain, build()


# --- the method --------------------------------------------------------------------------------


class _Grid:
    """The table with its margins, flattened, and the lines (equations) linking its entries."""

    def __init__(self, matrix: list[list[int]], n_rows: int, n_columns: int) -> None:
        self.n_rows, self.n_columns = n_rows, n_columns
        width = n_columns + 1
        column_totals = [sum(row[j] for row in matrix) for j in range(n_columns)]
        full = [[*row, sum(row)] for row in matrix] + [[*column_totals, sum(column_totals)]]
        self.values: list[int] = [value for row in full for value in row]
        self.kind: list[int] = []
        for i in range(n_rows + 1):
            for j in range(width):
                inner_row, inner_column = i < n_rows, j < n_columns
                self.kind.append(
                    _CELL
                    if inner_row and inner_column
                    else _GRAND_TOTAL
                    if not (inner_row or inner_column)
                    else _MARGIN
                )
        # Each line: (entry, +1) for the entries that add up, (total, -1) for its total.
        self.lines: list[tuple[tuple[int, int], ...]] = []
        for i in range(n_rows + 1):
            entries = [(i * width + j, 1) for j in range(n_columns)]
            self.lines.append((*entries, (i * width + n_columns, -1)))
        for j in range(width):
            entries = [(i * width + j, 1) for i in range(n_rows)]
            self.lines.append((*entries, (n_rows * width + j, -1)))
        # Entries published elsewhere: hiding them protects nothing, so they are complements last.
        self.locked: list[bool] = [False] * len(self.values)
        self.lines_of: list[list[int]] = [[] for _ in self.values]
        for number, line in enumerate(self.lines):
            for entry, _ in line:
                self.lines_of[entry].append(number)

    def publish(
        self, rows: tuple[str, ...], columns: tuple[str, ...], hidden: list[bool]
    ) -> ProtectedTable:
        shown = [None if hide else value for value, hide in zip(self.values, hidden, strict=True)]
        width = self.n_columns + 1
        grid = [tuple(shown[i * width : (i + 1) * width]) for i in range(self.n_rows + 1)]
        return ProtectedTable(
            rows=rows,
            columns=columns,
            cells=tuple(row[: self.n_columns] for row in grid[: self.n_rows]),
            row_totals=tuple(row[self.n_columns] for row in grid[: self.n_rows]),
            column_totals=grid[self.n_rows][: self.n_columns],
            total=grid[self.n_rows][self.n_columns],
            suppressed=sum(hidden),
        )


def _suppress(grid: _Grid, k: int, forced: list[bool]) -> list[bool]:
    # A zero is published even when forced: it may be, and every hidden entry then stays >= 1.
    hidden = [
        1 <= value < k or (force and value > 0)
        for value, force in zip(grid.values, forced, strict=True)
    ]
    while True:
        _close_lines(grid, hidden)
        determined = _determined(grid, hidden)
        if not determined:
            return hidden
        touched: set[int] = set()
        for entry in determined:
            # A hide made this round in one of its lines may already free it: verify again first.
            if touched.intersection(grid.lines_of[entry]):
                continue
            neighbours = {other for line in grid.lines_of[entry] for other, _ in grid.lines[line]}
            everything = range(len(grid.values))
            # Its own lines first, then the whole table; entries published elsewhere last of all.
            choice = _first_choice(
                grid,
                hidden,
                [(neighbours, False), (everything, False), (neighbours, True), (everything, True)],
            )
            if choice is None:  # an earlier hide this round took the last one: verify again
                continue
            hidden[choice] = True
            touched.update(grid.lines_of[choice])
        if not touched:  # cannot happen: with every non-zero entry hidden nothing is exact
            raise RuntimeError("suppression found no entry left to hide")


def _close_lines(grid: _Grid, hidden: list[bool]) -> None:
    """Complementary suppression: no line keeps a single hidden entry (its difference shows it)."""
    changed = True
    while changed:
        changed = False
        for line in grid.lines:
            if sum(hidden[entry] for entry, _ in line) != 1:
                continue
            entries = [entry for entry, _ in line]
            choice = _first_choice(grid, hidden, [(entries, False), (entries, True)])
            if choice is None:  # cannot happen: a hidden entry >= 1 is balanced by a non-zero one
                raise RuntimeError("a line with one hidden entry has no other non-zero entry")
            hidden[choice] = True
            changed = True


def _first_choice(
    grid: _Grid, hidden: list[bool], scopes: Sequence[tuple[Iterable[int], bool]]
) -> int | None:
    """The first scope (entries, may use locked ones) that offers an entry to hide."""
    for entries, locked in scopes:
        choice = _smallest_visible(grid, hidden, entries, locked)
        if choice is not None:
            return choice
    return None


def _smallest_visible(
    grid: _Grid, hidden: list[bool], entries: Iterable[int], locked: bool = False
) -> int | None:
    """The cheapest non-zero published entry to hide: inner cells first, then the smallest value.

    Entries published elsewhere are considered only with `locked`.
    """
    visible = [
        e
        for e in set(entries)
        if not hidden[e] and grid.values[e] > 0 and (locked or not grid.locked[e])
    ]
    if not visible:
        return None
    return min(visible, key=lambda e: (grid.kind[e], grid.values[e], e))


def _determined(grid: _Grid, hidden: list[bool]) -> list[int]:
    """Hidden entries an attacker can still compute exactly from what is published.

    The attacker's feasible set is {A x = b, x >= 1} over the hidden entries. An entry is exact iff
    it is constant on the affine hull of that set, which is A x = b plus the entries pinned at their
    lower bound: a few LPs find those, then one null-space computation settles every entry at once
    (instead of a min and a max LP per hidden entry).
    """
    unknown = [entry for entry, hide in enumerate(hidden) if hide]
    if not unknown:
        return []
    # Imported here: SciPy's linear algebra and solvers weigh ~50 MB, paid only once tables
    # with hidden cells are checked (goal #9: every service under 150 MB).
    from scipy.linalg import null_space

    column = {entry: position for position, entry in enumerate(unknown)}
    equations: list[NDArray[np.float64]] = []
    right_sides: list[float] = []
    for line in grid.lines:
        coefficients = np.zeros(len(unknown))
        constant = 0
        for entry, sign in line:
            if hidden[entry]:
                coefficients[column[entry]] += sign
            else:
                constant += sign * grid.values[entry]
        if coefficients.any():
            equations.append(coefficients)
            right_sides.append(-constant)
    a_eq = np.array(equations)
    b_eq = np.array(right_sides, dtype=float)
    true_values = np.array([grid.values[entry] for entry in unknown], dtype=float)
    lower = np.minimum(true_values, 1.0)  # zeros are always published, so hidden means >= 1
    pinned = _pinned_at_lower_bound(a_eq, b_eq, lower, true_values)
    pins = np.zeros((len(pinned), len(unknown)))
    pins[np.arange(len(pinned)), pinned] = 1.0
    directions = null_space(np.vstack([a_eq, pins]))
    if directions.shape[1] == 0:
        return list(unknown)
    free = np.linalg.norm(directions, axis=1) > 1e-8
    return [entry for position, entry in enumerate(unknown) if not free[position]]


def _pinned_at_lower_bound(
    a_eq: NDArray[np.float64],
    b_eq: NDArray[np.float64],
    lower: NDArray[np.float64],
    true_values: NDArray[np.float64],
) -> list[int]:
    """Unknowns equal to their lower bound in every solution of {a_eq x = b_eq, x >= lower}.

    Only unknowns whose true value is the bound can be pinned. Maximise the sum of
    s_i <= min(x_i - lower_i, 1) over them; those with s_i > 0 are free, drop them, repeat; when the
    optimum is 0 the rest are pinned. The system is totally unimodular (a bipartite graph of lines
    and entries), so a free unknown can reach lower + 1 and the optimum is then >= 1: no rounding
    trap.
    """
    from scipy.optimize import linprog  # lazily, as in _determined

    candidates = [int(i) for i in np.flatnonzero(true_values == lower)]
    n = len(lower)
    while candidates:
        m = len(candidates)
        objective = np.concatenate([np.zeros(n), -np.ones(m)])
        a_ub = np.zeros((m, n + m))
        a_ub[np.arange(m), candidates] = -1.0
        a_ub[np.arange(m), n + np.arange(m)] = 1.0
        result = linprog(
            objective,
            A_ub=a_ub,
            b_ub=-lower[candidates],
            A_eq=np.hstack([a_eq, np.zeros((a_eq.shape[0], m))]),
            b_eq=b_eq,
            bounds=[(float(bound), None) for bound in lower] + [(0.0, 1.0)] * m,
            method="highs",
        )
        if result.status != 0:  # the true values are a solution, so this is a solver failure
            raise RuntimeError(f"suppression check failed: {result.message}")
        slack = result.x[n:]
        if slack.sum() < 0.5:
            return candidates
        candidates = [c for c, s in zip(candidates, slack, strict=True) if s <= 0.5 / m]
    return []


def _check_threshold(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError("the threshold k must be an integer >= 1")


def _validated(
    rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]
) -> list[list[int]]:
    if len(counts) != len(rows):
        raise ValueError(f"{len(counts)} rows of counts for {len(rows)} row labels")
    matrix: list[list[int]] = []
    for label, row in zip(rows, counts, strict=True):
        if len(row) != len(columns):
            raise ValueError(f"row {label!r} has {len(row)} counts for {len(columns)} columns")
        for value in row:
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"row {label!r}: counts must be non-negative integers")
        matrix.append([int(value) for value in row])
    return matrix


def protect_linked(
    columns: Sequence[str],
    totals: Sequence[int],
    breakdowns: Mapping[str, tuple[Sequence[str], Sequence[Sequence[int]]]],
    k: int = DEFAULT_THRESHOLD,
) -> tuple[ProtectedTable, dict[str, ProtectedTable]]:
    """Protect a series of totals and every breakdown of it together, as one release.

    Each breakdown shares the series as its column totals and its grand total. All of them form
    one system of equations (one entry per shared total), suppressed and checked at once: an
    attacker holding every table cannot pin a number that any one of them hides.
    """
    _check_threshold(k)
    grid = _LinkedGrid(
        [int(t) for t in _validated(("totals",), columns, (totals,))[0]],
        {name: _validated(rows, columns, counts) for name, (rows, counts) in breakdowns.items()},
    )
    hidden = _suppress(grid, k, [False] * len(grid.values))
    series = grid.publish_series(tuple(columns), hidden)
    tables = {
        name: grid.publish_breakdown(name, tuple(rows), tuple(columns), hidden)
        for name, (rows, _) in breakdowns.items()
    }
    return series, tables


class _LinkedGrid(_Grid):
    """A series of totals and its breakdowns as one grid: the shared totals are single entries."""

    def __init__(self, totals: list[int], breakdowns: Mapping[str, list[list[int]]]) -> None:
        n_columns = len(totals)
        self.n_rows, self.n_columns = 1, n_columns
        self.values = [*totals, sum(totals)]
        self.kind = [_MARGIN] * n_columns + [_GRAND_TOTAL]
        grand = n_columns
        self.lines = [(*((j, 1) for j in range(n_columns)), (grand, -1))]
        self.offsets: dict[str, tuple[int, int]] = {}
        for name, matrix in breakdowns.items():
            for j in range(n_columns):
                if sum(row[j] for row in matrix) != totals[j]:
                    raise ValueError(f"breakdown {name!r} does not add up to the totals")
            start, width = len(self.values), n_columns + 1
            self.offsets[name] = (start, len(matrix))
            for row in matrix:
                self.values += [*row, sum(row)]
                self.kind += [_CELL] * n_columns + [_MARGIN]
            for i in range(len(matrix)):
                base = start + i * width
                self.lines.append(
                    (*((base + j, 1) for j in range(n_columns)), (base + n_columns, -1))
                )
            for j in range(n_columns):
                entries = tuple((start + i * width + j, 1) for i in range(len(matrix)))
                self.lines.append((*entries, (j, -1)))
            row_totals = tuple((start + i * width + n_columns, 1) for i in range(len(matrix)))
            self.lines.append((*row_totals, (grand, -1)))
        self.locked = [False] * len(self.values)
        self.lines_of = [[] for _ in self.values]
        for number, line in enumerate(self.lines):
            for entry, _ in line:
                self.lines_of[entry].append(number)

    def _shown(self, hidden: list[bool]) -> list[int | None]:
        return [None if hide else v for v, hide in zip(self.values, hidden, strict=True)]

    def publish_series(self, columns: tuple[str, ...], hidden: list[bool]) -> ProtectedTable:
        shown = self._shown(hidden)
        totals = tuple(shown[: self.n_columns])
        return ProtectedTable(
            rows=("all",),
            columns=columns,
            cells=(totals,),
            row_totals=(shown[self.n_columns],),
            column_totals=totals,
            total=shown[self.n_columns],
            suppressed=sum(hidden[: self.n_columns + 1]),
        )

    def publish_breakdown(
        self, name: str, rows: tuple[str, ...], columns: tuple[str, ...], hidden: list[bool]
    ) -> ProtectedTable:
        shown = self._shown(hidden)
        start, n_rows = self.offsets[name]
        width = self.n_columns + 1
        grid = [shown[start + i * width : start + (i + 1) * width] for i in range(n_rows)]
        own = range(start, start + n_rows * width)
        return ProtectedTable(
            rows=rows,
            columns=columns,
            cells=tuple(tuple(row[: self.n_columns]) for row in grid),
            row_totals=tuple(row[self.n_columns] for row in grid),
            column_totals=tuple(shown[: self.n_columns]),
            total=shown[self.n_columns],
            suppressed=sum(hidden[e] for e in own) + sum(hidden[: self.n_columns + 1]),
        )
