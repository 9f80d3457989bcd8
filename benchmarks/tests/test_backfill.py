"""The back-fill's synthetic reports without servers: seeded, distinct, and valid to intake."""

from __future__ import annotations

from huddle_bench.measures.backfill import (
    BACKFILL,
    MEASURES,
    NETWORK,
    BackfillParams,
    directory_csv,
    inbound_reports,
    staff_directory,
)
from huddle_bench.model import RunResult
from huddle_bench.registry import summarise
from huddle_contracts.cloudevents import from_record
from huddle_intake.adapters.report_formats import read_report
from huddle_intake.application.directory_import import parse_directory_csv
from huddle_intake.domain.outreach_policy import DEFAULT_POLICY, qualifies

PARAMS = BackfillParams(reports=300, hospitals=3, staff_per_unit=4)


def test_reports_are_seeded_distinct_and_accepted_by_intakes_own_reader() -> None:
    staff = staff_directory(6, PARAMS)
    reports = list(inbound_reports(6, 300, staff))
    assert [r.value for r in reports] == [r.value for r in inbound_reports(6, 300, staff)]
    assert [r.value for r in reports] != [r.value for r in inbound_reports(7, 300, staff)]
    events = [from_record(r.headers, r.value) for r in reports]
    assert len({e.id for e in events}) == len({r.key for r in reports}) == 300
    assert {e.extensions["network"] for e in events} == {NETWORK}
    known = {s.ref for s in staff}
    unknown = 0
    for report, event in zip(reports, events, strict=True):
        read = read_report(event.data, event.datacontenttype)  # raises if intake would refuse it
        unknown += sum(p.staff_refs[0] not in known for p in read.involved)
        assert read.reporter_event_id.encode() == report.key
        assert report.involved == len(read.involved) == len({p.staff_refs for p in read.involved})
        # The expected outreach is what intake's default policy decides.
        assert report.outreach == qualifies(read, DEFAULT_POLICY)
        assert all(p.manager_ref in known for p in read.involved if p.staff_refs[0] not in known)
    outreach = sum(r.outreach for r in reports) / len(reports)
    assert 0.05 < outreach < 0.35  # most incidents do not reach the policy, some do
    assert unknown > 0  # agency staff the directory does not know, placed by their manager


def test_the_directory_is_a_valid_import_with_every_manager_in_it() -> None:
    staff = staff_directory(6, PARAMS)
    parsed = parse_directory_csv(directory_csv(staff))
    refs = {row.staff_ref for _, row in parsed.rows}
    assert len(refs) == len(staff) == PARAMS.hospitals * (1 + 5 * (1 + PARAMS.staff_per_unit))
    assert {row.manager_ref for _, row in parsed.rows if row.manager_ref} <= refs


def test_a_missed_goal_or_a_failed_count_is_not_met_and_says_what_limits_it() -> None:
    [measure] = MEASURES
    metrics = {
        "reports_per_s": 400.0,
        "raw_reports_per_s": 40_000.0,
        "ms_per_report": 2.5,
        "cpu_ms_per_report": 1.0,
        "reports_per_transaction": 250.0,
    }
    slow = summarise(measure, [RunResult(metrics=dict(metrics))], None)
    assert slow.goal_met is False and slow.ratio is not None and slow.ratio.median == 0.01
    assert "400 reports/s" in slow.limits[0] and "2.50 ms" in slow.limits[0]
    fast = {**metrics, "reports_per_s": 6_000.0}
    lost = RunResult(metrics=fast, checks={"every report handled once": False})
    assert summarise(measure, [lost], None).goal_met is False
    assert summarise(measure, [RunResult(metrics=fast)], None).goal_met is True
    assert BACKFILL[True].reports < BACKFILL[False].reports
