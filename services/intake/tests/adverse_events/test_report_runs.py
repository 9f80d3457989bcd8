"""A run of reports taken in at once (the inbound topic's batches) on the real database: each
report gets what it would get alone, a repeat in the run is its first's, and a refused report
writes nothing while the others are taken in."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from huddle_contracts.events import AdverseEventReported, SupportRequested
from huddle_contracts.vocabulary import Discipline, EventClass, HarmLevel
from huddle_intake.adapters.adverse_event_repository import put_outreach_policy
from huddle_intake.application.adverse_events import (
    IncomingReport,
    ReportAccepted,
    Reporter,
    report_adverse_event,
    report_adverse_events,
)
from huddle_intake.domain.adverse_event_report import (
    AdverseEventReport,
    InvolvedStaffRef,
    ReportOutOfScope,
)
from huddle_intake.domain.outreach_policy import OutreachPolicy
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration


def report(
    event_id: str, harm: HarmLevel, *involved: InvolvedStaffRef, hospital: str | None = None
):
    return AdverseEventReport(
        reporter_event_id=event_id,
        hospital_id=hospital,
        unit_ids=("icu",),
        event_class=EventClass.INCIDENT,
        harm_level=harm,
        categories=(),
        occurred_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
        involved=involved,
    )


def what_was_said(events) -> list[tuple]:
    """The published events without their fresh ids and times: what must not depend on the run."""
    said: list[tuple] = []
    for event in events:
        if isinstance(event, AdverseEventReported):
            said.append(
                (
                    "reported",
                    event.unit_ids,
                    event.involved,
                    event.outreach_triggered,
                    event.group_debrief_requested,
                )
            )
        else:
            assert isinstance(event, SupportRequested)
            said.append(
                (
                    "requested",
                    event.requester,
                    event.unit_id,
                    event.discipline,
                    event.reporting_line,
                    event.involved,
                )
            )
    return said


def summary(accepted: ReportAccepted) -> tuple:
    return (
        accepted.outreach_triggered,
        accepted.group_debrief_requested,
        accepted.support_requests,
        accepted.unknown_staff,
        accepted.first_report,
    )


async def test_a_run_of_reports_gives_each_what_it_would_get_alone(
    intake: tuple[FastAPI, httpx.AsyncClient], provision, count, network: str, new_staff_refs
) -> None:
    app, _ = intake
    key = app.state.directory_keys.pseudonym_key
    manager, first, second, agency = new_staff_refs(4)
    await provision(
        [
            (manager, "icu", "nurse"),
            (first, "icu", "nurse", manager),
            (second, "ed", "physician", manager),
        ]
    )
    reporter = Reporter.known_as(
        key, network_id=network, hospital_id="st-mary", identity="/incident-system/test"
    )
    named = (
        InvolvedStaffRef((first,)),
        InvolvedStaffRef((f"UNKNOWN-{second}", second)),  # known by their second identifier
        InvolvedStaffRef((agency,), Discipline.NURSE, manager_ref=manager),  # placed by manager
    )

    def reports(suffix: str) -> list[AdverseEventReport]:
        return [
            report(f"A{suffix}", HarmLevel.SEVERE, *named),
            report(f"B{suffix}", HarmLevel.NONE, named[1]),
            report(f"A{suffix}", HarmLevel.SEVERE, *named),  # the same report again
            report(f"C{suffix}", HarmLevel.DEATH, named[0], hospital="elsewhere"),  # refused
            report(f"D{suffix}", HarmLevel.DEATH, named[2], named[0]),
        ]

    tenant = Tenant(network)
    async with app.state.runtime.unit_of_work(tenant) as uow:
        run = [IncomingReport(UnitOfWork(uow.conn, tenant), reporter, r) for r in reports("-run")]
        results = await report_adverse_events(pseudonym_key=key, reports=run)
    alone = []
    for each in reports("-alone"):
        async with app.state.runtime.unit_of_work(tenant) as uow:
            try:
                accepted = await report_adverse_event(
                    uow, pseudonym_key=key, reporter=reporter, report=each
                )
            except ReportOutOfScope as refused:
                alone.append((refused, ()))
            else:
                alone.append((accepted, uow.events))

    assert isinstance(results[3], ReportOutOfScope) and isinstance(alone[3][0], ReportOutOfScope)
    assert run[3].uow.events == ()  # refused: nothing said, nothing written
    for i in (0, 1, 2, 4):
        in_run, (by_itself, its_events) = results[i], alone[i]
        assert isinstance(in_run, ReportAccepted) and isinstance(by_itself, ReportAccepted)
        assert summary(in_run) == summary(by_itself)
        assert what_was_said(run[i].uow.events) == what_was_said(its_events)
    repeat = results[2]
    assert isinstance(repeat, ReportAccepted) and isinstance(results[0], ReportAccepted)
    assert not repeat.first_report
    assert repeat.adverse_event_id == results[0].adverse_event_id
    # A: three people, all offered support (the agency nurse placed in their manager's unit).
    assert summary(results[0]) == (True, True, 3, 1, True)
    requested = [e for e in run[0].uow.events if isinstance(e, SupportRequested)]
    assert {e.unit_id for e in requested} == {"icu", "ed"}
    assert all(e.reporting_line and e.reporting_line[0] for e in requested)
    # Each run wrote A, B and D once; none of C.
    assert await count(app, "adverse_event") == 6
    assert await count(app, "support_request") == 2 * (3 + 2)
    assert await count(app, "tier_one_check_in") == 2 * (3 + 2)
    assert await count(app, "request_event") == 2 * (3 + 2)


async def test_each_report_of_a_run_meets_its_own_hospitals_outreach_policy(
    intake: tuple[FastAPI, httpx.AsyncClient], provision, count, network: str, new_staff_refs
) -> None:
    app, _ = intake
    key = app.state.directory_keys.pseudonym_key
    [nurse] = new_staff_refs(1)
    await provision([(nurse, "icu", "nurse")])
    tenant = Tenant(network)
    # St Luke's reaches out after mild harm too; the network (and St Mary's) only after severe.
    async with app.state.runtime.unit_of_work(tenant) as uow:
        await put_outreach_policy(
            uow.conn,
            network_id=network,
            hospital_id="st-luke",
            policy=OutreachPolicy.of(
                harm_levels=(HarmLevel.MILD, HarmLevel.SEVERE), categories=(), near_misses=False
            ),
            updated_by="test",
        )
    reporter = Reporter.known_as(key, network_id=network, hospital_id=None, identity="/system")
    who = InvolvedStaffRef((nurse,))
    async with app.state.runtime.unit_of_work(tenant) as uow:
        run = [
            IncomingReport(UnitOfWork(uow.conn, tenant), reporter, r)
            for r in (
                report("M1", HarmLevel.MILD, who, hospital="st-mary"),
                report("L1", HarmLevel.MILD, who, hospital="st-luke"),
                report("M2", HarmLevel.SEVERE, who, hospital="st-mary"),
            )
        ]
        results = await report_adverse_events(pseudonym_key=key, reports=run)

    assert [r.outreach_triggered for r in results if isinstance(r, ReportAccepted)] == [
        False,
        True,
        True,
    ]
    assert await count(app, "support_request") == 2
