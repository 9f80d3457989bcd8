"""Scale beyond one machine: partitions and replicas for 10, 100 and 1,000 hospitals, from the
per-process figures measured in the run (BENCHMARKS.md, "Scale beyond one machine").

The demand model is written out so that the arithmetic can be checked by hand:
- a pandemic wave: a fifth of every hospital's staff ask for support within the peak hour;
- on top of it, one mass-casualty event at a time: 2,000 staff of one hospital in 10 minutes;
- each request becomes about seven events on the bus (SupportRequested, OfferMade, PeerMatched,
  two SessionCompleted, CaseClosed, and its share of AdverseEventReported), all of which
  analytics consumes;
- replicas are sized for twice the peak (a replica may be down or rebalancing), partitions for
  twice the replicas (room to double the replicas without re-partitioning, which would break
  per-key order), never fewer than today's six.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from huddle_bench.model import Outcome

HOSPITAL_COUNTS = (10, 100, 1_000)


@dataclass(frozen=True)
class Demand:
    staff_per_hospital: int = 2_500
    wave_share_per_hour: float = 0.2
    surge_staff: int = 2_000
    surge_minutes: float = 10.0
    events_per_request: float = 7.0
    headroom: float = 2.0
    min_partitions: int = 6

    def requests_per_s(self, hospitals: int) -> float:
        wave = hospitals * self.staff_per_hospital * self.wave_share_per_hour / 3600
        return wave + self.surge_staff / (self.surge_minutes * 60)


@dataclass(frozen=True)
class Plan:
    hospitals: int
    requests_per_s: float
    events_per_s: float
    pipeline_replicas: int
    """Replicas of each service on the request path (intake, matching, sessions)."""
    analytics_replicas: int
    partitions: int


def replicas_for(load_per_s: float, per_replica_per_s: float, headroom: float) -> int:
    if per_replica_per_s <= 0:
        raise ValueError("a replica must complete something")
    return max(1, math.ceil(load_per_s * headroom / per_replica_per_s))


def partitions_for(replicas: int, demand: Demand) -> int:
    """Twice the replicas, rounded up to a multiple of six (today's count), at least six."""
    wanted = max(demand.min_partitions, 2 * replicas)
    return demand.min_partitions * math.ceil(wanted / demand.min_partitions)


def plan(
    hospitals: int,
    *,
    pipeline_rps: float,
    analytics_eps: float,
    demand: Demand = Demand(),
) -> Plan:
    """``pipeline_rps``: requests a second the whole request path completes on one machine (a
    floor for one replica of each of its services); ``analytics_eps``: events a second one
    analytics replica projects."""
    requests = demand.requests_per_s(hospitals)
    events = requests * demand.events_per_request
    pipeline = replicas_for(requests, pipeline_rps, demand.headroom)
    analytics = replicas_for(events, analytics_eps, demand.headroom)
    return Plan(
        hospitals=hospitals,
        requests_per_s=requests,
        events_per_s=events,
        pipeline_replicas=pipeline,
        analytics_replicas=analytics,
        partitions=partitions_for(max(pipeline, analytics), demand),
    )


def scale_section(outcomes: list[Outcome], demand: Demand = Demand()) -> list[str]:
    """The report's section; empty when the stack measures did not run."""
    by_name = {o.name: o for o in outcomes}
    offer, scaled = by_name.get("stack_offer_latency"), by_name.get("stack_scale_out")
    if offer is None or scaled is None:
        return []
    try:
        pipeline_rps = offer.metrics["saturation_rps"].median
        one = scaled.metrics["one_replica_eps"].median
        two = scaled.metrics["two_replicas_eps"].median
        speedup = scaled.metrics["speedup"].median
    except KeyError:
        return []
    lines = [
        "## Scale beyond one machine",
        "",
        f"Measured here (medians): the whole request path on this 2-core machine completes "
        f"**{pipeline_rps:,.0f} requests/s** (`stack_offer_latency`, best achieved rate over the "
        f"offered rates); one analytics replica projects **{one:,.0f} events/s** and two in the "
        f"same consumer group **{two:,.0f} events/s** (median speedup {speedup:.2f} x, "
        "`stack_scale_out`, "
        "both on the same 2 cores as Kafka and PostgreSQL).",
        "",
        f"Demand: a pandemic wave in which {demand.wave_share_per_hour:.0%} of each hospital's "
        f"{demand.staff_per_hospital:,} staff ask within the peak hour, plus one mass-casualty "
        f"event of {demand.surge_staff:,} staff in {demand.surge_minutes:g} minutes; "
        f"{demand.events_per_request:g} events per request on the bus (analytics consumes them "
        f"all). Replicas = ⌈peak x {demand.headroom:g} ÷ per-replica rate⌉; partitions = twice "
        f"the largest replica count, in multiples of {demand.min_partitions}.",
        "",
        "| hospitals | peak requests/s | peak events/s | replicas per request-path service "
        "| analytics replicas | partitions per topic |",
        "|---|---|---|---|---|---|",
    ]
    for hospitals in HOSPITAL_COUNTS:
        p = plan(hospitals, pipeline_rps=pipeline_rps, analytics_eps=one, demand=demand)
        lines.append(
            f"| {hospitals:,} | {p.requests_per_s:,.1f} | {p.events_per_s:,.0f} "
            f"| ⌈{p.requests_per_s:,.1f} x {demand.headroom:g} ÷ {pipeline_rps:,.0f}⌉ = "
            f"{p.pipeline_replicas} | ⌈{p.events_per_s:,.0f} x {demand.headroom:g} ÷ {one:,.0f}⌉ = "
            f"{p.analytics_replicas} | {p.partitions} |"
        )
    lines += [
        "",
        "The request-path figure is for every service sharing one machine, so it is a floor for "
        "a replica with a core of its own. A consumer group never uses more members than its "
        "topic has partitions, hence partitions ≥ replicas; past a few hundred requests a "
        "second the shared PostgreSQL (one schema per service, fsync per commit) is the next "
        "limit, and each service's schema can move to a server of its own.",
        "",
    ]
    return lines
