"""A case on the real database: PeerMatched opens it; two contacts, a follow-up kept, a referral
from the hospital's catalogue, closed; narrative refused; other peers and networks kept out."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from huddle_contracts.events import PeerMatched
from huddle_contracts.registry import EVENT_TYPES
from huddle_e2e.harness import held_service_settings, running_app
from huddle_local.issuer import LocalIssuer
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant
from huddle_sessions.application.cases import on_peer_matched
from huddle_sessions.service import DEFINITION

pytestmark = pytest.mark.integration


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


async def published(app, network: str) -> list:
    async with app.state.runtime.pool.acquire() as conn:
        rows = await conn.fetch("SELECT headers, value FROM outbox ORDER BY id")
    events = []
    for row in rows:
        event = EVENT_TYPES[dict(json.loads(row["headers"]))["ce_type"]].model_validate_json(
            row["value"]
        )
        if event.network_id == network:
            events.append(event)
    return events


async def test_a_full_case_two_contacts_a_follow_up_a_referral_closed(
    sessions, local_issuer
) -> None:
    app, client = sessions
    network = f"net-{uuid.uuid4().hex[:8]}"
    peer = pseudonym_for(app.state.settings.pseudonym_key, network, "PEER-1")
    matched = PeerMatched(
        network_id=network,
        hospital_id="st-mary",
        case_id=uuid.uuid4(),
        offer_id=uuid.uuid4(),
        peer=peer,
        requester="p_" + "a" * 32,
        mode="phone",
        matched_at=datetime.now(UTC) - timedelta(days=2),
    )
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        await on_peer_matched(uow, matched, None)
    me = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="peer", network=network, subject="PEER-1")
    }
    coordinator = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="coordinator", network=network, hospital="st-mary")
    }

    [case] = (await client.get("/v1/cases", headers=me)).json()
    assert case["case_id"] == str(matched.case_id)
    base = f"/v1/cases/{matched.case_id}"

    first = datetime.now(UTC) - timedelta(days=1, hours=2)
    narrative = {
        "started_at": first.isoformat(),
        "duration_minutes": 30,
        "mode": "phone",
        "follow_up_planned": True,
        "notes": "talked about the patient",
    }
    refused = await client.post(f"{base}/contacts", json=narrative, headers=me)
    assert refused.status_code == 422 and "notes" in refused.json()["detail"]

    del narrative["notes"]
    assert (await client.post(f"{base}/contacts", json=narrative, headers=me)).status_code == 201
    second = {
        "started_at": (first + timedelta(hours=25)).isoformat(),
        "duration_minutes": 20,
        "mode": "video",
        "follow_up_planned": False,
    }
    assert (await client.post(f"{base}/contacts", json=second, headers=me)).status_code == 201

    no_catalogue = await client.post(f"{base}/referrals", json={"resource": "eap"}, headers=me)
    assert no_catalogue.status_code == 422 and "catalogue" in no_catalogue.json()["detail"]
    catalogue = [{"resource": "eap", "label": "Employee Assistance", "how_to_reach": "ext. 4357"}]
    put = await client.put(
        "/v1/hospitals/st-mary/referral-catalogue", json=catalogue, headers=coordinator
    )
    assert put.status_code == 204
    referral = await client.post(f"{base}/referrals", json={"resource": "eap"}, headers=me)
    assert (
        referral.status_code == 201 and referral.json()["resource"]["how_to_reach"] == "ext. 4357"
    )

    stranger = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="peer", network=network, subject="PEER-2")
    }
    assert (await client.get(base, headers=stranger)).status_code == 404
    other_network = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="peer", network="elsewhere", subject="PEER-1")
    }
    assert (await client.get(base, headers=other_network)).status_code == 404

    closed = await client.post(f"{base}/close", headers=me)
    assert closed.status_code == 200 and closed.json()["sessions"] == 2
    timeline = (await client.get(base, headers=coordinator)).json()
    assert timeline["status"] == "closed"
    assert [c["mode"] for c in timeline["contacts"]] == ["phone", "video"]
    assert [f["done_at"] is not None for f in timeline["follow_ups"]] == [True, False, False]
    assert [f["cancelled"] for f in timeline["follow_ups"]] == [False, True, True]
    assert len(timeline["referrals"]) == 1

    kinds = [type(e).__name__ for e in await published(app, network)]
    assert kinds == ["SessionCompleted", "SessionCompleted", "ReferralMade", "CaseClosed"]
    after = await client.post(f"{base}/contacts", json=second, headers=me)
    assert after.status_code == 422 and "closed" in after.json()["detail"]


async def test_a_worker_who_withdraws_closes_the_case(sessions, local_issuer) -> None:
    from huddle_contracts.events import SupportWithdrawn
    from huddle_sessions.application.cases import on_support_withdrawn

    app, client = sessions
    network = f"net-{uuid.uuid4().hex[:8]}"
    peer = pseudonym_for(app.state.settings.pseudonym_key, network, "PEER-W")
    matched = PeerMatched(
        network_id=network,
        hospital_id="st-mary",
        case_id=uuid.uuid4(),
        offer_id=uuid.uuid4(),
        peer=peer,
        requester="p_" + "b" * 32,
        mode="phone",
        matched_at=datetime.now(UTC),
    )
    withdrawn = SupportWithdrawn(
        network_id=network,
        hospital_id="st-mary",
        case_id=matched.case_id,
        reason="withdrawn",
        withdrawn_at=datetime.now(UTC),
    )
    for event, handle in (
        (matched, on_peer_matched),
        (withdrawn, on_support_withdrawn),
        (withdrawn, on_support_withdrawn),
    ):
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            await handle(uow, event, None)
    me = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="peer", network=network, subject="PEER-W")
    }
    assert (await client.get(f"/v1/cases/{matched.case_id}", headers=me)).json()[
        "status"
    ] == "closed"
    kinds = [type(e).__name__ for e in await published(app, network)]
    assert kinds == ["CaseClosed"]  # once, though the withdrawal was delivered twice
