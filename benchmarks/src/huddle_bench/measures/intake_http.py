"""Filled in by issue #6's next slice."""

from __future__ import annotations

from huddle_bench.measure import Measure

MEASURES: tuple[Measure, ...] = ()
