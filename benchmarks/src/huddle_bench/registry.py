"""The registry of measures: what each runs, its baseline, its goal and what limits it."""

from __future__ import annotations

import math

from huddle_bench.measure import Baseline, Measure
from huddle_bench.measures import analytics, backfill, intake_http, stack
from huddle_bench.measures.kafka import kafka_producer_throughput, kafka_round_trip
from huddle_bench.measures.matching import matching_decision, surge
from huddle_bench.measures.outbox import outbox_relay
from huddle_bench.model import Outcome, RunResult, Stat, median_run

# A growth exponent at or above this is called linear (1.0 exactly is linear; noise blurs it).
LINEAR_EXPONENT = 0.8


# --------------------------------------------------------------------------- goals


def _relay_met(o: Outcome) -> bool | None:
    return None if o.ratio is None else o.ratio.median >= 0.5


def _relay_limits(o: Outcome) -> list[str]:
    if o.ratio is None or o.ratio.median >= 0.5:
        return []
    return [
        "The relay works in stop-and-wait batches: it reads up to 500 rows, hands them to the "
        "producer one `await` at a time, waits for every acknowledgement, deletes the rows and "
        "commits before it reads the next batch, so Kafka sits idle during the database work "
        "and the database sits idle during the acknowledgements.",
        "Each row's headers are decoded from JSON and re-encoded per record; the raw producer "
        "sends the same bytes with no database round trip at all.",
    ]


def _decision_met(o: Outcome) -> bool | None:
    p99 = o.metrics.get("p99_ms")
    exponent = o.metrics.get("growth_exponent")
    if p99 is None or exponent is None:
        return None
    return p99.median <= 2.0 and exponent.median < LINEAR_EXPONENT


def _decision_limits(o: Outcome) -> list[str]:
    if "growth_exponent" not in o.metrics or "us_per_peer" not in o.metrics:
        return []
    exponent = o.metrics["growth_exponent"].median
    per_peer = o.metrics["us_per_peer"].median
    notes: list[str] = []
    if exponent >= LINEAR_EXPONENT:
        notes.append(
            f"**Grows linearly** (exponent {exponent:.2f} from the smallest roster to the "
            "largest): `offer_next` loads the whole network's roster (`repository.roster`) and "
            "`rank` runs the eight hard rules on every peer, then scores the eligible ones, for "
            f"every decision: about {per_peer:.1f} µs per peer here, so 70,000 peers cost "
            f"{per_peer * 70:.0f} ms before any I/O."
        )
        frozen = o.metrics.get("p50_ms_roster_frozen")
        if frozen is not None and frozen.median < o.metrics["p50_ms"].median:
            share = 1 - frozen.median / o.metrics["p50_ms"].median
            notes.append(
                f"About {share:.0%} of the median decision is Python's garbage collector: `rank` "
                "allocates an `Exclusion` (with its list and tuple of reasons) for nearly every "
                "peer of the network, and those allocations set off full collections that walk "
                f"the whole roster (p50 {frozen.median:.0f} ms with the roster frozen out of the "
                "collector's sight by `gc.freeze`)."
            )
        notes.append(
            "Not counted here, and also linear: reading the roster from PostgreSQL (one row per "
            "peer of the network, with a count of open offers each) on every decision."
        )
        notes.append(
            "What would make it sub-linear: rank only the request's hospital (an index by "
            "hospital, widening to the network only when needed) and keep a per-hospital set of "
            "eligible peers with free slots, so a decision touches tens of peers, not the network."
        )
    return notes


def _surge_met(o: Outcome) -> bool | None:
    seconds = o.metrics.get("seconds")
    if seconds is None:
        return None
    return seconds.median <= 5.0 and o.checks_ok


