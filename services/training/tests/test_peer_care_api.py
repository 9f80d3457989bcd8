"""Peer care against the real database and Kafka: SessionCompleted from the bus prompts debriefs
exactly once; coordinators hold meetings; a debrief resets the count and clears the prompts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from huddle_contracts.cloudevents import to_headers
from huddle_contracts.events import SessionCompleted
from huddle_contracts.registry import encode_event
from huddle_contracts.topics import SESSION_COMPLETED
from huddle_contracts.vocabulary import Mode, Tier
from huddle_e2e.harness import eventually, running_app
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.tenancy import Tenant
from huddle_training.service import DEFINITION

pytestmark = pytest.mark.integration

Training = tuple[FastAPI, httpx.AsyncClient]
Bearer = Callable[..., dict[str, str]]

PEER_BODY = {"unit_id": "icu", "discipline": "nurse", "languages": ["en"]}


def session_completed(
    network: str,
    peer: str,
    *,
    tier: Tier = Tier.PEER,
    referral_made: bool = False,
    hospital: str = "st-mary",
    case_id: uuid.UUID | None = None,
    completed_at: datetime | None = None,
) -> SessionCompleted:
    completed_at = completed_at or datetime.now(UTC) - timedelta(minutes=5)
    return SessionCompleted(
        network_id=network,
        hospital_id=hospital,
        case_id=case_id or uuid.uuid4(),
        session_id=uuid.uuid4(),
        peer=peer,
        mode=Mode.PHONE,
        tier=tier,
        started_at=completed_at - timedelta(minutes=30),
        duration_minutes=30,
        participants=1,
        follow_up_planned=False,
        referral_made=referral_made,
        completed_at=completed_at,
    )


async def register(
    app: FastAPI, client: httpx.AsyncClient, bearer: Bearer, network: str
) -> tuple[str, str]:
    """A peer on the roster at st-mary: (staff reference, pseudonym)."""
    ref = f"EMP-{uuid.uuid4().hex[:10]}"
    response = await client.post(
        "/v1/peers", json={**PEER_BODY, "staff_ref": ref}, headers=bearer(network=network)
    )
    assert response.status_code == 201, response.text
    assert response.json()["peer"] == pseudonym_for(app.state.settings.pseudonym_key, network, ref)
    return ref, response.json()["peer"]


async def care_of(app: FastAPI, network: str, peer: str) -> tuple[int, int]:
    """(sessions since the last debrief, open prompts) of ``peer``."""
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        count = await uow.conn.fetchval(
            "SELECT sessions_since_debrief FROM peer_care WHERE peer = $1", peer
        )
        prompts = await uow.conn.fetchval(
            "SELECT count(*) FROM debrief_prompt WHERE peer = $1 AND cleared_at IS NULL", peer
        )
    return count or 0, prompts


async def handle(app: FastAPI, event: SessionCompleted) -> None:
    """Run the service's own SessionCompleted handler as the inbox would: one unit of work."""
    runtime = app.state.runtime
    handlers = runtime.definition.bind_handlers(runtime)
    cloud_event = encode_event(event, source="/huddle/sessions")
    async with runtime.unit_of_work(Tenant(event.network_id)) as uow:
        await handlers[SessionCompleted.event_type](uow, event, cloud_event)


async def test_session_completed_delivered_twice_prompts_one_debrief(
    training_live: Training, bearer: Bearer, network: str, kafka_bootstrap: str
) -> None:
    app, client = training_live
    ref, peer = await register(app, client, bearer, network)
    case_id = uuid.uuid4()  # one key: one partition, handled in the order sent
    referral = session_completed(
        network, peer, tier=Tier.PROFESSIONAL, hospital="st-john", case_id=case_id
    )
    cloud_event = encode_event(referral, source="/huddle/sessions")
    later = session_completed(network, peer, case_id=case_id)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for ce in (cloud_event, cloud_event, encode_event(later, source="/huddle/sessions")):
            await producer.send_and_wait(
                SESSION_COMPLETED.name,
                value=ce.data,
                key=str(case_id).encode(),
                headers=to_headers(ce),
            )
    finally:
        await producer.stop()

    async def both_sessions_counted() -> bool:
        return (await care_of(app, network, peer))[0] >= 2

    await eventually(both_sessions_counted, seconds=60, what="the sessions counted")
    assert await care_of(app, network, peer) == (2, 1)  # the redelivery counted nothing
    async with app.state.runtime.pool.acquire() as conn:
        handled = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE source = $1 AND event_id = $2",
            cloud_event.source,
            cloud_event.id,
        )
    assert handled == 1

    # The peer reads their prompt; it belongs to their own hospital, where the session was not.
    mine = await client.get(
        "/v1/peer-care/prompts/mine", headers=bearer(role="peer", network=network, subject=ref)
    )
    [prompt] = mine.json()
    assert (prompt["peer"], prompt["hospital_id"], prompt["reasons"]) == (
        peer,
        "st-mary",
        ["referral"],
    )
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        stored = await uow.conn.fetchval(
            "SELECT json_agg(p)::text FROM debrief_prompt p WHERE peer = $1", peer
        )
    assert str(case_id) not in stored and ref not in stored  # only the pseudonym is kept


