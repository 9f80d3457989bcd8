"""Peer load and its fairness, and the percentiles of waiting times."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def gini(loads: Sequence[float]) -> float:
    """0 when every peer carries the same load, towards 1 when a few carry it all."""
    values = np.sort(np.asarray(loads, dtype=float))
    if values.size == 0 or values.sum() == 0:
        return 0.0
    ranks = np.arange(1, values.size + 1)
    return float(
        (2 * (ranks * values).sum()) / (values.size * values.sum())
        - (values.size + 1) / values.size
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))