def _surge_limits(o: Outcome) -> list[str]:
    m = {k: v.median for k, v in o.metrics.items()}
    split = ("seconds", "matrix_s", "pairs", "solver_s", "fallback_s", "offered_by_fallback")
    notes: list[str] = []
    if all(k in m for k in split) and m["seconds"] > 5.0:
        notes.append(
            f"Of {m['seconds']:.1f} s: building the cost matrix {m['matrix_s']:.1f} s "
            f"({m['pairs']:,.0f} need x slot pairs, each through every hard rule and the score in "
            f"Python), SciPy's solver {m['solver_s']:.2f} s, and {m['fallback_s']:.1f} s for "
            f"{m['offered_by_fallback']:,.0f} requests the batch left without a peer, each one a "
            "full `offer_next` over the network roster (hospital, then network)."
        )
        notes.append(
            "`assign_batch` also counts each peer's earlier slots with a scan of the slot list "
            "(quadratic in slots), and evaluates a peer's hard rules once per slot rather than "
            "once per peer."
        )
    if m.get("peers_over_capacity", 0) > 0:
        over, alone = m["peers_over_capacity"], m.get("batch_alone_over_capacity", 0)
        notes.append(
            f"**{over:.0f} peers end up over capacity** (pending offers beyond their free slots), "
            f"while the batch alone puts {alone:.0f} over. `offer_surge` walks the searches in "
            "order and runs `offer_next` for an unassigned one before the batch's offers to later "
            "searches are written, so the roster `offer_next` reads still shows those reserved "
            "slots as free. Making every batch offer first, then the fallbacks, removes it "
            "(checked in process)."
        )
    return notes


# --------------------------------------------------------------------------- registry

_CORE: tuple[Measure, ...] = (
    Measure(
        name="kafka_round_trip",
        title="Kafka round trip (raw aiokafka, acks=all, produce then consume)",
        kind="baseline",
        needs=frozenset({"kafka"}),
        run=kafka_round_trip,
        about=(
            "One record at a time: send with acks=all (idempotent, no linger), then wait "
            "until a consumer assigned to the partition (read_committed) receives it. The "
            "record is a real OfferMade with its CloudEvent headers. The floor for any "
            "latency through Kafka on this machine."
        ),
        headline="p50_ms",
        headline_label="p50",
        unit="ms",
        goal="the floor for any latency through Kafka",
    ),
    Measure(
        name="kafka_producer_throughput",
        title="Kafka producer throughput (raw aiokafka, Huddle's producer settings)",
        kind="baseline",
        needs=frozenset({"kafka"}),
        run=kafka_producer_throughput,
        about=(
            "The same OfferMade records the relay publishes, sent by raw aiokafka with "
            "Huddle's producer settings (acks=all, idempotent, linger 5 ms): hand every "
            "record to the producer, then wait for every acknowledgement. The ceiling for "
            "the relay."
        ),
        headline="msgs_per_s",
        headline_label="throughput",
        unit="msgs/s",
        goal="the ceiling for the outbox relay",
    ),
    Measure(
        name="outbox_relay",
        title="Outbox relay throughput (huddle_runtime.outbox.OutboxRelay)",
        kind="goal",
        needs=frozenset({"kafka", "postgres"}),
        run=outbox_relay,
        about=(
            "Matching's schema migrated with the runtime's own migrations; its outbox filled "
            "with the same OfferMade records through `add_to_outbox`; then "
            "`huddle_runtime.outbox.OutboxRelay.run` (advisory lock, batches of 500, "
            "SKIP LOCKED, acks then DELETE) with a real producer until every row is published "
            "and deleted. Timed from the relay's start to the last batch's commit."
        ),
        headline="msgs_per_s",
        headline_label="throughput",
        unit="msgs/s",
        goal_id="#6",
        goal="relay throughput ≥ 0.5 x raw producer throughput",
        baseline=Baseline("kafka_producer_throughput", "msgs_per_s", "raw producer"),
        ratio_label="relay ÷ raw producer",
        judge=_relay_met,
        explain=_relay_limits,
    ),
    Measure(
        name="matching_decision",
        title="Matching decision per request (eligibility, scoring, choice; in process)",
        kind="goal",
        needs=frozenset(),
        run=matching_decision,
        about=(
            "What `application.search.offer_next` computes for a new request, in process: "
            "`selection.rank` over the network's whole roster within the request's hospital "
            "(eight hard rules per peer, scores for the eligible), widened to the network when "
            "no one there is eligible. Synthetic seeded rosters of one network over 100 "
            "hospitals of uneven size; requests mixed 70% routine, 25% urgent, 5% crisis. "
            "Reading the roster from PostgreSQL is not included. Baseline: a Python loop over "
            "the same roster doing one comparison per peer."
        ),
        headline="p99_ms",
        headline_label="p99 at the goal's roster size",
        unit="ms",
        goal_id="#7",
        goal="70,000 peers in 100 hospitals: p99 ≤ 2 ms per decision, growth not linear",
        baseline=Baseline(None, "raw_loop_ms", "raw loop, one comparison per peer"),
        ratio_label="decision p50 ÷ raw loop",
        ratio_numerator="p50_ms",
        ratio_higher_is_better=False,
        judge=_decision_met,
        explain=_decision_limits,
    ),
    Measure(
        name="surge",
        title="Surge batch (one event, all offers; in process)",
        kind="goal",
        needs=frozenset(),
        run=surge,
        about=(
            "What `application.search.offer_surge` computes, in process: one adverse event in "
            "a hospital of 1,200 peers (half on call for the critical response) involving "
            "2,000 staff who all ask urgently (smoke: 300 staff, 200 peers, 9 x 100 "
            "elsewhere); `surge.assign_batch` (hard rules and scores for "
            "every need x free slot, SciPy's `linear_sum_assignment`), then, in the order "
            "`searches_for_event` returns them, each search's offer, or `offer_next`'s search "
            "(hospital, widened to the 19 other hospitals' 5,700 peers) for those the batch "
            "left without a peer, each offer counted as pending load. Database writes are not "
            "included. Baseline: one comparison per need x slot pair."
        ),
        headline="seconds",
        headline_label="all offers computed",
        unit="s",
        goal_id="#4",
        goal="one event involving 2,000 staff: all offers in ≤ 5 s, nobody over capacity",
        baseline=Baseline(None, "raw_pairs_s", "raw loop, one comparison per need x slot"),
        ratio_label="batch ÷ raw pair loop",
        ratio_numerator="batch_s",
        ratio_higher_is_better=False,
        judge=_surge_met,
        explain=_surge_limits,
    ),
)

