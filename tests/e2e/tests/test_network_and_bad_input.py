"""Issue #3, journeys 5 and 8, on the real bus. No eligible peer in the requester's hospital: the
case is matched across the network (remote). Bad input of every kind gets a clear 4xx problem,
stores nothing and publishes nothing."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from huddle_e2e.harness import eventually, migrate_service, running_app, service_settings
from huddle_e2e.privacy import bytes_on_the_bus
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_training.service import DEFINITION as TRAINING

pytestmark = pytest.mark.e2e


@pytest.fixture
async def platform(database_url: str, topics: str, local_issuer: LocalIssuer):
    definitions = (TRAINING, INTAKE, MATCHING)
    settings = {
        d.name: service_settings(
            d, database_url=database_url, kafka_bootstrap=topics, jwks_file=local_issuer.jwks_path
        )
        for d in definitions
    }
    for d in definitions:
        await migrate_service(d, settings[d.name])
    async with contextlib.AsyncExitStack() as stack:
        apps = {
            d.name: await stack.enter_async_context(running_app(d, settings[d.name]))
            for d in definitions
        }
        yield {name: client for name, (_, client) in apps.items()}, settings


async def test_no_eligible_peer_in_the_hospital_is_matched_across_the_network(
    platform, local_issuer: LocalIssuer
) -> None:
    clients, settings = platform
    network = f"net-{uuid.uuid4().hex[:8]}"

    def bearer(role: str, subject: str | None = None, hospital: str | None = "st-mary") -> dict:
        token = local_issuer.mint(role=role, network=network, hospital=hospital, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    far = bearer("coordinator", hospital="st-luke")
    peer = await clients["training"].post(
        "/v1/peers",
        headers=far,
        json={
            "staff_ref": "FAR-1",
            "unit_id": "emergency",
            "discipline": "nurse",
            "languages": ["en"],
        },
    )
    assert peer.status_code == 201, peer.text
    assert (
        await clients["training"].post(
            f"/v1/peers/{peer.json()['peer']}/certifications", headers=far, json={}
        )
    ).status_code == 201

    async def on_call() -> bool:
        shift = await clients["matching"].post(
            "/v1/rota/shifts",
            headers=far,
            json={
                "peer": pseudonym_for(settings["matching"].pseudonym_key, network, "FAR-1"),
                "hospital_id": "st-luke",
                "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "ends_at": (datetime.now(UTC) + timedelta(hours=4)).isoformat(),
            },
        )
        return shift.status_code == 201

    await eventually(on_call, what="the st-luke peer on the rota")
    asked = await clients["intake"].post(
        "/v1/support-requests",
        headers=bearer("worker", "W-5"),
        json={
            "unit_id": "icu",
            "discipline": "nurse",
            "urgency": "urgent",
            "preferred_mode": "in_person",
        },
    )
    assert asked.status_code == 201
    far_peer = bearer("peer", "FAR-1", hospital=None)
    offers: list = []

    async def offered() -> bool:
        offers[:] = (await clients["matching"].get("/v1/offers", headers=far_peer)).json()
        return bool(offers)

    await eventually(offered, what="an offer to the peer in the other hospital")
    accepted = await clients["matching"].post(
        f"/v1/offers/{offers[0]['offer_id']}/accept", headers=far_peer
    )
    assert accepted.status_code == 200
    assert accepted.json()["mode"] == "phone"  # across hospitals, support is remote


async def test_bad_input_gets_a_problem_and_changes_nothing_anywhere(
    platform, local_issuer: LocalIssuer, database_url: str, topics: str
) -> None:
    clients, _ = platform
    network = f"net-{uuid.uuid4().hex[:8]}"
    reporter = {
        "Authorization": "Bearer "
        + local_issuer.mint(
            role="reporter", network=network, hospital="st-mary", subject="incidents"
        )
    }
    worker = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="worker", network=network, hospital="st-mary", subject="W-8")
    }
    other_network = {
        "Authorization": "Bearer "
        + local_issuer.mint(role="worker", network="elsewhere", hospital="st-mary", subject="W-8")
    }
    patient = {"resourceType": "Patient", "name": [{"text": "Pat Ient"}]}
    attempts = [
        ("intake", "/v1/adverse-events", reporter, b"{not json", "application/json", 422),
        (
            "intake",
            "/v1/adverse-events",
            reporter,
            json.dumps(patient).encode(),
            "application/fhir+json",
            422,
        ),
        (
            "intake",
            "/v1/adverse-events",
            reporter,
            json.dumps(
                {
                    "reporter_event_id": "X",
                    "unit_ids": ["icu"],
                    "harm_level": "death",
                    "categories": [],
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "involved": [],
                    "narrative": "details",
                }
            ).encode(),
            "application/json",
            422,
        ),
        (
            "intake",
            "/v1/support-requests",
            worker,
            json.dumps({"unit_id": "icu", "discipline": "nurse", "notes": "x"}).encode(),
            "application/json",
            422,
        ),
        (
            "intake",
            "/v1/support-requests",
            worker,
            json.dumps(
                {"unit_id": "icu", "discipline": "nurse", "hospital_id": "st-luke"}
            ).encode(),
            "application/json",
            403,
        ),
        ("intake", "/v1/support-requests", worker, b"[1, 2", "application/json", 422),
    ]
    for service, path, headers, body, content_type, status in attempts:
        response = await clients[service].post(
            path, content=body, headers={**headers, "Content-Type": content_type}
        )
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "Pat Ient" not in response.text
    missing = await clients["intake"].get(
        f"/v1/support-requests/{uuid.uuid4()}", headers=other_network
    )
    assert missing.status_code == 404

    conn = await asyncpg.connect(database_url)
    try:
        for table in ("intake.support_request", "intake.adverse_event", "intake.idempotency_key"):
            assert (
                await conn.fetchval(f"SELECT count(*) FROM {table} WHERE network_id = $1", network)
                == 0
            )
        outbox = await conn.fetch("SELECT value FROM intake.outbox")
        assert not [r for r in outbox if network.encode() in r["value"]], "something is queued"
    finally:
        await conn.close()
    assert network.encode() not in await bytes_on_the_bus(topics), "something was published"
