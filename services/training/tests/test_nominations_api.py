"""Nominations over HTTP against the real database: a colleague nominates, the nominee consents
or refuses, a coordinator approves (the nominee joins the roster) or declines."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration

Training = tuple[FastAPI, httpx.AsyncClient]
Bearer = Callable[..., dict[str, str]]
OutboxOf = Callable[[FastAPI, str], Awaitable[list[tuple[str, bytes]]]]

NOMINATION = {"unit_id": "icu", "discipline": "nurse", "clinical_area": "icu"}


def staff_ref() -> str:
    return f"EMP-{uuid.uuid4().hex[:10]}"


def pseudonym(app: FastAPI, network: str, ref: str) -> str:
    return pseudonym_for(app.state.settings.pseudonym_key, network, ref)


async def nominate(
    client: httpx.AsyncClient, headers: dict[str, str], ref: str, **body: object
) -> dict[str, object]:
    response = await client.post(
        "/v1/nominations", json={**NOMINATION, "staff_ref": ref, **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def count(app: FastAPI, network: str, table: str) -> int:
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        found: int = await uow.conn.fetchval(f"SELECT count(*) FROM {table}")
        return found


async def test_a_colleague_nominates_the_nominee_consents_and_a_coordinator_approves(
    training: Training, bearer: Bearer, network: str, outbox_of: OutboxOf
) -> None:
    app, client = training
    ref = staff_ref()
    colleague = bearer(role="worker", network=network, subject=staff_ref())
    created = await client.post(
        "/v1/nominations", json={**NOMINATION, "staff_ref": ref}, headers=colleague
    )
    assert created.status_code == 201, created.text
    nomination = created.json()
    nominee = pseudonym(app, network, ref)
    # The nominator learns neither the nominee's pseudonym nor anything else about them.
    assert nomination["nominee"] is None and nomination["status"] == "pending"
    assert nomination["hospital_id"] == "st-mary" and ref not in created.text
    assert created.headers["location"] == f"/v1/nominations/{nomination['nomination_id']}"

    # The nominee finds it among their own, and consents with their languages.
    me = bearer(role="worker", network=network, subject=ref)
    mine = (await client.get("/v1/nominations/mine", headers=me)).json()
    assert [n["nomination_id"] for n in mine] == [nomination["nomination_id"]]
    assert mine[0]["nominated_by"] is None  # who nominated them stays with the coordinators
    consented = await client.post(
        f"/v1/nominations/{nomination['nomination_id']}/consent",
        json={"languages": ["en", "pt"], "gender": "man"},
        headers=me,
    )
    assert consented.status_code == 200, consented.text
    assert consented.json()["status"] == "consented"

    coordinator = bearer(network=network)
    listed = await client.get(
        "/v1/nominations", params={"status": "consented"}, headers=coordinator
    )
    assert [n["nomination_id"] for n in listed.json()] == [nomination["nomination_id"]]
    approved = await client.post(
        f"/v1/nominations/{nomination['nomination_id']}/approval", headers=coordinator
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["nomination"]["status"] == "approved"
    assert body["peer"]["peer"] == nominee and body["peer"]["status"] == "registered"
    assert body["peer"]["languages"] == ["en", "pt"] and body["peer"]["gender"] == "man"
    assert approved.headers["location"] == f"/v1/peers/{nominee}"

    on_roster = (await client.get(f"/v1/peers/{nominee}", headers=coordinator)).json()
    assert (on_roster["status"], on_roster["unit_id"], on_roster["clinical_area"]) == (
        "registered",
        "icu",
        "icu",
    )
    assert await outbox_of(app, nominee) == []  # registered, not certified: nothing announced
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        stored = await uow.conn.fetchval("SELECT row_to_json(n)::text FROM nomination n")
    assert ref not in stored  # only pseudonyms are stored


async def test_approval_needs_the_nominees_consent_and_changes_nothing_without_it(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    coordinator = bearer(network=network)
    nomination = await nominate(client, bearer(role="peer", network=network), staff_ref())
    response = await client.post(
        f"/v1/nominations/{nomination['nomination_id']}/approval", headers=coordinator
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "has not consented" in response.json()["detail"]
    assert await count(app, network, "peer") == 0
    again = await client.get(f"/v1/nominations/{nomination['nomination_id']}", headers=coordinator)
    assert again.json()["status"] == "pending"


async def test_a_refused_nomination_is_not_approved(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    ref = staff_ref()
    nomination = await nominate(client, bearer(role="worker", network=network), ref)
    me = bearer(role="worker", network=network, subject=ref)
    path = f"/v1/nominations/{nomination['nomination_id']}"
    assert (await client.post(f"{path}/consent", json={"languages": ["en"]}, headers=me)).is_success
    refused = await client.post(f"{path}/refusal", headers=me)  # consent withdrawn in time
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    assert refused.json()["languages"] == []
    response = await client.post(f"{path}/approval", headers=bearer(network=network))
    assert response.status_code == 422 and "they refused" in response.json()["detail"]
    assert await count(app, network, "peer") == 0
    # Once refused, a new nomination may ask again.
    await nominate(client, bearer(role="worker", network=network), ref)


async def test_only_the_nominee_answers(training: Training, bearer: Bearer, network: str) -> None:
    _, client = training
    ref = staff_ref()
    nomination = await nominate(client, bearer(role="worker", network=network), ref)
    path = f"/v1/nominations/{nomination['nomination_id']}"
    someone_else = bearer(role="worker", network=network, subject=staff_ref())
    hidden = await client.post(f"{path}/consent", json={"languages": ["en"]}, headers=someone_else)
    assert hidden.status_code == 404  # they cannot even see it
    assert (await client.get(path, headers=someone_else)).status_code == 404
    coordinator = bearer(network=network)
    refused = await client.post(f"{path}/consent", json={"languages": ["en"]}, headers=coordinator)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.get(path, headers=coordinator)).json()["status"] == "pending"


async def test_a_colleague_has_one_open_nomination_and_peers_are_not_nominated(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    ref = staff_ref()
    await nominate(client, bearer(role="worker", network=network), ref)
    second = await client.post(
        "/v1/nominations",
        json={**NOMINATION, "staff_ref": ref},
        headers=bearer(role="coordinator", network=network),
    )
    assert second.status_code == 409 and "open nomination" in second.json()["detail"]

    peer_ref = staff_ref()
    registered = await client.post(
        "/v1/peers",
        json={**NOMINATION, "staff_ref": peer_ref, "languages": ["en"]},
        headers=bearer(network=network),
    )
    assert registered.status_code == 201
    on_roster = await client.post(
        "/v1/nominations",
        json={**NOMINATION, "staff_ref": peer_ref},
        headers=bearer(role="worker", network=network),
    )
    assert on_roster.status_code == 409 and "already on the roster" in on_roster.json()["detail"]
    assert await count(app, network, "nomination") == 1


async def test_a_member_of_staff_does_not_nominate_themselves(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    ref = staff_ref()
    response = await client.post(
        "/v1/nominations",
        json={**NOMINATION, "staff_ref": ref},
        headers=bearer(role="worker", network=network, subject=ref),
    )
    assert response.status_code == 422 and "colleague" in response.json()["detail"]
    assert await count(app, network, "nomination") == 0


async def test_a_coordinator_declines_and_the_decision_is_final(
    training: Training, bearer: Bearer, network: str
) -> None:
    _, client = training
    ref = staff_ref()
    nomination = await nominate(client, bearer(role="worker", network=network), ref)
    path = f"/v1/nominations/{nomination['nomination_id']}"
    declined = await client.post(f"{path}/decline", headers=bearer(network=network))
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    me = bearer(role="worker", network=network, subject=ref)
    late = await client.post(f"{path}/consent", json={"languages": ["en"]}, headers=me)
    assert late.status_code == 422 and "already declined" in late.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({**NOMINATION, "reason": "kind"}, 422, "Extra inputs are not permitted"),
        ({**NOMINATION, "discipline": "wizard"}, 422, "discipline"),
        ({**NOMINATION, "unit_id": "Intensive Care"}, 422, "unit_id"),
        ({k: v for k, v in NOMINATION.items() if k != "unit_id"}, 422, "unit_id"),
        ({**NOMINATION, "hospital_id": "St Mary"}, 422, "hospital_id"),
    ],
)
async def test_a_bad_nomination_gets_a_problem_and_stores_nothing(
    training: Training,
    bearer: Bearer,
    network: str,
    body: dict[str, object],
    status: int,
    fragment: str,
) -> None:
    app, client = training
    ref = staff_ref()
    response = await client.post(
        "/v1/nominations",
        json={**body, "staff_ref": ref},
        headers=bearer(role="worker", network=network),
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"] and ref not in response.text
    assert await count(app, network, "nomination") == 0


async def test_a_bad_consent_changes_nothing(
    training: Training, bearer: Bearer, network: str
) -> None:
    _, client = training
    ref = staff_ref()
    nomination = await nominate(client, bearer(role="worker", network=network), ref)
    path = f"/v1/nominations/{nomination['nomination_id']}"
    me = bearer(role="worker", network=network, subject=ref)
    body: dict[str, Any]
    for body in ({"languages": []}, {"languages": ["en"], "phone": "555"}, {"gender": "x"}):
        response = await client.post(f"{path}/consent", json=body, headers=me)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert "555" not in response.text
    assert (await client.get(path, headers=me)).json()["status"] == "pending"


@pytest.mark.parametrize("role", ["analyst", "reporter"])
async def test_only_members_of_staff_nominate(
    training: Training, bearer: Bearer, network: str, role: str
) -> None:
    app, client = training
    response = await client.post(
        "/v1/nominations",
        json={**NOMINATION, "staff_ref": staff_ref()},
        headers=bearer(role=role, network=network),
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(app, network, "nomination") == 0


async def test_only_coordinators_of_the_hospital_decide(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    ref = staff_ref()
    nomination = await nominate(client, bearer(role="worker", network=network), ref)
    path = f"/v1/nominations/{nomination['nomination_id']}"
    me = bearer(role="worker", network=network, subject=ref)
    assert (await client.post(f"{path}/consent", json={"languages": ["en"]}, headers=me)).is_success

    worker = bearer(role="worker", network=network)
    assert (await client.post(f"{path}/approval", headers=worker)).status_code == 403
    assert (await client.get("/v1/nominations", headers=worker)).status_code == 403
    elsewhere = bearer(network=network, hospital="st-john")
    assert (await client.post(f"{path}/approval", headers=elsewhere)).status_code == 404
    assert (await client.get(path, headers=elsewhere)).status_code == 404
    listed = await client.get("/v1/nominations", headers=elsewhere)
    assert listed.json() == []
    other_network = bearer(role="network_admin", network=f"{network}-x")
    assert (await client.post(f"{path}/approval", headers=other_network)).status_code == 404
    assert await count(app, network, "peer") == 0

    admin = bearer(role="network_admin", network=network, hospital=None)
    approved = await client.post(f"{path}/approval", headers=admin)
    assert approved.status_code == 200, approved.text
    assert await count(app, network, "peer") == 1
