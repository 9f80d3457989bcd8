"""The harness without servers: the report writer, the smoke limits, and a tiny matching run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from huddle_bench.context import Context
from huddle_bench.measures.matching import DecisionParams, SurgeParams, measure_decisions, run_surge
from huddle_bench.model import Outcome, RunResult, Stat, growth_exponent, percentile
from huddle_bench.plots import draw_all
from huddle_bench.registry import MEASURES, selected, summarise
from huddle_bench.report import Report, write_json, write_markdown
from huddle_bench.smoke import SmokeLimit, check


def fake_runs(metric: str, values: list[float], **checks: bool) -> list[RunResult]:
    return [RunResult(metrics={metric: v}, checks=dict(checks)) for v in values]


def relay_outcome(relay: list[float], raw: list[float]) -> Outcome:
    return summarise(
        MEASURES["outbox_relay"],
        fake_runs("msgs_per_s", relay),
        fake_runs("msgs_per_s", raw),
    )


def test_ratios_are_taken_run_by_run_against_the_same_runs_baseline() -> None:
    outcome = relay_outcome(relay=[500, 900, 400], raw=[1000, 1000, 2000])
    assert outcome.ratio == Stat(median=0.5, min=0.2, max=0.9, n=3)
    assert outcome.baseline == Stat(median=1000, min=1000, max=2000, n=3)
    assert outcome.goal_met is True


def test_a_missed_goal_says_what_limits_it() -> None:
    outcome = relay_outcome(relay=[100, 120], raw=[1000, 1000])
    assert outcome.goal_met is False
    assert outcome.limits


def test_a_floor_passes_on_the_best_run_and_fails_below_it() -> None:
    floor = {"outbox_relay": SmokeLimit("outbox_relay", "floor", 0.3, measured="0.8")}
    assert all(v.ok for v in check([relay_outcome([200, 400], [1000, 1000])], floor))
    (verdict,) = check([relay_outcome([200, 250], [1000, 1000])], floor)
    assert not verdict.ok
    assert "0.25" in verdict.message


def test_a_ceiling_fails_above_it_and_absolute_times_are_never_checked() -> None:
    ceiling = {"surge": SmokeLimit("surge", "ceiling", 300, measured="100")}
    fast_machine = [RunResult(metrics={"seconds": 0.5, "raw_floor_s": 0.005})]
    slow_machine = [RunResult(metrics={"seconds": 30, "raw_floor_s": 0.3})]
    regressed = [RunResult(metrics={"seconds": 4, "raw_floor_s": 0.01})]
    surge = MEASURES["surge"]
    assert check([summarise(surge, fast_machine, None)], ceiling)[0].ok
    assert check([summarise(surge, slow_machine, None)], ceiling)[0].ok  # 100x, just slower
    assert not check([summarise(surge, regressed, None)], ceiling)[0].ok  # 400x the baseline


def test_a_failed_invariant_fails_whatever_the_ratio() -> None:
    runs = [
        RunResult(
            metrics={"seconds": 1, "raw_floor_s": 0.005},
            checks={"nobody over capacity": False},
        )
    ]
    verdicts = check([summarise(MEASURES["surge"], runs, None)], limits={})
    assert [v.ok for v in verdicts] == [False]
    assert "nobody over capacity" in verdicts[0].message


def test_a_baseline_is_selected_with_the_measure_divided_by_it() -> None:
    assert [m.name for m in selected(["outbox_relay"])] == [
        "kafka_producer_throughput",
        "outbox_relay",
    ]


def test_the_report_has_machine_results_ratios_goals_and_plots(tmp_path: Path) -> None:
    outcomes = [
        summarise(
            MEASURES["kafka_producer_throughput"], fake_runs("msgs_per_s", [1000, 1100, 900]), None
        ),
        relay_outcome(relay=[300, 350, 320], raw=[1000, 1000, 1000]),
    ]
    report = Report(
        command="python -m huddle_bench run --only outbox_relay",
        mode="full",
        runs=3,
        seed=6,
        started_at=datetime(2026, 5, 4, 9, 30, tzinfo=UTC),
        wall_s=61.0,
        machine={"cpu": "test cpu", "cores": 2, "memory_gib": 24.0, "python": "3.11.7"},
        outcomes=outcomes,
        verdicts=check(outcomes),
    )
    report.plots = draw_all({o.name: o for o in outcomes}, tmp_path / "plots")
    write_json(report, tmp_path / "latest.json")
    write_markdown(report, tmp_path / "BENCHMARKS.md", tmp_path)

    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["measures"]["outbox_relay"]["ratio"]["median"] == 320 / 1000
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "2 cores" in text
    assert "python -m huddle_bench run --only outbox_relay" in text
    assert "320 msgs/s [300 - 350]" in text
    assert "relay ÷ raw producer: 0.32 [0.3 - 0.35]" in text
    assert "| **no** |" in text  # goal #6 missed, and said so
    assert "What limits it" in text
    assert "![outbox_relay](plots/outbox_relay_throughput.png)" in text
    assert (tmp_path / "plots" / "outbox_relay_throughput.png").stat().st_size > 0


async def test_matching_decision_runs_at_a_tiny_size_on_postgresql(database_url: str) -> None:
    params = DecisionParams(
        sizes=(200, 800), goal_size=800, hospitals=10, decisions=12, offers=5, warmup=2
    )
    result = await measure_decisions(Context(smoke=True, database_url=database_url), params)
    assert result.metrics["decisions"] == 12
    assert result.metrics["p99_ms"] >= result.metrics["p50_ms"] > 0
    assert result.metrics["offer_next_p99_ms"] >= result.metrics["offer_next_p50_ms"] > 0
    assert result.series["size"] == [200, 800]
    outcome = summarise(MEASURES["matching_decision"], [result], None)
    assert outcome.ratio is not None and outcome.ratio.median > 1  # more than one indexed read


async def test_a_tiny_surge_offers_everyone_within_capacity_on_postgresql(
    database_url: str,
) -> None:
    params = SurgeParams(
        involved=30, event_hospital_peers=20, other_hospitals=2, peers_per_other_hospital=10
    )
    result = await run_surge(Context(smoke=True, database_url=database_url), params)
    m = result.metrics
    assert m["involved"] == 30 and m["offers"] + m["escalated"] == 30
    assert m["widened"] > 0  # 20 peers cannot take 30 staff: the rest widen to the network
    assert result.checks == {
        "nobody over capacity": True,
        "nobody involved is offered": True,
        "every request offered or escalated": True,
    }


def test_percentiles_and_growth() -> None:
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 99) == 99
    assert abs(growth_exponent([1, 10, 100], [2, 20, 200]) - 1) < 1e-9
    assert abs(growth_exponent([1, 10, 100], [5, 5, 5])) < 1e-9
