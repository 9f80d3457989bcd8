"""Materialised results: stored per (scope, query, last closed month, data version), served from
the table while both hold, and exactly what a fresh computation returns."""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huddle_analytics.adapters import results as sql
from huddle_analytics.application import results, surveys
from huddle_analytics.application.metrics import Scope
from huddle_analytics.domain import suppression
from huddle_analytics.entrypoints import http
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


# --------------------------------------------------------------------- keeping the table bounded


async def stored_rows(app: Any, network: str, key_like: str = "%") -> list[tuple[str, int]]:
    """(query key, data version) of every stored answer of the network."""
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        rows = await uow.conn.fetch(
            """SELECT query_key, data_version FROM analytics.published_result
                WHERE query_key LIKE $1 ORDER BY 1, 2""",
            key_like,
        )
    return [(r["query_key"], r["data_version"]) for r in rows]


def network_scope(app: Any, year: int | None = None) -> Scope:
    settings = app.state.runtime.state["settings"]
    until = results.closed_until(datetime.now(UTC), settings)
    return Scope(
        hospital=None,
        year=year or results.default_year(until),
        k=settings.suppression_threshold,
        until=until,
    )


async def late_request(app: Any, project: Any, sim: Any) -> None:
    """A request of a closed month arriving now: the data version moves."""
    late = sim.of_type(SupportRequested)[0].model_copy(update={"case_id": uuid.uuid4()})
    await project(app, [late])


def quiet_after(app: Any, seconds: float) -> None:
    """This app's warm_quiet_seconds (the app is the test's own)."""
    runtime = app.state.runtime
    runtime.state["settings"] = runtime.state["settings"].model_copy(
        update={"warm_quiet_seconds": seconds}
    )


async def test_a_newer_answer_replaces_the_older_ones_of_its_query_without_any_warm(
    analytics, project, bearer, network, quarter
) -> None:
    app, client = analytics
    path = f"/v1/metrics/requests?year={YEAR}&by=origin"
    before = await data_version(app, network)
    for _ in range(5):
        assert (await client.get(path, headers=bearer(network=network))).is_success
        await late_request(app, project, quarter)
    assert (await client.get(path, headers=bearer(network=network))).is_success
    assert await data_version(app, network) == before + 5
    key = results.counts_key("requests", "origin", network_scope(app, YEAR))
    assert await stored_rows(app, network) == [(key, before + 5)]


async def test_a_warm_round_drops_stale_answers_and_warms_only_once_the_version_is_quiet(
    analytics, project, bearer, network, quarter
) -> None:
    app, client = analytics
    runtime = app.state.runtime
    assert (await client.get("/v1/referral-rate", headers=bearer(network=network))).is_success
    await late_request(app, project, quarter)
    assert len(await stored_rows(app, network)) == 1

    # The version moved a moment ago: the round drops the old answer and waits.
    assert await results.warm_alone(runtime, network, datetime.now(UTC)) is None
    assert await stored_rows(app, network) == []

    quiet_after(app, 0)
    warmed = await results.warm_alone(runtime, network, datetime.now(UTC))
    assert warmed is not None and warmed.complete
    assert warmed.scopes == 1 + len(HOSPITALS)
    version = await data_version(app, network)
    assert {v for _, v in await stored_rows(app, network)} == {version}
    # Warmed for this month and version: the next round has nothing to do.
    assert await results.warm_alone(runtime, network, datetime.now(UTC)) is None


async def test_only_the_replica_holding_a_networks_lock_warms_it(
    analytics, bearer, network
) -> None:
    app, client = analytics
    runtime = app.state.runtime
    quiet_after(app, 0)
    assert (await client.get("/v1/peer-load", headers=bearer(network=network))).is_success
    asked = [(results.yearly_key("peer-load", network_scope(app)), 0)]
    assert await stored_rows(app, network) == asked
    async with sql.warm_lock(runtime.pool, network) as held_by_another_replica:
        assert held_by_another_replica
        assert await results.warm_alone(runtime, network, datetime.now(UTC)) is None
        assert await stored_rows(app, network) == asked
    warmed = await results.warm_alone(runtime, network, datetime.now(UTC))
    assert warmed is not None and warmed.complete
    assert len(await stored_rows(app, network)) > len(asked)


