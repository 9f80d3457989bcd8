"""A simulated quarter for three hospitals, end to end on the real bus: analytics consumes every
event, the programme's metrics and pre/post outcomes are published with small cells suppressed,
and an analyst reading `huddle.analytics.anonymised.v1` with a plain Kafka client finds nothing
that links back: no pseudonym, no Huddle id and no exact time that appears on any other topic."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from huddle_analytics.service import DEFINITION as ANALYTICS
from huddle_contracts.events import SessionCompleted, SupportRequested
from huddle_contracts.topics import ANALYTICS_ANONYMISED, TOPICS, all_topic_names
from huddle_e2e.harness import eventually, migrate_service, running_app, service_settings
from huddle_local._util import free_ports
from huddle_local.issuer import LocalIssuer
from huddle_local.kafka import KafkaBroker, create_topics
from huddle_local.simulation import publish, simulate

pytestmark = pytest.mark.e2e

HOSPITALS = ("north", "south", "east")
YEAR = datetime.now(UTC).year - 1  # a quarter whose months have all closed
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


async def read_topics(bootstrap: str, names: list[str]) -> list[Any]:
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def raw(record: Any) -> bytes:
    parts = [record.key or b"", record.value or b""]
    parts += [k.encode() + b"=" + (v or b"") for k, v in record.headers]
    return b"\n".join(parts)


@pytest.fixture(scope="module")
async def own_broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A broker of this test's own: the quarter's thousands of events must not become a backlog
    that every later test's intake, matching and sessions would have to work through."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("needs its own broker; KAFKA_BOOTSTRAP_SERVERS points at a shared one")
    port, controller_port = free_ports(2)
    broker = KafkaBroker(
        tmp_path_factory.mktemp("quarter-kafka"),
        port=port,
        controller_port=controller_port,
        detach=False,
    )
    await asyncio.to_thread(broker.start)
    try:
        await asyncio.to_thread(broker.wait_ready, 120)
        await create_topics(broker.bootstrap, all_topic_names(), partitions=3)
        yield broker.bootstrap
    finally:
        await asyncio.to_thread(broker.stop)


async def test_a_simulated_quarter_is_measured_and_the_analysts_stream_links_to_nothing(
    database_url: str, own_broker: str, local_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = own_broker
    network = f"quarter-{uuid.uuid4().hex[:8]}"
    sim = simulate(network=network, hospitals=HOSPITALS, first_month=f"{YEAR}-07", seed=2026)
    monkeypatch.setenv("HUDDLE_ANALYTICS_RELEASE_GRACE_HOURS", "0")
    monkeypatch.setenv("HUDDLE_ANALYTICS_RELEASE_INTERVAL_SECONDS", "3600")
    settings = service_settings(
        ANALYTICS,
        database_url=database_url,
        kafka_bootstrap=topics,
        jwks_file=local_issuer.jwks_path,
    )
    await migrate_service(ANALYTICS, settings)
    analyst = {"Authorization": f"Bearer {local_issuer.mint(role='analyst', network=network)}"}
    admin = {"Authorization": f"Bearer {local_issuer.mint(role='network_admin', network=network)}"}

    async with running_app(ANALYTICS, settings) as (_, client):
        await publish(topics, sim.events)
        requests = len(sim.of_type(SupportRequested))
        sessions = len(sim.of_type(SessionCompleted))

        async def projected() -> bool:
            got = [
                (await client.get(f"/v1/metrics/{m}?year={YEAR}", headers=analyst)).json()
                for m in ("requests", "sessions")
            ]
            return [g["table"]["total"] for g in got] == [requests, sessions]

        await eventually(projected, seconds=60, what="every simulated event projected")

        for survey in sim.surveys:
            body = {"phase": "pre", "answers": survey.pre, "hospital_id": survey.hospital}
            pre = await client.post(
                f"/v1/surveys/{survey.instrument}/responses",
                json={**body, "month": survey.pre_month},
                headers=admin,
            )
            assert pre.status_code == 201, pre.text
            if survey.post is not None:
                post = await client.post(
                    f"/v1/surveys/{survey.instrument}/responses",
                    json={
                        "phase": "post",
                        "answers": survey.post,
                        "hospital_id": survey.hospital,
                        "month": survey.post_month,
                        "survey_code": pre.json()["survey_code"],
                    },
                    headers=admin,
                )
                assert post.status_code == 201, post.text

        # The metrics of the issue, for the network and for one hospital's coordinator.
        dashboard = (await client.get(f"/v1/dashboard?year={YEAR}", headers=analyst)).json()
        assert dashboard["requests_by_origin"]["table"]["total"] == requests
        assert dashboard["adverse_event_coverage"]["offered"]["share"] is not None
        assert dashboard["referral_rate"]["referred"]["share"] is not None
        assert dashboard["peer_load"]["gini"] is not None
        assert any(not g["suppressed"] for g in dashboard["response_times"]["groups"])
        for by in ("hospital", "discipline", "clinical_area", "urgency", "tier"):
            response = await client.get(
                f"/v1/metrics/requests?year={YEAR}&by={by}", headers=analyst
            )
            assert response.status_code == 200, response.text
        coordinator = {
            "Authorization": "Bearer "
            + local_issuer.mint(role="coordinator", network=network, hospital="east")
        }
        east = (await client.get(f"/v1/dashboard?year={YEAR}", headers=coordinator)).json()
        assert east["hospital"] == "east"
        assert east["requests_by_origin"]["table"]["total"] == len(
            [e for e in sim.of_type(SupportRequested) if e.hospital_id == "east"]
        )
        for instrument in ("phq9", "proqol5"):
            outcomes = (
                await client.get(f"/v1/outcomes/{instrument}?grain=quarter", headers=analyst)
            ).json()
            shown = [p for p in outcomes["periods"] if not p["suppressed"]]
            assert shown and shown[0]["pairs"] >= 11, outcomes
            first_measure = next(iter(shown[0]["measures"].values()))
            assert (
                first_measure["ci_low"]
                <= first_measure["mean_difference"]
                <= first_measure["ci_high"]
            )

        released = await client.post("/v1/releases", headers=admin)
        assert released.status_code == 202, released.text
        assert released.json()["released"] > 0
        exported = await client.get("/v1/exports/programme-events.csv", headers=analyst)
        expected = len(exported.text.strip().splitlines()) - 1
        assert expected == released.json()["released"]

        async def streamed() -> bool:
            records = await read_topics(topics, [ANALYTICS_ANONYMISED.name])
            mine = [r for r in records if json.loads(r.value)["network_id"] == network]
            return len(mine) == expected

        await eventually(streamed, seconds=30, what="the release on the analysts' stream")

    stream = [
        r
        for r in await read_topics(topics, [ANALYTICS_ANONYMISED.name])
        if json.loads(r.value)["network_id"] == network
    ]
    others = b"\n".join(
        raw(r)
        for r in await read_topics(
            topics, [t.name for t in TOPICS if t is not ANALYTICS_ANONYMISED]
        )
    )
    assert others, "the other topics were read"
    for record in stream:
        assert record.key is None
        data = raw(record)
        assert not re.search(rb"p_[0-9a-f]{32}", data), "a pseudonym on the analysts' stream"
        for found in UUID.findall(data):
            assert found not in others, f"{found!r} also appears on another topic"
        for found in TIMESTAMP.findall(data):
            assert found not in others, f"time {found!r} also appears on another topic"
        body = json.loads(record.value)
        assert re.fullmatch(r"\d{4}-\d{2}", body["period"])
    kinds = {json.loads(r.value)["kind"] for r in stream}
    assert {"support_requested", "peer_matched", "session_completed", "first_contact"} <= kinds
