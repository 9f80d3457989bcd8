"""Open-loop load: requests sent on a fixed schedule whatever the answers, and the latencies of a
pipeline read off as (when a key started, when the same key came out the other end).

Pure functions, so the pacing and the matching are tested without servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from huddle_bench.model import percentile

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Phase:
    """``count`` requests offered at ``rate`` a second."""

    rate: float
    count: int

    @property
    def seconds(self) -> float:
        return self.count / self.rate


def schedule(phase: Phase, start: float) -> list[float]:
    """When each request is due: evenly spaced at the offered rate from ``start``."""
    return [start + i / phase.rate for i in range(phase.count)]


@dataclass(frozen=True)
class Paced:
    """How the generator kept to its schedule."""

    offered_rps: float
    """Requests started a second, first start to last."""
    worst_lag_s: float
    """The latest a start came behind its due time (the generator's own pacing error)."""


async def open_loop(
    phase: Phase,
    send: Callable[[int], Awaitable[None]],
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Paced:
    """Start ``send(i)`` at each due time without waiting for earlier ones to answer (a slow
    server does not slow the offered load); returns once every send has finished."""
    due = schedule(phase, clock())
    tasks: list[asyncio.Task[None]] = []
    worst_lag = 0.0
    first = last = due[0]
    for i, at in enumerate(due):
        wait = at - clock()
        if wait > 0:
            await sleep(wait)
        last = clock()
        worst_lag = max(worst_lag, last - at)
        tasks.append(asyncio.ensure_future(send(i)))
    await asyncio.gather(*tasks)
    span = last - first
    offered = (phase.count - 1) / span if span > 0 else float("inf")
    return Paced(offered_rps=offered, worst_lag_s=worst_lag)


@dataclass(frozen=True)
class Latencies:
    """Keys that went in and came out, their latencies in ms, and keys that never came out."""

    samples_ms: list[float]
    missing: int
    early: int
    """Came out before the start was recorded (the answer raced the response); counted as 0."""

    def p(self, q: float) -> float:
        return percentile(self.samples_ms, q) if self.samples_ms else float("nan")


def match(started: Mapping[Key, float], finished: Mapping[Key, float]) -> Latencies:
    """Latency of every started key that finished; seconds in, milliseconds out."""
    samples: list[float] = []
    missing = early = 0
    for key, began in started.items():
        ended = finished.get(key)
        if ended is None:
            missing += 1
            continue
        if ended < began:
            early += 1
        samples.append(max(0.0, ended - began) * 1000)
    return Latencies(samples, missing, early)


def achieved_rate(first_start: float, finished: Sequence[float]) -> float:
    """Completions a second, from the first request sent to the last completion."""
    if not finished:
        return 0.0
    span = max(finished) - first_start
    return len(finished) / span if span > 0 else float("inf")
