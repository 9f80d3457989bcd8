"""The journey on the real database: crisis referral at once with crisis resources; what matching
and sessions report shows on the requester's timeline; contact details only for the assigned
peer, audited; withdrawal; purge after retention."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from fastapi import FastAPI
from huddle_contracts.events import (
    CaseClosed,
    OfferMade,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
)
from huddle_contracts.registry import EVENT_TYPES
from huddle_intake.adapters import journey_repository as journey
from huddle_intake.application.request_journey import SUBSCRIPTIONS, purge_due
from huddle_intake.domain.request_journey import STATUS_AFTER, STATUSES, status_after
from huddle_local.issuer import LocalIssuer
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration


def bearer(
    issuer: LocalIssuer,
    network: str,
    *,
    role: str = "worker",
    subject: str = "E1",
    hospital: str | None = "st-mary",
) -> dict[str, str]:
    return {
        "Authorization": "Bearer "
        + issuer.mint(role=role, network=network, hospital=hospital, subject=subject)
    }


async def published(app: FastAPI, network: str) -> list:
    async with app.state.runtime.pool.acquire() as conn:
        rows = await conn.fetch("SELECT headers, value FROM outbox ORDER BY id")
    out = []
    for row in rows:
        event = EVENT_TYPES[dict(json.loads(row["headers"]))["ce_type"]].model_validate_json(
            row["value"]
        )
        if event.network_id == network:
            out.append(event)
    return out


async def deliver(app: FastAPI, network: str, event) -> None:
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        await SUBSCRIPTIONS[event.event_type](uow, event, None)


@pytest.fixture
async def held(intake):
    """Intake with its relay held, so published events stay in the outbox to be read."""
    app, client = intake
    app.state.runtime.relay.stop()
    await app.state.runtime._tasks[0]
    return app, client


async def test_a_crisis_request_is_referred_at_once_with_the_hospitals_crisis_resources(
    held, local_issuer: LocalIssuer
) -> None:
    app, client = held
    network = f"net-{uuid.uuid4().hex[:8]}"
    started = datetime.now(UTC)
    response = await client.post(
        "/v1/support-requests",
        headers=bearer(local_issuer, network),
        json={"unit_id": "icu", "discipline": "nurse", "urgency": "crisis"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "referred"
    assert body["crisis_resources"] == [
        {"label": "Crisis line (call or text, 24/7)", "how_to_reach": "988"}
    ]
    events = await published(app, network)
    [referral] = [e for e in events if isinstance(e, ReferralMade)]
    assert (referral.tier, referral.urgency.value, referral.resource.value) == (
        3,
        "urgent",
        "crisis_line",
    )
    assert referral.made_at - started < timedelta(seconds=1)

    coordinator = bearer(local_issuer, network, role="coordinator")
    configured = [{"label": "On-call psychiatry", "how_to_reach": "bleep 2222"}]
    put = await client.put(
        "/v1/hospitals/st-mary/crisis-resources", json=configured, headers=coordinator
    )
    assert put.status_code == 204
    again = await client.get(
        f"/v1/support-requests/{body['case_id']}", headers=bearer(local_issuer, network)
    )
    assert again.json()["crisis_resources"] == configured


async def test_the_timeline_contact_release_and_purge(held, local_issuer: LocalIssuer) -> None:
    app, client = held
    network = f"net-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/v1/support-requests",
        headers=bearer(local_issuer, network),
        json={
            "unit_id": "icu",
            "discipline": "nurse",
            "urgency": "urgent",
            "contact": {"phone": "+44 7700 900777", "email": "kim@example.org"},
        },
    )
    case_id = uuid.UUID(created.json()["case_id"])
    key = app.state.settings.pseudonym_key
    peer = pseudonym_for(key, network, "PEER-1")
    now = datetime.now(UTC)
    base = {"network_id": network, "hospital_id": "st-mary", "case_id": case_id}
    await deliver(
        app,
        network,
        OfferMade(
            **base,
            offer_id=uuid.uuid4(),
            peer=peer,
            urgency="urgent",
            offered_at=now,
            respond_by=now,
        ),
    )
    as_peer = bearer(local_issuer, network, role="peer", subject="PEER-1", hospital=None)
    early = await client.get(f"/v1/support-requests/{case_id}/contact-details", headers=as_peer)
    assert early.status_code == 404  # offered is not assigned
    await deliver(
        app,
        network,
        PeerMatched(
            **base,
            offer_id=uuid.uuid4(),
            peer=peer,
            requester="p_" + "0" * 32,
            mode="phone",
            matched_at=now,
        ),
    )
    released = await client.get(f"/v1/support-requests/{case_id}/contact-details", headers=as_peer)
    assert released.json() == {"phone": "+44 7700 900777", "email": "kim@example.org"}
    other = bearer(local_issuer, network, role="peer", subject="PEER-2", hospital=None)
    assert (
        await client.get(f"/v1/support-requests/{case_id}/contact-details", headers=other)
    ).status_code == 404
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        assert (
            await uow.conn.fetchval(
                "SELECT count(*) FROM contact_release WHERE case_id = $1", case_id
            )
            == 1
        )

    await deliver(
        app,
        network,
        SessionCompleted(
            **base,
            session_id=uuid.uuid4(),
            peer=peer,
            mode="phone",
            tier=2,
            started_at=now,
            duration_minutes=20,
            participants=1,
            follow_up_planned=True,
            referral_made=False,
            completed_at=now,
        ),
    )
    await deliver(
        app,
        network,
        CaseClosed(
            **base, peer=peer, sessions=1, referral_made=False, opened_at=now, closed_at=now
        ),
    )
    view = (
        await client.get(f"/v1/support-requests/{case_id}", headers=bearer(local_issuer, network))
    ).json()
    assert view["status"] == "closed"
    assert [s["step"] for s in view["timeline"]] == [
        "requested",
        "offered",
        "matched",
        "contact",
        "closed",
    ]
    assert peer not in json.dumps(view)  # the requester sees how and when, not who
    assert (
        await client.get(f"/v1/support-requests/{case_id}/contact-details", headers=as_peer)
    ).status_code == 404

    assert await purge_due(app.state.runtime, datetime.now(UTC) + timedelta(seconds=1)) >= 1
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        assert (
            await uow.conn.fetchval(
                "SELECT count(*) FROM contact_detail WHERE case_id = $1", case_id
            )
            == 0
        )


async def test_a_worker_may_withdraw_at_any_time(held, local_issuer: LocalIssuer) -> None:
    app, client = held
    network = f"net-{uuid.uuid4().hex[:8]}"
    me = bearer(local_issuer, network, subject="E9")
    created = await client.post(
        "/v1/support-requests", headers=me, json={"unit_id": "icu", "discipline": "nurse"}
    )
    case_id = created.json()["case_id"]
    stranger = bearer(local_issuer, network, subject="E10")
    assert (
        await client.post(f"/v1/support-requests/{case_id}/withdrawal", headers=stranger)
    ).status_code == 404
    withdrawn = await client.post(f"/v1/support-requests/{case_id}/withdrawal", headers=me)
    assert withdrawn.json()["status"] == "withdrawn"
    again = await client.post(f"/v1/support-requests/{case_id}/withdrawal", headers=me)
    assert again.json()["status"] == "withdrawn"
    kinds = [type(e).__name__ for e in await published(app, network)]
    assert kinds.count("SupportWithdrawn") == 1


async def test_without_contact_details_on_the_request_the_peer_gets_the_directorys(
    held, local_issuer: LocalIssuer
) -> None:
    app, client = held
    network = f"net-{uuid.uuid4().hex[:8]}"
    admin = {
        "Authorization": "Bearer " + local_issuer.mint(role="network_admin", network=network),
        "Content-Type": "text/csv",
    }
    csv = (
        "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name\n"
        "E77,st-mary,icu,nurse,,e77@st-mary.example,+44 7700 900077,\n"
    )
    assert (
        await client.post("/v1/directory/import", content=csv, headers=admin)
    ).status_code == 200
    created = await client.post(
        "/v1/support-requests",
        headers=bearer(local_issuer, network, subject="E77"),
        json={"unit_id": "icu", "discipline": "nurse"},
    )
    case_id = uuid.UUID(created.json()["case_id"])
    peer = pseudonym_for(app.state.settings.pseudonym_key, network, "PEER-9")
    now = datetime.now(UTC)
    await deliver(
        app,
        network,
        PeerMatched(
            network_id=network,
            hospital_id="st-mary",
            case_id=case_id,
            offer_id=uuid.uuid4(),
            peer=peer,
            requester="p_" + "0" * 32,
            mode="phone",
            matched_at=now,
        ),
    )
    as_peer = bearer(local_issuer, network, role="peer", subject="PEER-9", hospital=None)
    released = await client.get(f"/v1/support-requests/{case_id}/contact-details", headers=as_peer)
    assert released.json() == {"phone": "+44 7700 900077", "email": "e77@st-mary.example"}


async def test_each_step_moves_the_stored_request_as_the_journey_rules_say(
    held, local_issuer: LocalIssuer
) -> None:
    app, client = held
    network = f"net-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/v1/support-requests",
        headers=bearer(local_issuer, network, subject="E11"),
        json={"unit_id": "icu", "discipline": "nurse"},
    )
    case_id = uuid.UUID(created.json()["case_id"])
    at = datetime.now(UTC)
    for before in sorted(STATUSES):
        for step in sorted(STATUS_AFTER):
            async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
                await uow.conn.execute(
                    "UPDATE support_request SET status = $2 WHERE case_id = $1", case_id, before
                )
                found = await journey.advance(
                    uow.conn,
                    journey.Step(network, case_id, step, at, {}),
                    {s: status_after(s, step) for s in STATUSES},
                )
                now = await uow.conn.fetchval(
                    "SELECT status FROM support_request WHERE case_id = $1", case_id
                )
            assert found and now == status_after(before, step), (before, step, now)
    nobody = uuid.uuid4()
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        missing = await journey.advance(
            uow.conn, journey.Step(network, nobody, "offered", at, {}), {"requested": "x"}
        )
        written = await uow.conn.fetch(
            "SELECT case_id, count(*) FROM request_event WHERE case_id = ANY($1) GROUP BY case_id",
            [case_id, nobody],
        )
    assert missing is False
    with pytest.raises(asyncpg.NotNullViolationError):  # a status the map lacks is never kept
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            await journey.advance(uow.conn, journey.Step(network, case_id, "offered", at, {}), {})
    # The first step, then one per step above; nothing for a request that does not exist.
    assert dict(written) == {case_id: 1 + len(STATUSES) * len(STATUS_AFTER)}
