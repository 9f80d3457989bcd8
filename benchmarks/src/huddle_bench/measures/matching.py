"""Goals #7 and #4 on PostgreSQL: matching's per-request decision and a surge, through
matching's own queries and use cases on a synthetic roster loaded into its schema."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import scipy.optimize
from huddle_contracts.vocabulary import Urgency
from huddle_matching.application.search import Matching, choose, offer_next, offer_surge
from huddle_matching.domain.matching_policy import MatchingPolicy
from huddle_matching.domain.preferences import PreferenceWeights
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.selection import Candidate, Scope
from huddle_matching.domain.support_need import SupportNeed
from huddle_runtime import database
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.unit_of_work import unit_of_work
from scipy.optimize import linear_sum_assignment

from huddle_bench.context import Context
from huddle_bench.measures.roster import (
    NETWORK,
    NOW,
    hospital_id,
    pseudonym,
    synthetic_need,
    synthetic_peer,
    synthetic_roster,
)
from huddle_bench.measures.roster_db import (
    TENANT,
    admin_transaction,
    copy_requests,
    load_roster,
    matching_pool,
    migrated,
    tenant_transaction,
)
from huddle_bench.model import RunResult, growth_exponent, percentile

WEIGHTS = MatchingPolicy().weights


async def decide(
    conn: asyncpg.Connection, need: SupportNeed, weights: PreferenceWeights
) -> tuple[Candidate | None, bool]:
    """What application.search.offer_next decides for a new request (`search.choose`: the
    hospital's candidates tier by tier), widened to the network when the hospital has no one.
    Returns the peer to offer (None: escalate) and whether the search widened."""
    chosen = await choose(conn, need, NOW, Scope.HOSPITAL, weights)
    if chosen is not None:
        return chosen, False
    return await choose(conn, need, NOW, Scope.NETWORK, weights), True


# The baseline: the least any decision reads, one indexed row in a tenant's transaction.
RAW_READ = "SELECT pseudonym FROM peer WHERE network_id = $1 AND hospital_id = $2 LIMIT 1"


# --------------------------------------------------------------------------- decision (#7)


@dataclass(frozen=True)
class DecisionParams:
    sizes: tuple[int, ...]
    goal_size: int
    hospitals: int = 100
    decisions: int = 300
    # Whole offer_next calls (search read, decision, offer written, outbox, commit) at the goal.
    offers: int = 100
    warmup: int = 20


DECISION = {
    False: DecisionParams(sizes=(1_000, 10_000, 30_000, 70_000, 100_000), goal_size=70_000),
    True: DecisionParams(sizes=(1_000, 10_000), goal_size=10_000, decisions=100, offers=30),
}


async def timed_decisions(
    ctx: Context, pool: asyncpg.Pool, needs: Sequence[SupportNeed], label: str
) -> tuple[list[float], list[float], int]:
    """Latencies of every decision, split into those that stayed in the hospital and all."""
    latencies_ms: list[float] = []
    in_hospital_ms: list[float] = []
    widened = 0
    with ctx.task(label, len(needs)) as bar:
        for need in needs:
            started = time.perf_counter()
            async with tenant_transaction(pool) as conn:
                _, wide = await decide(conn, need, WEIGHTS)
            elapsed = (time.perf_counter() - started) * 1000
            latencies_ms.append(elapsed)
            if wide:
                widened += 1
            else:
                in_hospital_ms.append(elapsed)
            bar.advance()
    return latencies_ms, in_hospital_ms, widened


async def raw_reads(pool: asyncpg.Pool, needs: Sequence[SupportNeed]) -> list[float]:
    latencies_ms = []
    for need in needs:
        started = time.perf_counter()
        async with tenant_transaction(pool) as conn:
            await conn.fetchval(RAW_READ, NETWORK, need.hospital_id)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    return latencies_ms


async def timed_offers(
    ctx: Context, pool: asyncpg.Pool, settings: ServiceSettings, needs: Sequence[SupportNeed]
) -> list[float]:
    """Whole offer_next calls, each in its own unit of work committed (fsync on)."""
    async with admin_transaction(settings) as conn:
        await copy_requests(conn, needs, status="searching")
    matching = Matching(clock=lambda: NOW)
    latencies_ms = []
    with ctx.task("offer_next, whole", len(needs)) as bar:
        for need in needs:
            started = time.perf_counter()
            async with unit_of_work(pool, TENANT, source="bench") as uow:
                await offer_next(uow, matching, need.case_id)
            latencies_ms.append((time.perf_counter() - started) * 1000)
            bar.advance()
    return latencies_ms


async def measure_decisions(ctx: Context, params: DecisionParams) -> RunResult:
    settings = await migrated(ctx)
    metrics: dict[str, float] = {}
    series: dict[str, list[float]] = {"size": [], "p50_ms": [], "p99_ms": [], "raw_ms": []}
    widened_total = 0
    async with matching_pool(ctx) as pool:
        for size in params.sizes:
            with ctx.task(f"loading {size:,} peers", None):
                await load_roster(
                    settings, synthetic_roster(size, hospitals=params.hospitals, seed=ctx.seed)
                )
            rng = random.Random(f"needs:{ctx.seed}:{size}")
            needs = [
                synthetic_need(rng, hospitals=params.hospitals)
                for _ in range(params.warmup + params.decisions)
            ]
            await timed_decisions(ctx, pool, needs[: params.warmup], "warming up")
            needs = needs[params.warmup :]
            latencies, in_hospital, widened = await timed_decisions(
                ctx, pool, needs, f"matching decisions, {size:,} peers"
            )
            raw = await raw_reads(pool, needs)
            p50, p99, raw_p50 = (
                percentile(latencies, 50),
                percentile(latencies, 99),
                percentile(raw, 50),
            )
            metrics |= {
                f"p50_ms@{size}": p50,
                f"p99_ms@{size}": p99,
                f"raw_read_ms@{size}": raw_p50,
                f"widened@{size}": widened,
            }
            if in_hospital:
                metrics[f"p99_ms_in_hospital@{size}"] = percentile(in_hospital, 99)
            for name, value in (
                ("size", size),
                ("p50_ms", p50),
                ("p99_ms", p99),
                ("raw_ms", raw_p50),
            ):
                series[name].append(float(value))
            widened_total += widened
            if size == params.goal_size:
                offers = await timed_offers(ctx, pool, settings, needs[: params.offers])
                metrics["offer_next_p50_ms"] = percentile(offers, 50)
                metrics["offer_next_p99_ms"] = percentile(offers, 99)
                series["latency_ms"] = latencies
    goal = params.goal_size
    metrics |= {
        "goal_size": goal,
        "decisions": params.decisions,
        "p50_ms": metrics[f"p50_ms@{goal}"],
        "p99_ms": metrics[f"p99_ms@{goal}"],
        "raw_read_ms": metrics[f"raw_read_ms@{goal}"],
        "growth_exponent": growth_exponent(series["size"], series["p50_ms"]),
        "growth_exponent_p99": growth_exponent(series["size"], series["p99_ms"]),
        "widened": widened_total,
    }
    if f"p99_ms_in_hospital@{goal}" in metrics:
        metrics["p99_ms_in_hospital"] = metrics[f"p99_ms_in_hospital@{goal}"]
    return RunResult(metrics=metrics, series=series)


async def matching_decision(ctx: Context) -> RunResult:
    return await measure_decisions(ctx, DECISION[ctx.smoke])


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
    """Times SciPy's solver inside assign_batch, which imports it from scipy.optimize when it
    runs (instrumentation only; the code is unchanged)."""
    solve = scipy.optimize.linear_sum_assignment

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return solve(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    scipy.optimize.linear_sum_assignment = timed
    try:
        yield
    finally:
        scipy.optimize.linear_sum_assignment = solve


async def run_surge(ctx: Context, params: SurgeParams) -> RunResult:
    """application.search.offer_surge on PostgreSQL, in one unit of work committed: the batch in
    the event's hospital, the batch widened to the network, the ordinary search for the rest."""
    settings = await migrated(ctx)
    scenario = surge_scenario(ctx.seed, params)
    event_id = uuid.UUID(int=random.Random(f"event:{ctx.seed}").getrandbits(128), version=4)
    needs = [dataclasses.replace(n, adverse_event_id=event_id) for n in scenario.needs]
    slots = sum(peer.free_slots for peer in scenario.event_peers)
    solver: list[float] = []
    async with matching_pool(ctx) as pool:
        with ctx.task("loading the surge's roster and requests", None):
            await load_roster(settings, scenario.network)
            async with admin_transaction(settings) as conn:
                await copy_requests(conn, needs, status="batching")
        with ctx.task(f"surge: {len(needs):,} staff", None), timed_solver(solver):
            started = time.perf_counter()
            async with unit_of_work(pool, TENANT, source="bench") as uow:
                made = await offer_surge(uow, Matching(clock=lambda: NOW), event_id)
            seconds = time.perf_counter() - started
        events = Counter(type(e).__name__ for e in uow.events)
        async with tenant_transaction(pool) as conn:
            over = await conn.fetchval(OVER_CAPACITY)
            statuses = dict(await conn.fetch(SURGE_STATUSES, event_id))
            involved_offered = await conn.fetchval(INVOLVED_OFFERED, event_id)
    raw_solver_s = raw_assignment(ctx.seed, len(needs), slots)
    raw_writes_s = await raw_writes(settings, len(needs))
    return RunResult(
        metrics={
            "seconds": seconds,
            "solver_s": sum(solver),
            "raw_solver_s": raw_solver_s,
            "raw_writes_s": raw_writes_s,
            "raw_floor_s": raw_solver_s + raw_writes_s,
            "involved": len(needs),
            "hospital_slots": slots,
            "offered_in_batches": made,
            "offers": events["OfferMade"],
            "widened": events["MatchEscalated"],
            "escalated": statuses.get("escalated", 0),
            "peers_over_capacity": over,
        },
        checks={
            "nobody over capacity": over == 0,
            "nobody involved is offered": involved_offered == 0,
            "every request offered or escalated": statuses.get("offered", 0)
            + statuses.get("escalated", 0)
            == len(needs),
        },
    )


OVER_CAPACITY = """SELECT count(*) FROM peer p
    JOIN (SELECT peer, count(*) AS n FROM offer WHERE status = 'open' GROUP BY peer) o
      ON o.peer = p.pseudonym
   WHERE p.active_cases + o.n > p.capacity"""
SURGE_STATUSES = """SELECT status, count(*) FROM support_request
   WHERE adverse_event_id = $1 GROUP BY status"""
INVOLVED_OFFERED = """SELECT count(*) FROM offer o JOIN support_request s USING (case_id)
   WHERE s.adverse_event_id = $1 AND o.peer = ANY (s.involved)"""


def raw_assignment(seed: int, rows: int, cols: int) -> float:
    """SciPy's solver alone on a random matrix of the batch's shape."""
    cost = np.random.default_rng(seed).uniform(-100, 0, size=(rows, max(cols, 1)))
    started = time.perf_counter()
    linear_sum_assignment(cost)
    return time.perf_counter() - started


async def raw_writes(settings: ServiceSettings, rows: int) -> float:
    """As many plain rows as the surge makes offers, inserted by one executemany and committed."""
    conn = await database.connect(settings)
    try:
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS raw_offer (id uuid, peer text, at timestamptz)"
        )
        records = [(uuid.uuid4(), f"p_{i}", NOW) for i in range(rows)]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.executemany("INSERT INTO raw_offer VALUES ($1, $2, $3)", records)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def surge(ctx: Context) -> RunResult:
    return await run_surge(ctx, SURGE[ctx.smoke])
