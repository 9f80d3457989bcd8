"""The analytics bench without servers: the seeded year is repeatable, shaped like the
simulation's programme, and its rows add up."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from huddle_bench.measures.analytics import (
    COLUMNS,
    MEASURES,
    NETWORK,
    QUERIES,
    NetworkShape,
    network_year,
    wide_tables,
)
from huddle_bench.model import RunResult
from huddle_bench.registry import summarise

SMALL = NetworkShape(
    hospitals=4, months=3, requests_per_hospital_month=40, peers_per_hospital=10, survey_pairs=200
)


def test_the_same_seed_gives_the_same_year_and_another_seed_another() -> None:
    first = network_year(SMALL, year=2025, seed=6)
    assert network_year(SMALL, year=2025, seed=6).rows == first.rows
    assert network_year(SMALL, year=2025, seed=7).rows != first.rows


def test_every_row_fits_its_table_and_the_counts_add_up() -> None:
    year = network_year(SMALL, year=2025, seed=6, records=True)
    for table, rows in year.rows.items():
        assert all(len(row) == len(COLUMNS[table]) for row in rows), table
        assert all(row[0] == NETWORK for row in rows), table
    cases = year.rows["support_case"]
    events = year.events
    assert events["support_requested"] == len(cases)
    assert events["session_completed"] == len(year.rows["session_record"])
    assert events["referral_made"] == len(year.rows["referral_record"])
    assert events["adverse_event_reported"] == len(year.rows["adverse_event"])
    matched = [c for c in cases if c[11] is not None]
    assert events["peer_matched"] == events["first_contact"] == len(matched)
    assert events["support_withdrawn"] + len(matched) == len(cases)
    assert sum(c[10] for c in cases) == events["offer_made"]
    # One pre per respondent; the pairs asked for, and about one pre in seven left unpaired.
    phases = Counter(r[5] for r in year.rows["survey_response"])
    assert phases["post"] == year.survey_pairs == SMALL.survey_pairs
    assert phases["pre"] == SMALL.survey_pairs * 8 // 7
    # Records are staged for the last month only (the backlog waiting for release).
    backlog = datetime(2025, 3, 1, tzinfo=UTC)
    records = year.rows["programme_record"]
    assert records and all(backlog <= r[2] < datetime(2025, 4, 1, tzinfo=UTC) for r in records)


def test_the_year_is_shaped_like_the_simulated_programme() -> None:
    year = network_year(
        NetworkShape(
            hospitals=12, months=12, requests_per_hospital_month=20, peers_per_hospital=10,
            survey_pairs=0,
        ),
        year=2025,
        seed=6,
    )  # fmt: skip
    cases = year.rows["support_case"]
    origins = Counter(c[5] for c in cases)
    assert 0.2 < origins["outreach"] / len(cases) < 0.3  # about a quarter after adverse events
    assert 0.25 < sum(1 for c in cases if c[6] == "urgent") / len(cases) < 0.35
    matched = [c for c in cases if c[11] is not None]
    assert 0.25 < sum(1 for c in matched if c[20]) / len(matched) < 0.35  # referred on
    # Every time is inside the year or just after it, and in the order of the journey.
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    for c in matched:
        assert start <= c[8] < c[9] < c[11] < c[15] <= c[18] < end
    # Hospitals are of uneven size: the largest asks several times what the smallest does.
    by_hospital = Counter(c[2] for c in cases)
    assert max(by_hospital.values()) > 3 * min(by_hospital.values())


def test_the_wide_tables_add_up_to_their_totals_whatever_the_split() -> None:
    year = network_year(SMALL, year=2025, seed=6)
    for hospitals in (4, 12):
        months, totals, breakdowns = wide_tables(year, hospitals)
        assert len(months) == 12 and sum(totals) == len(year.rows["support_case"])
        assert len(breakdowns["hospital"][0]) == hospitals
        for _, counts in breakdowns.values():
            assert [sum(column) for column in zip(*counts, strict=True)] == totals


def test_the_dashboard_is_judged_on_its_slowest_query() -> None:
    dashboard = next(m for m in MEASURES if m.name == "analytics_dashboard")
    base = {"raw_p99_ms": 5.0, "raw_p50_ms": 1.0, "cases": 1, "sessions": 1, "survey_pairs": 1}
    fast = {"p99_ms": 150.0, "worst_p99_ms": 190.0, "p99_ms:dashboard": 150.0, **base}
    slow = {**fast, "worst_p99_ms": 250.0, "p99_ms:follow_ups": 250.0}
    met = summarise(dashboard, [RunResult(metrics=fast)], None)
    missed = summarise(dashboard, [RunResult(metrics=slow)], None)
    assert met.goal_met is True and met.limits == []
    assert met.ratio is not None and met.ratio.median == 30.0
    assert missed.goal_met is False
    assert "`follow_ups` 250 ms" in missed.limits[0]


def test_the_explanation_says_results_are_materialised_and_what_a_cold_one_costs() -> None:
    dashboard = next(m for m in MEASURES if m.name == "analytics_dashboard")
    warm = {f"p99_ms:{name}": 5.0 for name in QUERIES}
    cold = {f"cold_ms:{name}": 100.0 for name in QUERIES} | {"cold_ms:follow_ups": 900.0}
    metrics = {
        **warm,
        **cold,
        "p99_ms": 5.0,
        "worst_p99_ms": 5.0,
        "cold_ms": 2_800.0,
        "raw_p99_ms": 50.0,
        "raw_p50_ms": 25.0,
        "cases": 164_000,
        "sessions": 250_000,
        "survey_pairs": 50_000,
        "scopes_warmed": 101,
        "results_warmed": 6_000,
        "warm_s": 20.0,
        "warm_network_s": 3.0,
    }
    outcome = summarise(dashboard, [RunResult(metrics=metrics)], None)
    assert outcome.goal_met is True
    told = " ".join(outcome.limits)
    assert "materialised per closed month" in told
    assert "the dashboard takes 2,800 ms" in told
    assert "`follow_ups` 900 ms" in told
    assert "101 scopes" in told
