"""Smoke limits: regressions caught by ratios to a baseline measured in the same run.

Never an absolute time: a slower machine slows the baseline as much as the measure. Each limit
sits well clear of what the smoke run measures on the reference machine (2 cores, see
BENCHMARKS.md), so only a real regression, not noise or a busy CI neighbour, crosses it.
A run passes a limit if its best run does (noise only ever makes a run look worse).
"""

from __future__ import annotations

from dataclasses import dataclass

from huddle_bench.model import Outcome


@dataclass(frozen=True)
class SmokeLimit:
    measure: str
    # "floor": the ratio must stay at or above it; "ceiling": at or below it.
    bound: str
    value: float
    measured: str
    """What the smoke run measured when the limit was set, for the report."""


SMOKE_LIMITS: dict[str, SmokeLimit] = {
    limit.measure: limit
    for limit in (
        # relay ÷ raw producer: the relay falling to under a third of the producer's pace.
        SmokeLimit("outbox_relay", "floor", 0.30, measured="0.65 - 0.89"),
        # intake ÷ raw consumer over the same reports: a transaction per record again (a tenth
        # of the batch path's rate) crosses it.
        SmokeLimit("backfill", "floor", 0.0012, measured="0.0025 - 0.0096"),
        # decision p50 ÷ one indexed read in a tenant transaction: a decision reading a whole
        # hospital (or the roster) again instead of one tier.
        SmokeLimit("matching_decision", "ceiling", 12.0, measured="2.3 - 3.5"),
        # surge ÷ raw solver + raw inserts of the same sizes: the surge's work tripling.
        SmokeLimit("surge", "ceiling", 400.0, measured="57 - 129"),
        # request-to-offer p99 through the stack ÷ raw Kafka round trip p99: the smoke rates
        # already saturate the stack here, so only a stall (a relay or consumer waiting out a
        # poll interval per record) crosses it.
        SmokeLimit("stack_offer_latency", "ceiling", 1_000.0, measured="93 - 418"),
        # warm dashboard p99 ÷ raw grouped count p99 (sub-millisecond, so noisy) on the same
        # rows: stored answers no longer served; the invariants also check every warm request.
        SmokeLimit("analytics_dashboard", "ceiling", 60.0, measured="1.8 - 25"),
        # intake ÷ bare HTTP saturation: intake's CPU per request tripling.
        SmokeLimit("intake_http", "floor", 0.08, measured="0.25 - 0.45"),
    )
}


@dataclass(frozen=True)
class Verdict:
    measure: str
    ok: bool
    message: str


def best_ratio(outcome: Outcome, limit: SmokeLimit) -> float | None:
    if outcome.ratio is None:
        return None
    return outcome.ratio.max if limit.bound == "floor" else outcome.ratio.min


def check(outcomes: list[Outcome], limits: dict[str, SmokeLimit] | None = None) -> list[Verdict]:
    """One verdict per limit whose measure ran, plus one per measure whose invariants failed."""
    limits = SMOKE_LIMITS if limits is None else limits
    verdicts: list[Verdict] = []
    for outcome in outcomes:
        if not outcome.checks_ok:
            failed = sorted({k for r in outcome.runs for k, ok in r.checks.items() if not ok})
            verdicts.append(Verdict(outcome.name, False, "invariant failed: " + "; ".join(failed)))
        limit = limits.get(outcome.name)
        if limit is None:
            continue
        ratio = best_ratio(outcome, limit)
        if ratio is None:
            verdicts.append(Verdict(outcome.name, False, "no ratio: its baseline did not run"))
            continue
        ok = ratio >= limit.value if limit.bound == "floor" else ratio <= limit.value
        sign = "≥" if limit.bound == "floor" else "≤"
        verdicts.append(
            Verdict(
                outcome.name,
                ok,
                f"{outcome.ratio_label} = {ratio:.3g} (must be {sign} {limit.value:g})",
            )
        )
    return verdicts
