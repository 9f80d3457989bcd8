"""Analytics against the real PostgreSQL: projections, metrics, surveys, releases and exports."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from huddle_analytics.application.releases import release_due, release_if_due
from huddle_contracts.events import (
    OfferMade,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportRequested,
)
from huddle_contracts.topics import ANALYTICS_ANONYMISED
from huddle_local.simulation import simulate
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration

YEAR = 2025
HOSPITALS = ("north", "south", "east")


def numbers(document: Any) -> Iterator[int]:
    """Every integer in a JSON document (bools are not counts)."""
    if isinstance(document, bool):
        return
    if isinstance(document, int):
        yield document
    elif isinstance(document, dict):
        for key, value in document.items():
            # How many entries were hidden, the year and k describe the table; they count nobody.
            if key not in ("suppressed", "year", "threshold"):
                yield from numbers(value)
    elif isinstance(document, list):
        for value in document:
            yield from numbers(value)


def counts_in(document: Any) -> list[int]:
    """The published counts."""
    return list(numbers(document))


@pytest.fixture
async def quarter(analytics, project, network):  # type: ignore[no-untyped-def]
    app, _ = analytics
    sim = simulate(network=network, hospitals=HOSPITALS, first_month=f"{YEAR}-07", seed=11)
    await project(app, sim.events)
    return sim


async def test_a_simulated_quarter_gives_every_programme_metric(
    analytics, bearer, network, quarter
) -> None:
    _, client = analytics
    analyst = bearer(role="analyst", network=network)
    requests = quarter.of_type(SupportRequested)
    response = await client.get(f"/v1/metrics/requests?year={YEAR}&by=origin", headers=analyst)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["table"]["total"] == len(requests)
    assert body["grain"] in ("month", "quarter", "year")
    assert set(body["table"]["rows"]) <= {"self", "colleague", "manager", "outreach"}

    dashboard = (await client.get(f"/v1/dashboard?year={YEAR}", headers=analyst)).json()
    times = dashboard["response_times"]["groups"]
    published = [g for g in times if not g["suppressed"]]
    assert published, times
    assert published[0]["minutes_to_offer"]["p50"] is not None
    assert any(g["deadline_met"]["routine"] is not None for g in published), published
    assert dashboard["adverse_event_coverage"]["reached"]["share"] is not None
    assert 0 < dashboard["referral_rate"]["referred"]["share"] < 1
    assert dashboard["follow_ups"]["kept"]["share"] is not None
    assert dashboard["peer_load"]["gini"] is not None
    assert dashboard["training_coverage"]["certified_peers"]["total"] is not None
    assert dashboard["sessions_by_mode"]["table"]["total"] == len(quarter.of_type(SessionCompleted))


async def test_the_aggregates_computed_in_sql_match_the_events(
    analytics, bearer, network, quarter
) -> None:
    """Shares and percentiles are aggregated where the rows are: they must equal what the
    simulated events themselves give (numpy's interpolated percentiles, plain counts)."""
    _, client = analytics
    dashboard = (
        await client.get(f"/v1/dashboard?year={YEAR}", headers=bearer(network=network))
    ).json()
    matched = {e.case_id for e in quarter.of_type(PeerMatched)}
    referred = {e.case_id for e in quarter.of_type(ReferralMade)} & matched
    assert dashboard["referral_rate"]["referred"]["count"] == len(referred)
    assert dashboard["referral_rate"]["referred"]["of"] == len(matched)

    sessions = [s for s in quarter.of_type(SessionCompleted) if s.case_id != s.session_id]
    planned = [s for s in sessions if s.follow_up_planned]
    kept = [
        s
        for s in planned
        if any(o.case_id == s.case_id and o.started_at > s.started_at for o in sessions)
    ]
    assert dashboard["follow_ups"]["kept"]["count"] == len(kept)
    assert dashboard["follow_ups"]["kept"]["of"] == len(planned)

    requested = {e.case_id: e.requested_at for e in quarter.of_type(SupportRequested)}
    first_offer: dict[Any, datetime] = {}
    for offer in quarter.of_type(OfferMade):
        first_offer[offer.case_id] = min(first_offer.get(offer.case_id, offer.offered_at),
                                         offer.offered_at)  # fmt: skip
    waits = [(first_offer[c] - requested[c]).total_seconds() / 60 for c in first_offer]
    (year,) = [g for g in dashboard["response_times"]["groups"] if g["period"] == str(YEAR)]
    assert year["minutes_to_offer"] == {
        "p50": round(float(np.percentile(waits, 50)), 1),
        "p90": round(float(np.percentile(waits, 90)), 1),
    }


async def test_a_published_table_never_shows_1_to_10(analytics, bearer, network, quarter) -> None:
    _, client = analytics
    for role, hospital in (("analyst", None), ("coordinator", "east")):
        headers = bearer(role=role, network=network, hospital=hospital)
        for path in (
            f"/v1/dashboard?year={YEAR}",
            f"/v1/metrics/requests?year={YEAR}&by=clinical_area",
            f"/v1/metrics/referrals?year={YEAR}&by=resource",
            f"/v1/metrics/adverse_events?year={YEAR}&by=harm_level",
            f"/v1/response-times?year={YEAR}&by=urgency",
        ):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
            small = [n for n in counts_in(response.json()) if 1 <= n <= 10]
            assert small == [], (role, path, small)


async def test_a_coordinator_sees_their_own_hospital_only(
    analytics, bearer, network, quarter
) -> None:
    _, client = analytics
    coordinator = bearer(role="coordinator", network=network, hospital="south")
    body = (await client.get(f"/v1/metrics/requests?year={YEAR}", headers=coordinator)).json()
    south = [e for e in quarter.of_type(SupportRequested) if e.hospital_id == "south"]
    assert body["hospital"] == "south"
    assert body["table"]["total"] == len(south)
    refused = await client.get(f"/v1/metrics/requests?year={YEAR}&by=hospital", headers=coordinator)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    worker = await client.get(
        "/v1/dashboard", headers=bearer(role="worker", network=network, hospital="south")
    )
    assert worker.status_code == 403


async def test_an_unknown_breakdown_is_refused_as_a_problem(analytics, bearer, network) -> None:
    _, client = analytics
    response = await client.get(
        "/v1/metrics/requests?by=patient_name", headers=bearer(network=network)
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "origin" in response.json()["detail"]


async def test_another_networks_events_are_invisible(analytics, bearer, network, quarter) -> None:
    _, client = analytics
    body = (
        await client.get(
            f"/v1/metrics/requests?year={YEAR}", headers=bearer(network="elsewhere-net")
        )
    ).json()
    assert body["table"]["total"] in (0, None)


PHQ9_PRE = [2, 2, 1, 2, 1, 2, 1, 1, 0]
PHQ9_POST = [1, 1, 1, 1, 0, 1, 0, 1, 0]


async def answer(client, headers, instrument: str, **body: Any):  # type: ignore[no-untyped-def]
    return await client.post(f"/v1/surveys/{instrument}/responses", json=body, headers=headers)


async def test_pre_and_post_are_paired_by_the_respondents_code(analytics, bearer, network) -> None:
    app, client = analytics
    worker = bearer(role="worker", network=network, hospital="north")
    pre = await answer(client, worker, "phq9", phase="pre", answers=PHQ9_PRE)
    assert pre.status_code == 201, pre.text
    receipt = pre.json()
    assert receipt["measures"]["total"] == 12
    assert receipt["bands"]["total"] == "moderate"
    assert receipt["crisis_resources"] is None
    code = receipt["survey_code"]
    post = await answer(client, worker, "phq9", phase="post", answers=PHQ9_POST, survey_code=code)
    assert post.status_code == 201, post.text
    assert post.json()["survey_code"] is None
    again = await answer(client, worker, "phq9", phase="post", answers=PHQ9_POST, survey_code=code)
    assert again.status_code == 409
    unknown = await answer(
        client, worker, "phq9", phase="post", answers=PHQ9_POST, survey_code="AAAA-BBBB-CCCC-DDDD"
    )
    assert unknown.status_code == 404
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        stored = await uow.conn.fetch(
            "SELECT * FROM analytics.survey_response WHERE network_id = $1", network
        )
    assert len(stored) == 2
    # Nothing about who answered, or when exactly: the month only, the code hashed.
    assert all(row["month"].day == 1 for row in stored)
    assert code.encode() not in b"".join(bytes(row["code_hash"]) for row in stored)


async def test_phq9_item_9_above_zero_shows_crisis_resources_and_alerts_nobody(
    analytics, bearer, network
) -> None:
    app, client = analytics
    worker = bearer(role="worker", network=network, hospital="north")
    async with app.state.runtime.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM analytics.outbox")
    response = await answer(client, worker, "phq9", phase="pre", answers=[0] * 8 + [1])
    assert response.status_code == 201
    resources = response.json()["crisis_resources"]
    assert resources and resources[0]["how_to_reach"] == "988"
    async with app.state.runtime.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM analytics.outbox") == before


async def test_bad_answers_are_refused_and_change_nothing(analytics, bearer, network) -> None:
    app, client = analytics
    worker = bearer(role="worker", network=network, hospital="north")
    for body in (
        {"phase": "pre", "answers": [1] * 8},
        {"phase": "pre", "answers": [1] * 8 + [7]},
        {"phase": "pre", "answers": PHQ9_PRE, "name": "Jane Doe"},
        {"phase": "post", "answers": PHQ9_PRE},
        {"phase": "pre", "answers": PHQ9_PRE, "month": "2025-01"},
    ):
        response = await answer(client, worker, "phq9", **body)
        assert response.status_code in (403, 422), (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    mbi = await answer(client, worker, "mbi", phase="pre", answers=[1] * 22)
    assert mbi.status_code == 422
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        assert (
            await uow.conn.fetchval(
                "SELECT count(*) FROM analytics.survey_response WHERE network_id = $1", network
            )
            == 0
        )


async def test_paired_change_is_published_only_for_k_pairs_or_more(
    analytics, bearer, network
) -> None:
    _, client = analytics
    admin = bearer(role="network_admin", network=network)
    for i in range(14):
        pre = await answer(
            client,
            admin,
            "phq9",
            phase="pre",
            answers=PHQ9_PRE,
            hospital_id="north",
            month=f"{YEAR}-01",
        )
        if i < 12:
            await answer(
                client,
                admin,
                "phq9",
                phase="post",
                answers=PHQ9_POST,
                hospital_id="north",
                month=f"{YEAR}-04",
                survey_code=pre.json()["survey_code"],
            )
    for _ in range(5):
        pre = await answer(
            client,
            admin,
            "phq9",
            phase="pre",
            answers=PHQ9_PRE,
            hospital_id="north",
            month=f"{YEAR}-04",
        )
        await answer(
            client,
            admin,
            "phq9",
            phase="post",
            answers=PHQ9_POST,
            hospital_id="north",
            month=f"{YEAR}-07",
            survey_code=pre.json()["survey_code"],
        )
    body = (await client.get("/v1/outcomes/phq9?grain=quarter", headers=admin)).json()
    by_period = {p["period"]: p for p in body["periods"]}
    q2 = by_period[f"{YEAR}-Q2"]
    assert q2["pairs"] == 12
    total = q2["measures"]["total"]
    # Every pair went from 12 to 6: the change is exactly -6 and so is its interval.
    assert total["mean_difference"] == pytest.approx(-6)
    assert total["ci_low"] == pytest.approx(-6) and total["ci_high"] == pytest.approx(-6)
    q3 = by_period[f"{YEAR}-Q3"]
    assert q3["suppressed"] is True and q3["pairs"] is None and q3["measures"] == {}


async def test_the_analysts_stream_is_released_once_with_surrogates_and_months_only(
    analytics, bearer, network, quarter
) -> None:
    app, client = analytics
    runtime = app.state.runtime
    settings = runtime.state["settings"]
    now = datetime(YEAR + 1, 1, 15, tzinfo=UTC)
    await release_due(runtime, settings, now)
    assert await release_due(runtime, settings, now) == 0  # nothing new: nothing released twice
    async with runtime.unit_of_work(Tenant(network)) as uow:
        rows = await uow.conn.fetch(
            "SELECT key, value, headers FROM analytics.outbox WHERE topic = $1",
            ANALYTICS_ANONYMISED.name,
        )
        waiting = await uow.conn.fetchval(
            """SELECT count(*) FROM analytics.programme_record
                WHERE network_id = $1 AND released_at IS NULL""",
            network,
        )
    records = [
        json.loads(r["value"]) for r in rows if json.loads(r["value"])["network_id"] == network
    ]
    assert len(records) + waiting == len(quarter.events) + len(quarter.of_type(PeerMatched))
    assert all(r["key"] is None for r in rows)
    text = json.dumps(records)
    for event in quarter.events:
        for value in json.loads(event.model_dump_json()).values():
            if isinstance(value, str) and (value.startswith("p_") or len(value) == 36):
                assert value not in text
        assert event.event_time.isoformat() not in text
    # Months only: follow-up sessions may spill into October, certifications predate July.
    assert {r["period"] for r in records if r["kind"] == "support_requested"} <= {
        f"{YEAR}-07",
        f"{YEAR}-08",
        f"{YEAR}-09",
    }
    assert all(r["period_start"] == f"{r['period']}-01T00:00:00Z" for r in records)
    shown = [r for r in records if r["hospital_id"] is not None]
    assert shown, "with 120 requests a hospital, most records keep their hospital"

    csv_export = await client.get(
        f"/v1/exports/programme-events.csv?from={YEAR}-07&to={YEAR}-09",
        headers=bearer(role="analyst", network=network),
    )
    assert csv_export.status_code == 200
    exported = list(csv.DictReader(io.StringIO(csv_export.text)))
    in_quarter = [r for r in records if f"{YEAR}-07" <= r["period"] <= f"{YEAR}-09"]
    assert sorted(e["record_id"] for e in exported) == sorted(r["record_id"] for r in in_quarter)
    parquet = await client.get(
        "/v1/exports/programme-events.parquet", headers=bearer(role="analyst", network=network)
    )
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == len(records)
    assert "record_id" in table.column_names


async def test_an_open_month_is_not_published(analytics, project, bearer, network) -> None:
    app, client = analytics
    now = datetime.now(UTC)
    sim = simulate(
        network=network,
        hospitals=("north",),
        first_month=f"{now.year:04d}-{now.month:02d}",
        months=1,
        seed=3,
    )
    await project(app, [e for e in sim.of_type(SupportRequested) if e.requested_at <= now])
    body = (await client.get("/v1/metrics/requests", headers=bearer(network=network))).json()
    # Watching this month's numbers grow would show each request as it arrives.
    assert body["table"]["total"] in (0, None)


async def test_a_network_admin_releases_their_own_network_only(
    analytics, project, bearer, network
) -> None:
    app, client = analytics
    other = f"{network}-other"
    for tenant in (network, other):
        sim = simulate(
            network=tenant, hospitals=("north",), first_month=f"{YEAR}-03", months=1, seed=5
        )
        await project(app, sim.events)
    released = await client.post(
        "/v1/releases", headers=bearer(role="network_admin", network=network)
    )
    assert released.status_code == 202
    async with app.state.runtime.unit_of_work(Tenant(other)) as uow:
        waiting = await uow.conn.fetchval(
            "SELECT count(*) FROM analytics.programme_record WHERE released_at IS NULL"
        )
    assert waiting > 0


async def test_answers_must_be_integers(analytics, bearer, network) -> None:
    _, client = analytics
    worker = bearer(role="worker", network=network, hospital="north")
    response = await answer(client, worker, "phq9", phase="pre", answers=["1"] * 9)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_held_back_records_wait_for_new_ones_and_then_join_them(
    analytics, project, network
) -> None:
    app, _ = analytics
    runtime = app.state.runtime
    now = datetime(YEAR + 1, 1, 15, tzinfo=UTC)
    small = simulate(
        network=network,
        hospitals=("north",),
        first_month=f"{YEAR}-02",
        months=1,
        requests_per_hospital_month=3,
        peers_per_hospital=2,
        survey_pairs_per_hospital=0,
        seed=8,
    )
    await project(app, small.events)
    first = await release_if_due(runtime, network, now)
    assert await release_if_due(runtime, network, now) == 0  # only held-back records: not due
    more = simulate(
        network=network, hospitals=("north",), first_month=f"{YEAR}-03", months=1, seed=9
    )
    await project(app, more.events)
    second = await release_if_due(runtime, network, now)
    async with runtime.unit_of_work(Tenant(network)) as uow:
        waiting = await uow.conn.fetchval(
            "SELECT count(*) FROM analytics.programme_record WHERE released_at IS NULL"
        )
    assert first + second + waiting == len(small.events) + len(more.events) + len(
        small.of_type(PeerMatched)
    ) + len(more.of_type(PeerMatched))
    assert second > 0


async def test_coverage_on_a_past_date_counts_a_peer_recertified_since(
    analytics, project, network
) -> None:
    from huddle_analytics.application.metrics import training_coverage
    from huddle_contracts.events import PeerCertified

    app, _ = analytics
    first, renewal = datetime(YEAR, 1, 10, tzinfo=UTC), datetime(YEAR, 6, 10, tzinfo=UTC)
    certified = [
        PeerCertified(
            network_id=network,
            hospital_id="north",
            peer="p_" + "b" * 32,
            unit_id="icu",
            discipline="nurse",
            languages=("en",),
            certified_at=at,
            valid_until=datetime(at.year + 1, at.month, at.day, tzinfo=UTC),
        )
        for at in (first, renewal)
    ]
    await project(app, certified)
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        # k = 1 shows every number: this checks the counting, not the suppression.
        february = await training_coverage(uow, None, datetime(YEAR, 3, 1, tzinfo=UTC), 1)
    assert february["certified_peers"]["total"] == 1


async def test_a_cases_events_fold_into_the_same_row_in_whatever_order_they_arrive(
    analytics, project
) -> None:
    app, _ = analytics
    in_order, backwards = (f"net-{uuid.uuid4().hex[:10]}" for _ in range(2))
    for network, reverse in ((in_order, False), (backwards, True)):
        sim = simulate(
            network=network, hospitals=("north",), first_month=f"{YEAR}-07", months=1, seed=5
        )
        # Backwards, every case's later events come before its request (the row is created by
        # whichever arrives first).
        await project(app, list(reversed(sim.events)) if reverse else sim.events)
    rows = {}
    for network in (in_order, backwards):
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            found = await uow.conn.fetch("SELECT * FROM support_case ORDER BY case_id")
        rows[network] = [
            {k: v for k, v in r.items() if k not in ("network_id", "surrogate")} for r in found
        ]
    assert len(rows[in_order]) > 10
    assert rows[backwards] == rows[in_order]
