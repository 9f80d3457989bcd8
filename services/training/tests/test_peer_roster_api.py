"""The peer roster over HTTP against the real database, outbox included (relay held)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from huddle_contracts.events import CertificationLapsed, PeerCertified
from huddle_local.issuer import LocalIssuer
from huddle_runtime.tenancy import Tenant
from huddle_training.domain.certification import certification_valid_until

pytestmark = pytest.mark.integration

BODY = {
    "unit_id": "icu",
    "discipline": "nurse",
    "clinical_area": "icu",
    "languages": ["en", "fr"],
    "gender": "woman",
}


def bearer(
    issuer: LocalIssuer,
    *,
    role: str = "coordinator",
    network: str = "north",
    hospital: str | None = "st-mary",
) -> dict[str, str]:
    token = issuer.mint(
        role=role, network=network, hospital=hospital, subject=f"emp-{uuid.uuid4().hex[:8]}"
    )
    return {"Authorization": f"Bearer {token}"}


def staff_ref() -> str:
    return f"EMP-{uuid.uuid4().hex[:10]}"


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], **body: object
) -> dict[str, object]:
    response = await client.post(
        "/v1/peers", json={**BODY, "staff_ref": staff_ref(), **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def outbox(app: FastAPI, peer: object) -> list[tuple[str, bytes]]:
    """(CloudEvents type, data) of every outbox row keyed by ``peer``, oldest first."""
    async with app.state.runtime.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT headers, value FROM outbox WHERE key = $1 ORDER BY id", str(peer).encode()
        )
    return [(dict(json.loads(r["headers"]))["ce_type"], bytes(r["value"])) for r in rows]


async def peers_on_roster(app: FastAPI, network: str = "north") -> int:
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        count: int = await uow.conn.fetchval("SELECT count(*) FROM peer")
        return count


async def test_a_coordinator_registers_and_certifies_a_peer(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    coordinator = bearer(local_issuer)
    ref = staff_ref()
    created = await client.post("/v1/peers", json={**BODY, "staff_ref": ref}, headers=coordinator)
    assert created.status_code == 201, created.text
    peer = created.json()
    assert peer["status"] == "registered" and peer["hospital_id"] == "st-mary"
    assert peer["peer"].startswith("p_") and ref not in created.text
    assert created.headers["location"] == f"/v1/peers/{peer['peer']}"
    assert (await client.get(created.headers["location"], headers=coordinator)).json() == peer

    certified = await client.post(
        f"/v1/peers/{peer['peer']}/certifications", json={}, headers=coordinator
    )
    assert certified.status_code == 201, certified.text
    record = certified.json()
    certified_at = datetime.fromisoformat(record["certified_at"])
    assert record["status"] == "certified"
    assert datetime.fromisoformat(record["valid_until"]) == certification_valid_until(certified_at)
    assert abs(datetime.now(UTC) - certified_at) < timedelta(minutes=1)

    [(event_type, data)] = await outbox(app, peer["peer"])
    assert event_type == PeerCertified.event_type
    event = PeerCertified.model_validate_json(data)
    assert (event.network_id, event.hospital_id, event.peer) == ("north", "st-mary", peer["peer"])
    assert (event.unit_id, event.discipline, event.languages) == ("icu", "nurse", ("en", "fr"))
    assert (event.clinical_area, event.gender) == ("icu", "woman")
    assert event.valid_until == datetime.fromisoformat(record["valid_until"])
    assert ref.encode() not in data and b"staff_ref" not in data

    async with app.state.runtime.unit_of_work(Tenant("north")) as uow:
        stored = await uow.conn.fetchval(
            "SELECT row_to_json(p)::text FROM peer p WHERE pseudonym = $1", peer["peer"]
        )
    assert ref not in stored  # the staff reference is never stored

    now_certified = (await client.get(created.headers["location"], headers=coordinator)).json()
    assert now_certified["status"] == "certified"
    assert now_certified["valid_until"] == record["valid_until"]


async def test_a_given_validity_is_recorded_and_announced(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    coordinator = bearer(local_issuer)
    peer = (await register(client, coordinator))["peer"]
    body = {"certified_at": "2025-01-31T10:00:00+00:00", "valid_until": "2099-01-31T10:00:00+00:00"}
    response = await client.post(f"/v1/peers/{peer}/certifications", json=body, headers=coordinator)
    assert response.status_code == 201, response.text
    [(_, data)] = await outbox(app, peer)
    event = PeerCertified.model_validate_json(data)
    assert event.certified_at == datetime(2025, 1, 31, 10, tzinfo=UTC)
    assert event.valid_until == datetime(2099, 1, 31, 10, tzinfo=UTC)


async def test_registering_the_same_member_of_staff_twice_conflicts(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    ref = staff_ref()
    first = await client.post(
        "/v1/peers", json={**BODY, "staff_ref": ref}, headers=bearer(local_issuer)
    )
    assert first.status_code == 201
    before = await peers_on_roster(app)
    again = await client.post(
        "/v1/peers",
        json={**BODY, "staff_ref": f"  {ref} ", "unit_id": "ed"},
        headers=bearer(local_issuer),
    )
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert first.json()["peer"] in again.json()["detail"] and ref not in again.text
    assert await peers_on_roster(app) == before


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({**BODY, "nickname": "Jo"}, 422, "Extra inputs are not permitted"),
        ({**BODY, "languages": []}, 422, "languages"),
        ({**BODY, "languages": ["English please"]}, 422, "languages.0"),
        ({**BODY, "discipline": "wizard"}, 422, "discipline"),
        ({**BODY, "unit_id": "Intensive Care"}, 422, "unit_id"),
        ({**BODY, "gender": "unspecified"}, 422, "gender"),
        ({k: v for k, v in BODY.items() if k != "unit_id"}, 422, "unit_id"),
        ({**BODY, "hospital_id": "elsewhere"}, 403, "your token is for hospital"),
    ],
)
async def test_bad_registration_gets_a_problem_and_stores_nothing(
    training: tuple[FastAPI, httpx.AsyncClient],
    local_issuer: LocalIssuer,
    body: dict[str, object],
    status: int,
    fragment: str,
) -> None:
    app, client = training
    before = await peers_on_roster(app)
    ref = staff_ref()
    response = await client.post(
        "/v1/peers", json={**body, "staff_ref": ref}, headers=bearer(local_issuer)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert fragment in problem["detail"]
    assert ref not in response.text  # input is never echoed back
    assert await peers_on_roster(app) == before


async def test_a_coordinator_token_without_a_hospital_is_not_widened_to_the_network(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = training
    unbound = bearer(local_issuer, hospital=None)
    response = await client.post(
        "/v1/peers",
        json={**BODY, "staff_ref": staff_ref(), "hospital_id": "st-john"},
        headers=unbound,
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/peers", headers=unbound)).status_code == 403
    admin = bearer(local_issuer, role="network_admin", hospital=None)
    response = await client.post(
        "/v1/peers", json={**BODY, "staff_ref": staff_ref()}, headers=admin
    )
    assert response.status_code == 422 and "hospital_id is required" in response.json()["detail"]
    named = await register(client, admin, hospital_id="st-john")
    assert named["hospital_id"] == "st-john"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"colour": "blue"}, "Extra inputs are not permitted"),
        ({"certified_at": "2025-01-31T10:00:00"}, "timezone"),
        (
            {"certified_at": "2025-01-31T10:00:00Z", "valid_until": "2025-01-30T10:00:00Z"},
            "valid_until must be after certified_at",
        ),
        ({"certified_at": "2999-01-01T00:00:00Z"}, "cannot be in the future"),
        ({"certified_at": "2020-01-01T00:00:00Z"}, "already passed"),
    ],
)
async def test_a_refused_certification_records_and_announces_nothing(
    training: tuple[FastAPI, httpx.AsyncClient],
    local_issuer: LocalIssuer,
    body: dict[str, object],
    fragment: str,
) -> None:
    app, client = training
    coordinator = bearer(local_issuer)
    peer = (await register(client, coordinator))["peer"]
    response = await client.post(f"/v1/peers/{peer}/certifications", json=body, headers=coordinator)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]
    assert (await client.get(f"/v1/peers/{peer}", headers=coordinator)).json()["status"] == (
        "registered"
    )
    assert await outbox(app, peer) == []


async def test_another_network_cannot_see_or_certify_the_peer(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    peer = (await register(client, bearer(local_issuer)))["peer"]
    for role in ("coordinator", "network_admin"):
        south = bearer(local_issuer, role=role, network="south")
        assert (await client.get(f"/v1/peers/{peer}", headers=south)).status_code == 404
        certify = await client.post(f"/v1/peers/{peer}/certifications", json={}, headers=south)
        assert certify.status_code == 404
        assert certify.headers["content-type"] == "application/problem+json"
        withdraw = await client.post(f"/v1/peers/{peer}/withdrawal", headers=south)
        assert withdraw.status_code == 404
        listed = await client.get("/v1/peers", params={"limit": 500}, headers=south)
        assert peer not in {p["peer"] for p in listed.json()["peers"]}
    assert await outbox(app, peer) == []
    north = (await client.get(f"/v1/peers/{peer}", headers=bearer(local_issuer))).json()
    assert north["status"] == "registered"


async def test_a_coordinator_of_another_hospital_cannot_see_or_certify_the_peer(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    peer = (await register(client, bearer(local_issuer)))["peer"]
    other = bearer(local_issuer, hospital="st-john")
    assert (await client.get(f"/v1/peers/{peer}", headers=other)).status_code == 404
    certify = await client.post(f"/v1/peers/{peer}/certifications", json={}, headers=other)
    assert certify.status_code == 404
    assert (await client.post(f"/v1/peers/{peer}/withdrawal", headers=other)).status_code == 404
    filtered = await client.get("/v1/peers", params={"hospital_id": "st-mary"}, headers=other)
    assert filtered.status_code == 403
    assert await outbox(app, peer) == []

    admin = bearer(local_issuer, role="network_admin", hospital="st-john")
    assert (await client.get(f"/v1/peers/{peer}", headers=admin)).status_code == 200
    certify = await client.post(f"/v1/peers/{peer}/certifications", json={}, headers=admin)
    assert certify.status_code == 201
    assert [t for t, _ in await outbox(app, peer)] == [PeerCertified.event_type]


async def test_a_coordinator_lists_only_their_hospital_page_by_page(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = training
    admin = bearer(local_issuer, role="network_admin", hospital=None)
    hospital = f"h-{uuid.uuid4().hex[:8]}"
    mine = {str((await register(client, admin, hospital_id=hospital))["peer"]) for _ in range(3)}
    elsewhere = (await register(client, admin, hospital_id="st-mary"))["peer"]

    coordinator = bearer(local_issuer, hospital=hospital)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while (pages := pages + 1) < 10:
        params: dict[str, str | int] = {"limit": 2, **({"after": after} if after else {})}
        page = (await client.get("/v1/peers", params=params, headers=coordinator)).json()
        seen += [p["peer"] for p in page["peers"]]
        assert {p["hospital_id"] for p in page["peers"]} <= {hospital}
        if (after := page["next_after"]) is None:
            break
    assert pages == 2  # two of three, then the last one
    assert set(seen) == mine and seen == sorted(seen) and elsewhere not in seen

    network = await client.get("/v1/peers", params={"hospital_id": hospital}, headers=admin)
    assert {p["peer"] for p in network.json()["peers"]} == mine
    registered = await client.get(
        "/v1/peers", params={"hospital_id": hospital, "status": "certified"}, headers=admin
    )
    assert registered.json() == {"peers": [], "next_after": None}


async def test_withdrawal_announces_the_lapse_once(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    coordinator = bearer(local_issuer)
    peer = (await register(client, coordinator))["peer"]
    certified = await client.post(f"/v1/peers/{peer}/certifications", json={}, headers=coordinator)
    assert certified.status_code == 201

    first = await client.post(f"/v1/peers/{peer}/withdrawal", headers=coordinator)
    second = await client.post(f"/v1/peers/{peer}/withdrawal", headers=coordinator)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() and first.json()["status"] == "withdrawn"

    events = await outbox(app, peer)
    assert [t for t, _ in events] == [PeerCertified.event_type, CertificationLapsed.event_type]
    lapse = CertificationLapsed.model_validate_json(events[1][1])
    assert (lapse.network_id, lapse.hospital_id, lapse.peer) == ("north", "st-mary", peer)
    assert abs(datetime.now(UTC) - lapse.lapsed_at) < timedelta(minutes=1)

    again = await client.post(f"/v1/peers/{peer}/certifications", json={}, headers=coordinator)
    assert again.status_code == 422 and "withdrawn" in again.json()["detail"]
    assert len(await outbox(app, peer)) == 2


async def test_concurrent_withdrawals_announce_the_lapse_once(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    coordinator = bearer(local_issuer)
    peer = (await register(client, coordinator))["peer"]
    await client.post(f"/v1/peers/{peer}/certifications", json={}, headers=coordinator)
    responses = await asyncio.gather(
        *(client.post(f"/v1/peers/{peer}/withdrawal", headers=coordinator) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {200}
    assert [t for t, _ in await outbox(app, peer)].count(CertificationLapsed.event_type) == 1


async def test_withdrawing_a_peer_never_certified_announces_nothing(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    coordinator = bearer(local_issuer)
    peer = (await register(client, coordinator))["peer"]
    response = await client.post(f"/v1/peers/{peer}/withdrawal", headers=coordinator)
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    assert await outbox(app, peer) == []


@pytest.mark.parametrize("role", ["worker", "peer", "analyst", "reporter"])
async def test_only_coordinators_and_network_admins_keep_the_roster(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer, role: str
) -> None:
    app, client = training
    before = await peers_on_roster(app)
    headers = bearer(local_issuer, role=role)
    response = await client.post(
        "/v1/peers", json={**BODY, "staff_ref": staff_ref()}, headers=headers
    )
    assert response.status_code == 403
    assert (await client.get("/v1/peers", headers=headers)).status_code == 403
    assert (await client.get("/v1/peers")).status_code == 401
    assert await peers_on_roster(app) == before


async def test_a_malformed_peer_in_the_path_is_refused(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = training
    response = await client.get("/v1/peers/emp-1001", headers=bearer(local_issuer))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_certification_lapses_when_its_validity_ends_once_and_by_itself(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    from huddle_training.application.lapses import lapse_due

    app, client = training
    network = f"net-{uuid.uuid4().hex[:8]}"
    headers = bearer(local_issuer, network=network)
    peer = (await register(client, headers))["peer"]
    until = datetime.now(UTC) + timedelta(days=30)
    certified = await client.post(
        f"/v1/peers/{peer}/certifications", headers=headers, json={"valid_until": until.isoformat()}
    )
    assert certified.status_code == 201, certified.text
    assert await lapse_due(app.state.runtime, until - timedelta(seconds=1)) == 0
    later = until + timedelta(days=1)
    assert await lapse_due(app.state.runtime, later) >= 1
    assert await lapse_due(app.state.runtime, later) == 0  # never fires twice
    events = await outbox(app, peer)
    assert [kind for kind, _ in events] == [
        PeerCertified.event_type,
        CertificationLapsed.event_type,
    ]
    lapse = CertificationLapsed.model_validate_json(events[-1][1])
    assert lapse.lapsed_at == until
    shown = (await client.get(f"/v1/peers/{peer}", headers=headers)).json()
    assert shown["status"] == "lapsed"


async def test_coordinators_see_coverage_and_who_lapses_soon(
    training: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = training
    network = f"net-{uuid.uuid4().hex[:8]}"
    headers = bearer(local_issuer, network=network)
    soon = (await register(client, headers))["peer"]
    later = (await register(client, headers, discipline="physician"))["peer"]
    (await register(client, headers))  # registered, never certified: not coverage
    for peer, days in ((soon, 10), (later, 200)):
        until = datetime.now(UTC) + timedelta(days=days)
        assert (
            await client.post(
                f"/v1/peers/{peer}/certifications",
                headers=headers,
                json={"valid_until": until.isoformat()},
            )
        ).status_code == 201
    report = (await client.get("/v1/coverage", headers=headers)).json()
    assert sorted((c["discipline"], c["certified"]) for c in report["certified"]) == [
        ("nurse", 1),
        ("physician", 1),
    ]
    assert [p["peer"] for p in report["lapsing_soon"]] == [soon]
    other = bearer(local_issuer, network=network, hospital="st-luke")
    assert (await client.get("/v1/coverage", headers=other)).json()["certified"] == []