async def test_a_network_that_fails_to_warm_leaves_the_others_warmed(
    analytics, bearer, network
) -> None:
    app, client = analytics
    runtime = app.state.runtime
    broken, healthy = f"{network}-broken", f"{network}-healthy"
    # Enough pairs of a closed quarter to be published, but scored without their measures.
    month = date(datetime.now(UTC).year - 1, 5, 1)
    async with runtime.unit_of_work(Tenant(broken)) as uow:
        await uow.conn.executemany(
            """INSERT INTO analytics.survey_response (network_id, hospital_id, programme,
                    instrument, phase, code_hash, month, measures, bands)
               VALUES ($1, 'north', $2, 'phq9', $3, $4, $5, '{}', '{}')""",
            [
                (broken, results.DEFAULT_PROGRAMME, phase, bytes([n]) * 32, month)
                for n in range(20)
                for phase in ("pre", "post")
            ],
        )
    assert (await client.get("/v1/referral-rate", headers=bearer(network=healthy))).is_success
    # Only these two have been quiet for a day: the networks of other tests are left alone.
    quiet_after(app, 86_400)
    for name in (broken, healthy):
        async with runtime.unit_of_work(Tenant(name)) as uow:
            await uow.conn.execute(
                "UPDATE analytics.result_version SET changed_at = now() - interval '2 days'"
            )

    warmed = await results.warm_due(runtime, datetime.now(UTC))

    assert [(w.network, w.complete) for w in warmed] == [(healthy, True)]
    for name, warmed_version in ((broken, None), (healthy, 0)):
        async with runtime.unit_of_work(Tenant(name)) as uow:
            found = await uow.conn.fetchval("SELECT warmed_version FROM analytics.result_version")
        assert found == warmed_version, name


async def test_made_up_programmes_and_empty_periods_are_answered_but_not_stored(
    analytics, bearer, network, quarter
) -> None:
    app, client = analytics
    analyst = bearer(network=network)
    for n in range(50):
        made_up = await client.get(f"/v1/outcomes/phq9?programme=made-up-{n}", headers=analyst)
        assert made_up.json()["programme"] == f"made-up-{n}"
        assert made_up.json()["periods"] == []
    for path in ("/v1/referral-rate?year=2001", "/v1/training-coverage?month=2001-01"):
        assert (await client.get(path, headers=analyst)).is_success
    assert await stored_rows(app, network) == []

    # A programme with answers, a year and a month the network has rows for: stored.
    worker = bearer(role="worker", network=network, hospital="north")
    form = {"phase": "pre", "answers": [1] * 9, "programme": "night-shift"}
    assert (await client.post("/v1/surveys/phq9/responses", json=form, headers=worker)).is_success
    for path in (
        "/v1/outcomes/phq9?programme=night-shift",
        f"/v1/referral-rate?year={YEAR}",
        f"/v1/training-coverage?month={YEAR}-09",
    ):
        assert (await client.get(path, headers=analyst)).is_success
    kept = [key.split("?")[0] for key, _ in await stored_rows(app, network)]
    assert sorted(kept) == ["outcomes/phq9", "referral-rate", "training-coverage"]


async def test_a_lapse_now_of_a_certification_of_a_closed_month_leaves_the_version(
    analytics, project, network
) -> None:
    app, _ = analytics
    certified = PeerCertified(
        network_id=network,
        hospital_id="north",
        peer="p_" + "e" * 32,
        unit_id="icu",
        discipline="nurse",
        languages=("en",),
        certified_at=datetime(YEAR, 3, 1, tzinfo=UTC),
        valid_until=datetime(YEAR + 3, 3, 1, tzinfo=UTC),
    )
    await project(app, [certified, certified.model_copy(update={"peer": "p_" + "f" * 32})])
    before = await data_version(app, network)
    assert before > 0
    lapsed_now = CertificationLapsed(
        network_id=network, hospital_id="north", peer=certified.peer, lapsed_at=datetime.now(UTC)
    )
    await project(app, [lapsed_now])
    assert await data_version(app, network) == before
    lapsed_in_a_closed_month = lapsed_now.model_copy(
        update={"peer": "p_" + "f" * 32, "lapsed_at": datetime(YEAR, 6, 1, tzinfo=UTC)}
    )
    await project(app, [lapsed_in_a_closed_month])
    assert await data_version(app, network) == before + 1


async def test_the_version_triggers_run_on_the_schemas_own_search_path(analytics) -> None:
    app, _ = analytics
    async with app.state.runtime.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT proname, proconfig FROM pg_proc
                WHERE pronamespace = 'analytics'::regnamespace
                  AND (prorettype = 'trigger'::regtype OR proname = 'bump_result_version')
                  AND proname NOT LIKE 'outbox%'"""
        )
    assert len(rows) == 7
    for row in rows:
        assert row["proconfig"] == ["search_path=analytics"], row["proname"]


def test_the_code_digest_covers_the_modules_that_shape_an_answer() -> None:
    sources = {path.resolve() for path in results.COMPUTING_SOURCES}
    for module in (results, http, surveys, suppression):
        assert Path(inspect.getfile(module)).resolve() in sources, module.__name__
    assert all(path.is_file() for path in sources)