async def test_debrief_prompted_after_the_configured_number_of_sessions(
    training_settings: ServiceSettings,
    bearer: Bearer,
    network: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUDDLE_TRAINING_DEBRIEF_AFTER_SESSIONS", "3")
    async with running_app(DEFINITION, training_settings) as (app, client):
        ref, peer = await register(app, client, bearer, network)
        for _ in range(2):
            await handle(app, session_completed(network, peer))
        assert await care_of(app, network, peer) == (2, 0)
        await handle(app, session_completed(network, peer))
        assert await care_of(app, network, peer) == (3, 1)
        for _ in range(3):  # once per count, until the peer debriefs
            await handle(app, session_completed(network, peer))
        assert await care_of(app, network, peer) == (6, 1)

        coordinator = await client.get("/v1/peer-care/prompts", headers=bearer(network=network))
        [prompt] = coordinator.json()
        assert (prompt["peer"], prompt["reasons"], prompt["sessions_since_debrief"]) == (
            peer,
            ["sessions"],
            3,
        )
        elsewhere = bearer(network=network, hospital="st-john")
        assert (await client.get("/v1/peer-care/prompts", headers=elsewhere)).json() == []
        someone_else = bearer(role="peer", network=network)
        assert (await client.get("/v1/peer-care/prompts/mine", headers=someone_else)).json() == []
        as_peer = bearer(role="peer", network=network, subject=ref)
        assert (await client.get("/v1/peer-care/prompts", headers=as_peer)).status_code == 403


async def test_a_debrief_resets_the_count_and_clears_open_prompts(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    ref, peer = await register(app, client, bearer, network)
    await handle(app, session_completed(network, peer, referral_made=True))
    await handle(app, session_completed(network, peer))
    assert await care_of(app, network, peer) == (2, 1)
    coordinator = bearer(network=network)
    held = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    supervision = await client.post(
        "/v1/peer-care/meetings",
        json={"kind": "supervision", "starts_at": held},
        headers=coordinator,
    )
    assert supervision.status_code == 201, supervision.text
    attended = await client.post(
        f"/v1/peer-care/meetings/{supervision.json()['meeting_id']}/attendance",
        json={"peers": [peer]},
        headers=coordinator,
    )
    assert attended.json() == {
        "meeting_id": supervision.json()["meeting_id"],
        "kind": "supervision",
        "recorded": [peer],
        "prompts_cleared": 0,
    }
    assert await care_of(app, network, peer) == (2, 1)  # supervision changes no count

    debrief = await client.post(
        "/v1/peer-care/meetings", json={"kind": "debrief", "starts_at": held}, headers=coordinator
    )
    path = f"/v1/peer-care/meetings/{debrief.json()['meeting_id']}/attendance"
    cleared = await client.post(path, json={"peers": [peer]}, headers=coordinator)
    assert cleared.status_code == 200 and cleared.json()["prompts_cleared"] == 1
    assert await care_of(app, network, peer) == (0, 0)
    mine = bearer(role="peer", network=network, subject=ref)
    assert (await client.get("/v1/peer-care/prompts/mine", headers=mine)).json() == []
    history = await client.get("/v1/peer-care/prompts/mine?status=all", headers=mine)
    assert [p["cleared_at"] is not None for p in history.json()] == [True]
    again = await client.post(path, json={"peers": [peer]}, headers=coordinator)
    assert again.json()["recorded"] == [] and again.json()["prompts_cleared"] == 0

    listed = (await client.get("/v1/peer-care/meetings", headers=coordinator)).json()
    assert sorted((m["kind"], m["attended"]) for m in listed) == [
        ("debrief", 1),
        ("supervision", 1),
    ]
    # A session that ended before the debrief (its event late) is covered by it.
    late = datetime.now(UTC) - timedelta(hours=2)
    await handle(app, session_completed(network, peer, referral_made=True, completed_at=late))
    assert await care_of(app, network, peer) == (0, 0)


async def test_bad_meeting_input_gets_a_problem_and_changes_nothing(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    _, peer = await register(app, client, bearer, network)
    await handle(app, session_completed(network, peer, tier=Tier.PROFESSIONAL))
    coordinator = bearer(network=network)
    now = datetime.now(UTC)
    meeting: dict[str, str]
    for meeting in (
        {"kind": "picnic", "starts_at": now.isoformat()},
        {"kind": "debrief", "starts_at": "2026-01-01T10:00"},
        {"kind": "debrief", "starts_at": now.isoformat(), "topic": "the incident"},
        {"kind": "debrief", "starts_at": now.isoformat(), "hospital_id": "st-john"},
    ):
        response = await client.post("/v1/peer-care/meetings", json=meeting, headers=coordinator)
        assert response.status_code in (403, 422), (meeting, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "the incident" not in response.text
    assert (await client.get("/v1/peer-care/meetings", headers=coordinator)).json() == []

    future = await client.post(
        "/v1/peer-care/meetings",
        json={"kind": "debrief", "starts_at": (now + timedelta(days=2)).isoformat()},
        headers=coordinator,
    )
    path = f"/v1/peer-care/meetings/{future.json()['meeting_id']}/attendance"
    early = await client.post(path, json={"peers": [peer]}, headers=coordinator)
    assert early.status_code == 422 and "once the meeting has begun" in early.json()["detail"]
    body: dict[str, Any]
    for body, status in (
        ({"peers": []}, 422),
        ({"peers": ["emp-1001"]}, 422),
        ({"peers": [peer], "notes": "x"}, 422),
    ):
        response = await client.post(path, json=body, headers=coordinator)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
    assert await care_of(app, network, peer) == (1, 1)

    past = await client.post(
        "/v1/peer-care/meetings",
        json={"kind": "debrief", "starts_at": (now - timedelta(hours=1)).isoformat()},
        headers=coordinator,
    )
    path = f"/v1/peer-care/meetings/{past.json()['meeting_id']}/attendance"
    unknown = await client.post(path, json={"peers": [peer, "p_" + "0" * 32]}, headers=coordinator)
    assert unknown.status_code == 404
    assert await care_of(app, network, peer) == (1, 1)  # nothing recorded for anyone
    elsewhere = bearer(network=network, hospital="st-john")
    hidden = await client.post(path, json={"peers": [peer]}, headers=elsewhere)
    assert hidden.status_code == 404
    worker = bearer(role="worker", network=network)
    assert (await client.post(path, json={"peers": [peer]}, headers=worker)).status_code == 403
    assert (
        await client.post(
            "/v1/peer-care/meetings",
            json={"kind": "debrief", "starts_at": now.isoformat()},
            headers=worker,
        )
    ).status_code == 403
    assert await care_of(app, network, peer) == (1, 1)


async def test_sessions_of_a_peer_not_on_the_roster_are_counted_at_the_sessions_hospital(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    stranger = "p_" + uuid.uuid4().hex
    await handle(app, session_completed(network, stranger, referral_made=True, hospital="st-luke"))
    prompts = await client.get(
        "/v1/peer-care/prompts", headers=bearer(network=network, hospital="st-luke")
    )
    assert [(p["peer"], p["hospital_id"]) for p in prompts.json()] == [(stranger, "st-luke")]


async def test_coverage_counts_certified_peers_per_discipline(
    training: Training, bearer: Bearer, network: str
) -> None:
    _, client = training
    admin = bearer(role="network_admin", network=network, hospital=None)
    for hospital, discipline in (
        ("st-mary", "nurse"),
        ("st-john", "nurse"),
        ("st-john", "physician"),
        ("st-john", "pharmacist"),
    ):
        registered = await client.post(
            "/v1/peers",
            json={
                **PEER_BODY,
                "staff_ref": f"EMP-{uuid.uuid4().hex[:10]}",
                "hospital_id": hospital,
                "discipline": discipline,
            },
            headers=admin,
        )
        peer = registered.json()["peer"]
        if discipline != "pharmacist":
            certified = await client.post(
                f"/v1/peers/{peer}/certifications", json={}, headers=admin
            )
            assert certified.status_code == 201
    network_wide = (await client.get("/v1/coverage", headers=admin)).json()
    assert network_wide["by_discipline"] == [
        {"discipline": "nurse", "certified": 2},
        {"discipline": "physician", "certified": 1},
    ]
    assert len(network_wide["certified"]) == 3
    st_mary = (await client.get("/v1/coverage", headers=bearer(network=network))).json()
    assert st_mary["by_discipline"] == [{"discipline": "nurse", "certified": 1}]
