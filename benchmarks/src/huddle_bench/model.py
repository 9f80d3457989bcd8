"""What a measure returns and how its runs are summarised: plain data, written to JSON."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class RunResult:
    """One run of one measure."""

    metrics: dict[str, float]
    # Raw samples for plots (latencies, roster sizes…), kept for the median run only.
    series: dict[str, list[float]] = field(default_factory=dict)
    # Invariants that must hold whatever the timing (e.g. nobody over capacity).
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Stat:
    """Median of the runs with their min and max."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))


@dataclass
class Outcome:
    """A measure's runs, summarised against its baseline and judged against its goal."""

    name: str
    title: str
    kind: str  # "baseline" or "goal"
    goal_id: str | None
    goal: str
    headline: str
    headline_label: str
    unit: str
    metrics: dict[str, Stat]
    runs: list[RunResult]
    baseline_label: str | None = None
    baseline: Stat | None = None
    ratio_label: str | None = None
    ratio: Stat | None = None
    ratio_higher_is_better: bool = True
    goal_met: bool | None = None
    checks_ok: bool = True
    limits: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): always one of the samples, never interpolated."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) on log(size): 1.0 is linear growth, 0 is flat."""
    if len(sizes) < 2:
        return float("nan")
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(v, 1e-12)) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def median_run(runs: Sequence[RunResult], metric: str) -> RunResult:
    """The run whose ``metric`` is the median (the lower middle for an even count); the first
    run when none measured it."""
    ordered = sorted(runs, key=lambda r: r.metrics.get(metric, math.inf))
    return ordered[(len(ordered) - 1) // 2]
