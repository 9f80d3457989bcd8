"""Pre/post change on one measure for the same people: the evidence the review found missing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real


@dataclass(frozen=True)
class PairedChange:
    """Mean change from before to after, with a paired t confidence interval."""

    n: int
    mean_pre: float
    mean_post: float
    mean_difference: float
    """Post minus pre: negative means the measure went down."""
    ci_low: float
    ci_high: float
    confidence: float


def paired_change(
    pre: Sequence[float], post: Sequence[float], confidence: float = 0.95
) -> PairedChange:
    """Paired t interval for the mean of post - pre; pre[i] and post[i] are the same person."""
    if isinstance(confidence, bool) or not isinstance(confidence, Real):
        raise ValueError("confidence must be a number between 0 and 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    before = _values("pre", pre)
    after = _values("post", post)
    if len(before) != len(after):
        raise ValueError(
            f"pre and post must pair up one to one, got {len(before)} and {len(after)}"
        )
    n = len(before)
    if n < 2:
        raise ValueError(f"a paired interval needs at least 2 pairs, got {n}")

    differences = [b - a for a, b in zip(before, after, strict=True)]
    mean_difference = math.fsum(differences) / n
    if all(d == differences[0] for d in differences):
        # No spread, no uncertainty: the interval is the point (and t * 0 must not become NaN).
        ci_low = ci_high = mean_difference
    else:
        # scipy.stats only when an interval is computed: importing it at start-up holds about
        # 28 MB in every analytics process (benchmarks, goal #9).
        from scipy import stats

        sd = math.sqrt(math.fsum((d - mean_difference) ** 2 for d in differences) / (n - 1))
        half_width = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
        ci_low, ci_high = mean_difference - half_width, mean_difference + half_width
    return PairedChange(
        n=n,
        mean_pre=math.fsum(before) / n,
        mean_post=math.fsum(after) / n,
        mean_difference=mean_difference,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=float(confidence),
    )


def _values(name: str, values: Sequence[float]) -> list[float]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of numbers")
    checked: list[float] = []
    for position, value in enumerate(values, start=1):
        # bool is a Real too, and NaN or infinity would poison every mean silently.
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"{name} value {position} must be a finite number")
        checked.append(float(value))
    return checked
