"""Issue #3, journey 3, on the real bus: a crisis self-referral never waits for a peer. The
ReferralMade (tier 3, urgent, crisis line) is made within a second of the request, reaches the
bus, and the answer carries the hospital's crisis resources."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from huddle_contracts.cloudevents import CloudEventError, from_record
from huddle_contracts.events import ReferralMade, SupportRequested
from huddle_contracts.topics import REFERRAL_MADE, SUPPORT_REQUESTED
from huddle_e2e.harness import migrate_service, running_app, service_settings
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer

pytestmark = pytest.mark.e2e


async def events_for(bootstrap: str, topic: str, key: bytes, seconds: float = 15) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while not found and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for r in records:
                    if r.key != key:
                        continue
                    try:
                        found.append(from_record(r.headers, r.value))
                    except CloudEventError:
                        continue
    finally:
        await consumer.stop()
    return found


async def test_a_crisis_is_referred_at_once_and_the_referral_reaches_the_bus(
    database_url: str, topics: str, local_issuer: LocalIssuer
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"
    settings = service_settings(
        INTAKE, database_url=database_url, kafka_bootstrap=topics, jwks_file=local_issuer.jwks_path
    )
    await migrate_service(INTAKE, settings)
    token = local_issuer.mint(role="worker", network=network, hospital="st-mary", subject="E-911")
    async with running_app(INTAKE, settings) as (_, intake):
        answer = await intake.post(
            "/v1/support-requests",
            headers={"Authorization": f"Bearer {token}"},
            json={"unit_id": "icu", "discipline": "nurse", "urgency": "crisis"},
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        key = body["case_id"].encode()
        # Read while intake runs, so its relay is there to publish.
        [referral_ce] = await events_for(topics, REFERRAL_MADE.name, key)
        [request_ce] = await events_for(topics, SUPPORT_REQUESTED.name, key)
    assert body["status"] == "referred" and body["crisis_resources"]
    referral = ReferralMade.model_validate_json(referral_ce.data)
    assert (referral.tier, referral.urgency.value, referral.resource.value) == (
        3,
        "urgent",
        "crisis_line",
    )
    assert referral.referred_by is None
    requested_at = datetime.fromisoformat(body["requested_at"])
    assert referral.made_at - requested_at < timedelta(seconds=1)
    # A peer still follows: the request itself goes to matching as well.
    assert SupportRequested.model_validate_json(request_ce.data).urgency.value == "crisis"
