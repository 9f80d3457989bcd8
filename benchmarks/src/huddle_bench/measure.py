"""A measure's definition: what it runs, its baseline, its goal and how it is judged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from huddle_bench.context import Context
from huddle_bench.model import Outcome, RunResult

Server = Literal["kafka", "postgres"]


@dataclass(frozen=True)
class Baseline:
    """Where the denominator comes from: another measure's run, or the same run (``None``)."""

    measure: str | None
    metric: str
    label: str


@dataclass(frozen=True)
class Measure:
    name: str
    title: str
    kind: Literal["baseline", "goal"]
    needs: frozenset[Server]
    run: Callable[[Context], Awaitable[RunResult]]
    headline: str
    headline_label: str
    unit: str
    goal_id: str | None = None
    goal: str = ""
    about: str = ""
    baseline: Baseline | None = None
    ratio_label: str | None = None
    # Throughput ratios: higher is better. Cost ratios (time ÷ baseline time): lower is better.
    ratio_higher_is_better: bool = True
    judge: Callable[[Outcome], bool | None] | None = None
    explain: Callable[[Outcome], list[str]] | None = None
    # The metric divided by the baseline, when not the headline (e.g. a median, not a p99).
    ratio_numerator: str | None = None

    @property
    def depends(self) -> tuple[str, ...]:
        if self.baseline is not None and self.baseline.measure is not None:
            return (self.baseline.measure,)
        return ()