# Each further measure module declares its own; registry order is run order (baselines first).
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        *_CORE,
        *intake_http.MEASURES,
        *stack.MEASURES,
        *backfill.MEASURES,
        *analytics.MEASURES,
    )
}


def selected(only: list[str] | None) -> list[Measure]:
    """The measures asked for plus the baselines they are divided by, in registry order."""
    if not only:
        return list(MEASURES.values())
    unknown = [name for name in only if name not in MEASURES]
    if unknown:
        raise KeyError(f"unknown measure(s): {', '.join(unknown)}; known: {', '.join(MEASURES)}")
    wanted = set(only)
    for name in only:
        wanted.update(MEASURES[name].depends)
    return [m for m in MEASURES.values() if m.name in wanted]


def summarise(
    measure: Measure, runs: list[RunResult], baseline_runs: list[RunResult] | None
) -> Outcome:
    """Median, min and max of every metric; the ratio run by run against the same run's baseline."""
    metrics = {
        key: Stat.of([r.metrics[key] for r in runs])
        for key in runs[0].metrics
        if all(key in r.metrics and math.isfinite(r.metrics[key]) for r in runs)
    }
    outcome = Outcome(
        name=measure.name,
        title=measure.title,
        kind=measure.kind,
        goal_id=measure.goal_id,
        goal=measure.goal,
        headline=measure.headline,
        headline_label=measure.headline_label,
        unit=measure.unit,
        metrics=metrics,
        runs=runs,
        checks_ok=all(all(r.checks.values()) for r in runs),
        series=median_run(runs, measure.headline).series,
        ratio_higher_is_better=measure.ratio_higher_is_better,
    )
    if measure.baseline is not None:
        base = measure.baseline
        denominators = runs if base.measure is None else (baseline_runs or [])
        if len(denominators) == len(runs):
            numerator = measure.ratio_numerator or measure.headline
            values = [r.metrics[base.metric] for r in denominators]
            outcome.baseline_label = base.label
            outcome.baseline = Stat.of(values)
            outcome.ratio_label = measure.ratio_label
            outcome.ratio = Stat.of(
                [r.metrics[numerator] / d for r, d in zip(runs, values, strict=True)]
            )
    if measure.judge is not None:
        outcome.goal_met = measure.judge(outcome)
    if measure.explain is not None and outcome.metrics:
        outcome.limits = measure.explain(outcome)
    return outcome
