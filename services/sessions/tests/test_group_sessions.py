"""Group sessions: an event touching many staff calls a debrief; attendance is counted, never
named; the invitation is a real iCalendar file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from huddle_contracts.events import AdverseEventReported
from huddle_e2e.harness import held_service_settings, running_app
from huddle_local.issuer import LocalIssuer
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant
from huddle_sessions.application.group_sessions import on_adverse_event_reported
from huddle_sessions.domain.group_session import GroupRefused, attendance_counts_only
from huddle_sessions.service import DEFINITION
from icalendar import Calendar


def test_group_records_hold_attendance_counts_only() -> None:
    assert attendance_counts_only(15) == 15
    with pytest.raises(GroupRefused):
        attendance_counts_only(1)


@pytest.fixture
async def sessions(
    database_url: str, kafka_bootstrap: str, local_issuer: LocalIssuer
) -> AsyncIterator:
    settings = await held_service_settings(
        DEFINITION,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        jwks_file=local_issuer.jwks_path,
    )
    async with running_app(DEFINITION, settings) as running:
        yield running


@pytest.mark.integration
async def test_an_event_touching_many_staff_calls_a_debrief_that_is_scheduled_and_held(
    sessions, local_issuer: LocalIssuer
) -> None:
    app, client = sessions
    network = f"net-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    event = AdverseEventReported(
        network_id=network,
        hospital_id="st-mary",
        adverse_event_id=uuid.uuid4(),
        unit_ids=("icu", "theatres"),
        event_class="incident",
        harm_level="death",
        categories=("unexpected_death",),
        occurred_at=now,
        reported_at=now,
        involved=(),
        outreach_triggered=True,
        group_debrief_requested=True,
    )
    for _ in range(2):  # a redelivered event calls no second debrief
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            await on_adverse_event_reported(uow, event, None)
    coordinator = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="coordinator", network=network, hospital="st-mary")
    }
    [debrief] = (await client.get("/v1/group-sessions", headers=coordinator)).json()
    assert (debrief["format"], debrief["status"]) == ("team_debrief", "to_schedule")

    facilitator = pseudonym_for(app.state.settings.pseudonym_key, network, "PEER-1")
    starts = now + timedelta(hours=2)
    put = await client.put(
        f"/v1/group-sessions/{debrief['session_id']}/time",
        headers=coordinator,
        json={"starts_at": starts.isoformat(), "facilitator": facilitator},
    )
    assert put.status_code == 204
    ics = await client.get(
        f"/v1/group-sessions/{debrief['session_id']}/invitation.ics", headers=coordinator
    )
    assert ics.headers["content-type"].startswith("text/calendar")
    [vevent] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert str(vevent["summary"]) == "Huddle: Team debrief"
    assert vevent.decoded("dtend") - vevent.decoded("dtstart") == timedelta(minutes=77)

    named = await client.post(
        f"/v1/group-sessions/{debrief['session_id']}/attendance",
        headers=coordinator,
        json={"participants": 15, "held_at": starts.isoformat(), "names": ["x"]},
    )
    assert named.status_code == 422  # attendance is a count, never a list of people
    held = await client.post(
        f"/v1/group-sessions/{debrief['session_id']}/attendance",
        headers=coordinator,
        json={"participants": 15, "held_at": (starts + timedelta(minutes=80)).isoformat()},
    )
    assert held.status_code == 200 and held.json()["participants"] == 15


@pytest.mark.integration
async def test_ice_cream_rounds_recur_monthly_with_their_four_phases(
    sessions, local_issuer
) -> None:
    app, client = sessions
    network = f"net-{uuid.uuid4().hex[:8]}"
    coordinator = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="coordinator", network=network, hospital="st-mary")
    }
    created = await client.post(
        "/v1/group-sessions",
        headers=coordinator,
        json={"format": "ice_cream_rounds", "starts_at": "2026-12-03T15:00:00+00:00"},
    )
    assert created.status_code == 201, created.text
    ics = await client.get(created.json()["invitation"], headers=coordinator)
    [vevent] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert vevent["rrule"]["FREQ"] == ["MONTHLY"]
    assert "Introduction / Check-in / Discussion / Check-out" in str(vevent["description"])
