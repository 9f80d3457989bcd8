"""Goals #7 and #4, in process: matching's per-request decision and a surge batch."""

from __future__ import annotations

import dataclasses
import gc
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from huddle_contracts.vocabulary import Urgency
from huddle_matching.domain import surge as surge_module
from huddle_matching.domain.matching_policy import MatchingPolicy
from huddle_matching.domain.preferences import PreferenceWeights
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.selection import Candidate, Scope, rank
from huddle_matching.domain.support_need import SupportNeed

from huddle_bench.context import Context
from huddle_bench.measures.roster import (
    NOW,
    hospital_id,
    pseudonym,
    synthetic_need,
    synthetic_peer,
    synthetic_roster,
)
from huddle_bench.model import RunResult, growth_exponent, percentile

WEIGHTS = MatchingPolicy().weights


def decide(
    need: SupportNeed, peers: Sequence[Peer], now: datetime, weights: PreferenceWeights
) -> tuple[Candidate | None, bool]:
    """The domain part of application.search.offer_next for a new request: rank the whole
    network roster within the hospital, widen to the network when no one there is eligible.
    Returns the peer to offer (None: escalate) and whether the search widened."""
    best = rank(need, peers, now, scope=Scope.HOSPITAL, weights=weights).best
    if best is not None:
        return best, False
    return rank(need, peers, now, scope=Scope.NETWORK, weights=weights).best, True


def raw_loop(peers: Sequence[Peer], hospital: str) -> int:
    """The baseline: one comparison per peer, nothing else."""
    found = 0
    for peer in peers:
        if peer.hospital_id == hospital:
            found += 1
    return found


# --------------------------------------------------------------------------- decision (#7)


