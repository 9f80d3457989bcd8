"""Materialised results: stored per (scope, query, last closed month, data version), served from
the table while both hold, and exactly what a fresh computation returns."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from huddle_analytics.application import results
from huddle_contracts.events import (
    CertificationLapsed,
    PeerCertified,
    SessionCompleted,
    SupportRequested,
)
from huddle_local.simulation import simulate
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration

YEAR = 2025
HOSPITALS = ("north", "south", "east")
MARKER = {"served": "from the table"}


@pytest.fixture
async def quarter(analytics, project, network):  # type: ignore[no-untyped-def]
    app, _ = analytics
    sim = simulate(network=network, hospitals=HOSPITALS, first_month=f"{YEAR}-07", seed=11)
    await project(app, sim.events)
    return sim


async def data_version(app: Any, network: str) -> int:
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        found: int = await uow.conn.fetchval(
            "SELECT coalesce((SELECT data_version FROM analytics.result_version), 0)"
        )
        return found


async def mark_stored(app: Any, network: str, scope: str) -> int:
    """Overwrite the stored bodies of a scope: a response showing the marker came from the table."""
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        updated: str = await uow.conn.execute(
            "UPDATE analytics.published_result SET body = $1::json WHERE scope = $2",
            json.dumps(MARKER),
            scope,
        )
    return int(updated.split()[-1])


def computed(app: Any) -> float:
    value = app.state.runtime.metrics.registry.get_sample_value(
        "huddle_analytics_results_total", {"source": "computed"}
    )
    return float(value or 0)


async def test_a_result_is_served_from_the_table_until_a_late_event_changes_it(
    analytics, project, bearer, network, quarter
) -> None:
    app, client = analytics
    analyst = bearer(network=network)
    path = f"/v1/metrics/requests?year={YEAR}&by=origin"
    first = (await client.get(path, headers=analyst)).json()
    assert first["table"]["total"] == len(quarter.of_type(SupportRequested))
    assert await mark_stored(app, network, "network") == 1
    assert (await client.get(path, headers=analyst)).json() == MARKER

    # A request of the open month does not touch the closed months: nothing moves.
    request = quarter.of_type(SupportRequested)[0]
    before = await data_version(app, network)
    live = request.model_copy(update={"case_id": uuid.uuid4(), "requested_at": datetime.now(UTC)})
    await project(app, [live])
    assert await data_version(app, network) == before
    assert (await client.get(path, headers=analyst)).json() == MARKER

    # A late request of a closed month moves the version: the answer is computed afresh.
    late = request.model_copy(update={"case_id": uuid.uuid4()})
    await project(app, [late])
    assert await data_version(app, network) == before + 1
    again = (await client.get(path, headers=analyst)).json()
    assert again["table"]["total"] == first["table"]["total"] + 1


async def test_a_later_session_keeping_a_closed_months_follow_up_moves_the_version(
    analytics, project, network, quarter
) -> None:
    app, _ = analytics
    planned = next(
        s
        for s in quarter.of_type(SessionCompleted)
        if s.follow_up_planned and s.case_id != s.session_id
    )
    before = await data_version(app, network)
    now = datetime.now(UTC)
    later = planned.model_copy(
        update={
            "session_id": uuid.uuid4(),
            "started_at": now,
            "completed_at": now + timedelta(minutes=30),
            "follow_up_planned": False,
        }
    )
    await project(app, [later])
    assert await data_version(app, network) == before + 1


async def test_certifications_move_the_version_only_for_closed_months(
    analytics, project, network
) -> None:
    app, _ = analytics
    now = datetime.now(UTC)
    certified = PeerCertified(
        network_id=network,
        hospital_id="north",
        peer="p_" + "c" * 32,
        unit_id="icu",
        discipline="nurse",
        languages=("en",),
        certified_at=now,
        valid_until=now + timedelta(days=365),
    )
    await project(app, [certified])
    assert await data_version(app, network) == 0
    lapsed = CertificationLapsed(
        network_id=network, hospital_id="north", peer=certified.peer, lapsed_at=now
    )
    await project(app, [lapsed])
    assert await data_version(app, network) == 0
    backdated = certified.model_copy(
        update={"peer": "p_" + "d" * 32, "certified_at": datetime(YEAR, 3, 1, tzinfo=UTC)}
    )
    await project(app, [backdated])
    assert await data_version(app, network) == 1


async def test_a_paper_form_for_a_closed_month_moves_the_version_and_a_live_answer_does_not(
    analytics, bearer, network
) -> None:
    app, client = analytics
    worker = bearer(role="worker", network=network, hospital="north")
    answers = {"phase": "pre", "answers": [1] * 9}
    assert (
        await client.post("/v1/surveys/phq9/responses", json=answers, headers=worker)
    ).is_success
    assert await data_version(app, network) == 0
    admin = bearer(role="network_admin", network=network)
    form = {**answers, "hospital_id": "north", "month": f"{YEAR}-05"}
    assert (await client.post("/v1/surveys/phq9/responses", json=form, headers=admin)).is_success
    assert await data_version(app, network) == 1


async def test_a_coordinator_never_gets_the_networks_or_another_hospitals_body(
    analytics, bearer, network, quarter
) -> None:
    app, client = analytics
    path = f"/v1/dashboard?year={YEAR}"
    network_body = (await client.get(path, headers=bearer(network=network))).json()
    north = bearer(role="coordinator", network=network, hospital="north")
    north_body = (await client.get(path, headers=north)).json()
    assert north_body["hospital"] == "north"
    assert network_body["hospital"] is None
    await mark_stored(app, network, "network")
    await mark_stored(app, network, "hospital:north")
    south = bearer(role="coordinator", network=network, hospital="south")
    south_body = (await client.get(path, headers=south)).json()
    assert south_body != MARKER
    assert south_body["hospital"] == "south"
    # Another network asks the very same query: its own rows, never this network's body.
    other = f"{network}-other"
    other_body = (await client.get(path, headers=bearer(network=other))).json()
    assert other_body != MARKER
    assert other_body["requests_by_origin"]["table"]["total"] in (0, None)


async def test_a_month_closing_changes_the_key(analytics, network) -> None:
    app, _ = analytics
    runtime = app.state.runtime
    calls: list[datetime] = []

    def counting(until: datetime) -> results.Compute:
        async def compute(_: UnitOfWork) -> dict[str, Any]:
            calls.append(until)
            return {"computed": len(calls)}

        return compute

    async def ask(until: datetime) -> dict[str, Any]:
        body = await results.published(
            runtime, Tenant(network), "network", "test?q=1", until, counting(until)
        )
        answer: dict[str, Any] = json.loads(body)
        return answer

    october, november = datetime(YEAR, 10, 1, tzinfo=UTC), datetime(YEAR, 11, 1, tzinfo=UTC)
    assert await ask(october) == {"computed": 1}
    assert await ask(october) == {"computed": 1}
    assert await ask(november) == {"computed": 2}
    assert calls == [october, november]


async def test_warmed_results_are_exactly_what_a_fresh_computation_returns(
    analytics, project, bearer, network
) -> None:
    app, client = analytics
    runtime = app.state.runtime
    now = datetime.now(UTC)
    through = results.closed_through(results.closed_until(now, runtime.state["settings"]))
    first = through.replace(day=1) - timedelta(days=50)
    sim = simulate(
        network=network,
        hospitals=HOSPITALS,
        first_month=f"{first.year:04d}-{first.month:02d}",
        seed=12,
    )
    await project(app, sim.events)
    await results.warm_network(runtime, network, now)
    readers = {
        "analyst": bearer(network=network),
        "coordinator": bearer(role="coordinator", network=network, hospital="east"),
    }
    paths = [
        "/v1/dashboard",
        "/v1/metrics/requests?by=origin",
        "/v1/metrics/requests?by=tier",
        "/v1/metrics/sessions?by=mode",
        "/v1/metrics/referrals",
        "/v1/metrics/adverse_events?by=harm_level",
        "/v1/response-times",
        "/v1/adverse-event-coverage",
        "/v1/referral-rate",
        "/v1/follow-ups",
        "/v1/peer-load",
        "/v1/training-coverage",
        "/v1/outcomes/phq9",
        "/v1/outcomes/proqol5",
    ]
    before = computed(app)
    warm = {
        (who, path): (await client.get(path, headers=headers)).content
        for who, headers in readers.items()
        for path in paths
    }
    assert computed(app) == before, "every query of the dashboard was warmed"
    async with runtime.unit_of_work(Tenant(network)) as uow:
        await uow.conn.execute("DELETE FROM analytics.published_result")
    for (who, path), body in warm.items():
        fresh = await client.get(path, headers=readers[who])
        assert fresh.status_code == 200, fresh.text
        assert fresh.content == body, (who, path)
    assert computed(app) == before + len(warm)
    assert json.loads(warm[("analyst", "/v1/dashboard")])["requests_by_origin"]["table"]["total"]