@dataclass(frozen=True)
class DecisionParams:
    sizes: tuple[int, ...]
    goal_size: int
    hospitals: int = 100
    # Decisions per roster size: enough for a p99 at small sizes, bounded at large ones.
    decision_budget: int = 3_000_000
    min_decisions: int = 20
    max_decisions: int = 300

    def decisions(self, size: int) -> int:
        return max(self.min_decisions, min(self.max_decisions, self.decision_budget // size))


DECISION = {
    False: DecisionParams(sizes=(1_000, 10_000, 70_000, 100_000), goal_size=70_000),
    True: DecisionParams(sizes=(1_000, 10_000), goal_size=10_000, max_decisions=100),
}


def roster_for(size: int, hospitals: int, seed: int) -> list[Peer]:
    """Built afresh for each size: only the roster being measured is alive, as in the service,
    so the collector's full passes never walk other sizes' peers."""
    return synthetic_roster(size, hospitals=hospitals, seed=seed)


@contextmanager
def collected() -> Iterator[None]:
    """Start each timed section from a collected heap, so one size's garbage is not billed to
    the next (the collector stays on: its pauses are part of a real decision)."""
    gc.collect()
    yield


def frozen_p50(needs: Sequence[SupportNeed], peers: Sequence[Peer]) -> float:
    """The same decisions with the roster moved out of the collector's sight (gc.freeze): the
    difference is what the collector's full passes over the roster cost."""
    gc.collect()
    gc.freeze()
    try:
        latencies_ms = []
        for need in needs:
            started = time.perf_counter()
            decide(need, peers, NOW, WEIGHTS)
            latencies_ms.append((time.perf_counter() - started) * 1000)
    finally:
        gc.unfreeze()
    return percentile(latencies_ms, 50)


def measure_decisions(ctx: Context, params: DecisionParams) -> RunResult:
    metrics: dict[str, float] = {}
    series: dict[str, list[float]] = {"size": [], "p50_ms": [], "p99_ms": [], "raw_ms": []}
    widened = 0
    for size in params.sizes:
        peers = roster_for(size, params.hospitals, ctx.seed)
        rng = random.Random(f"needs:{ctx.seed}:{size}")
        needs = [
            synthetic_need(rng, hospitals=params.hospitals) for _ in range(params.decisions(size))
        ]
        latencies_ms: list[float] = []
        with collected(), ctx.task(f"matching decisions, {size:,} peers", len(needs)) as bar:
            for need in needs:
                started = time.perf_counter()
                _, wide = decide(need, peers, NOW, WEIGHTS)
                latencies_ms.append((time.perf_counter() - started) * 1000)
                widened += wide
                bar.advance()
        if size == params.goal_size:
            metrics["p50_ms_roster_frozen"] = frozen_p50(needs[: params.min_decisions], peers)
        raw_ms: list[float] = []
        with collected():
            for need in needs[: max(5, len(needs) // 4)]:
                started = time.perf_counter()
                raw_loop(peers, need.hospital_id)
                raw_ms.append((time.perf_counter() - started) * 1000)
        p50, p99, raw = (
            percentile(latencies_ms, 50),
            percentile(latencies_ms, 99),
            percentile(raw_ms, 50),
        )
        metrics |= {
            f"p50_ms@{size}": p50,
            f"p99_ms@{size}": p99,
            f"raw_loop_ms@{size}": raw,
            f"decisions@{size}": len(needs),
        }
        for name, value in (("size", size), ("p50_ms", p50), ("p99_ms", p99), ("raw_ms", raw)):
            series[name].append(float(value))
        del peers, needs  # the next size starts with only its own roster alive
    goal = params.goal_size
    metrics |= {
        "goal_size": goal,
        "p50_ms": metrics[f"p50_ms@{goal}"],
        "p99_ms": metrics[f"p99_ms@{goal}"],
        "raw_loop_ms": metrics[f"raw_loop_ms@{goal}"],
        "us_per_peer": metrics[f"p50_ms@{goal}"] * 1000 / goal,
        "growth_exponent": growth_exponent(series["size"], series["p50_ms"]),
        "widened": widened,
    }
    return RunResult(metrics=metrics, series=series)


async def matching_decision(ctx: Context) -> RunResult:
    return measure_decisions(ctx, DECISION[ctx.smoke])


# --------------------------------------------------------------------------- surge (#4)


@dataclass(frozen=True)
class SurgeParams:
    involved: int
    event_hospital_peers: int
    other_hospitals: int
    peers_per_other_hospital: int
    # A critical response puts more of the event hospital's peers on call than usual.
    on_call_share: float = 0.5
    # Some of those involved are trained peers themselves (they are never offered).
    involved_peer_share: float = 0.03


SURGE = {
    False: SurgeParams(
        involved=2_000,
        event_hospital_peers=1_200,
        other_hospitals=19,
        peers_per_other_hospital=300,
    ),
    True: SurgeParams(
        involved=300, event_hospital_peers=200, other_hospitals=9, peers_per_other_hospital=100
    ),
}


@dataclass
class SurgeScenario:
    needs: list[SupportNeed]
    event_peers: list[Peer]
    network: list[Peer]


def surge_scenario(seed: int, params: SurgeParams) -> SurgeScenario:
    """One adverse event in hospital-000 touching ``involved`` staff, all asking urgently."""
    rng = random.Random(f"surge:{seed}:{params}")
    event_hospital = hospital_id(0)
    event_peers = [
        synthetic_peer(rng, event_hospital, on_call_share=params.on_call_share)
        for _ in range(params.event_hospital_peers)
    ]
    others = [
        synthetic_peer(rng, hospital_id(h))
        for h in range(1, params.other_hospitals + 1)
        for _ in range(params.peers_per_other_hospital)
    ]
    peers_involved = rng.sample(
        [p.pseudonym for p in event_peers], int(params.involved * params.involved_peer_share)
    )
    staff = peers_involved + [pseudonym(rng) for _ in range(params.involved - len(peers_involved))]
    involved = frozenset(staff)
    needs = [
        synthetic_need(
            rng,
            hospitals=1,
            urgency=Urgency.URGENT,
            hospital=event_hospital,
            requester=me,
            involved=involved,
        )
        for me in staff
    ]
    return SurgeScenario(needs, event_peers, event_peers + others)


@contextmanager
def timed_solver(spent: list[float]) -> Iterator[None]:
    """Times SciPy's solver inside assign_batch (instrumentation only; the code is unchanged)."""
    solve = surge_module.linear_sum_assignment  # type: ignore[attr-defined]

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return solve(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    surge_module.linear_sum_assignment = timed  # type: ignore[attr-defined]
    try:
        yield
    finally:
        surge_module.linear_sum_assignment = solve  # type: ignore[attr-defined]


def run_surge(ctx: Context, params: SurgeParams) -> RunResult:
    """application.search.offer_surge in process: the batch in the event's hospital, then the
    ordinary search (widening to the network) for whoever the batch left without a peer."""
    scenario = surge_scenario(ctx.seed, params)
    # The order searches_for_event returns them in: requested_at, then case id.
    needs = sorted(scenario.needs, key=lambda n: (n.requested_at, n.case_id))
    slots = [peer for peer in scenario.event_peers for _ in range(peer.free_slots)]
    solver: list[float] = []
    with collected(), ctx.task(f"surge: {len(needs):,} staff", len(needs)) as bar:
        started = time.perf_counter()
        with timed_solver(solver):
            assigned = surge_module.assign_batch(needs, scenario.event_peers, NOW, WEIGHTS)
        batch_s = time.perf_counter() - started
        # offer_surge first writes every offer of the batch (pending load the roster shows from
        # then on), then sends those the batch left out through offer_next, which reads the
        # roster as it stands at that moment.
        network = list(scenario.network)
        where = {peer.pseudonym: i for i, peer in enumerate(network)}
        load: Counter[str] = Counter()
        in_batch = by_fallback = unmatched = 0

        def take(peer: Peer) -> None:
            i = where[peer.pseudonym]
            network[i] = dataclasses.replace(
                network[i], pending_offers=network[i].pending_offers + 1
            )
            load[peer.pseudonym] += 1

        for need in needs:
            batched: Peer | None = assigned[need.case_id]
            if batched is not None:
                in_batch += 1
                take(batched)
                bar.advance()
        for need in needs:
            if assigned[need.case_id] is not None:
                continue
            best, _ = decide(need, network, NOW, WEIGHTS)
            by_fallback += best is not None
            unmatched += best is None
            if best is not None:
                take(best.peer)
            bar.advance()
        total_s = time.perf_counter() - started
    with collected():
        started = time.perf_counter()
        for need in needs:
            raw_loop(slots, need.hospital_id)
        raw_s = time.perf_counter() - started

    free = {peer.pseudonym: peer.free_slots for peer in scenario.network}
    over = [name for name, taken in load.items() if taken > free[name]]
    batch_load = Counter(peer.pseudonym for peer in assigned.values() if peer is not None)
    batch_over = [name for name, taken in batch_load.items() if taken > free[name]]
    involved = needs[0].involved if needs else frozenset()
    offered_involved = [name for name in load if name in involved]
    return RunResult(
        metrics={
            "seconds": total_s,
            "batch_s": batch_s,
            "solver_s": sum(solver),
            "matrix_s": batch_s - sum(solver),
            "fallback_s": total_s - batch_s,
            "raw_pairs_s": raw_s,
            "involved": len(needs),
            "slots": len(slots),
            "pairs": len(needs) * len(slots),
            "offered_in_batch": in_batch,
            "offered_by_fallback": by_fallback,
            "unmatched": unmatched,
            "peers_over_capacity": len(over),
            "batch_alone_over_capacity": len(batch_over),
        },
        checks={
            "nobody over capacity": not over,
            "nobody involved is offered": not offered_involved,
            "every request offered or escalated": in_batch + by_fallback + unmatched == len(needs),
        },
    )


async def surge(ctx: Context) -> RunResult:
    return run_surge(ctx, SURGE[ctx.smoke])
