"""POST and GET /v1/support-requests against the real database, outbox included."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from huddle_local.issuer import LocalIssuer

pytestmark = pytest.mark.integration

BODY = {"unit_id": "icu", "discipline": "nurse", "urgency": "urgent", "preferred_mode": "phone"}


def bearer(
    issuer: LocalIssuer,
    *,
    role: str = "worker",
    network: str = "north",
    hospital: str | None = "st-mary",
    subject: str | None = None,
) -> dict[str, str]:
    token = issuer.mint(
        role=role,
        network=network,
        hospital=hospital,
        subject=subject or f"emp-{uuid.uuid4().hex[:8]}",
    )
    return {"Authorization": f"Bearer {token}"}


async def outbox_rows(app: FastAPI) -> int:
    async with app.state.runtime.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM outbox")


async def rows(app: FastAPI, network: str) -> int:
    runtime = app.state.runtime
    from huddle_runtime.tenancy import Tenant

    async with runtime.unit_of_work(Tenant(network)) as uow:
        return await uow.conn.fetchval("SELECT count(*) FROM support_request")


async def test_a_worker_creates_a_request_and_reads_it_back(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    me = bearer(local_issuer, subject="emp-1001")
    created = await client.post("/v1/support-requests", json=BODY, headers=me)
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["status"] == "requested" and case["hospital_id"] == "st-mary"
    assert created.headers["location"] == f"/v1/support-requests/{case['case_id']}"

    mine = await client.get(
        created.headers["location"], headers=bearer(local_issuer, subject="emp-1001")
    )
    assert mine.status_code == 200
    assert {k: v for k, v in mine.json().items() if k != "timeline"} == {
        k: v for k, v in case.items() if k != "timeline"
    }
    assert case["timeline"][0]["step"] == "requested"

    someone_else = await client.get(created.headers["location"], headers=bearer(local_issuer))
    assert someone_else.status_code == 404
    assert someone_else.headers["content-type"] == "application/problem+json"


async def test_a_token_for_another_network_cannot_see_the_request(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    created = await client.post(
        "/v1/support-requests", json=BODY, headers=bearer(local_issuer, subject="emp-2002")
    )
    assert created.status_code == 201
    other = bearer(local_issuer, network="south", subject="emp-2002")
    response = await client.get(created.headers["location"], headers=other)
    assert response.status_code == 404
    # And below the API: the row exists, but a query without any filter from "south" sees nothing.
    from huddle_runtime.tenancy import Tenant

    case_id = uuid.UUID(created.json()["case_id"])
    for network, expected in (("north", 1), ("south", 0)):
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            seen = await uow.conn.fetchval(
                "SELECT count(*) FROM support_request WHERE case_id = $1", case_id
            )
        assert seen == expected


async def test_each_accepted_request_writes_exactly_one_outbox_row(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    app.state.runtime.relay.stop()  # hold publication so the outbox can be counted
    await app.state.runtime._tasks[0]
    before = await rows(app, "north")
    outbox_before = await outbox_rows(app)
    response = await client.post("/v1/support-requests", json=BODY, headers=bearer(local_issuer))
    assert response.status_code == 201
    assert await rows(app, "north") == before + 1
    assert await outbox_rows(app) == outbox_before + 1


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({**BODY, "nickname": "Jo"}, 422, "Extra inputs are not permitted"),
        ({**BODY, "urgency": "whenever"}, 422, "urgency"),
        ({k: v for k, v in BODY.items() if k != "unit_id"}, 422, "unit_id"),
        ({**BODY, "contact": {"phone": "call me maybe"}}, 422, "contact.phone"),
        ({**BODY, "origin": "outreach"}, 422, "set by Huddle"),
        ({**BODY, "origin": "colleague"}, 422, "must name the person"),
        ({**BODY, "hospital_id": "elsewhere"}, 403, "your token is for hospital"),
    ],
)
async def test_bad_input_gets_a_problem_and_changes_nothing(
    intake: tuple[FastAPI, httpx.AsyncClient],
    local_issuer: LocalIssuer,
    body: dict[str, object],
    status: int,
    fragment: str,
) -> None:
    app, client = intake
    before = await rows(app, "north")
    response = await client.post("/v1/support-requests", json=body, headers=bearer(local_issuer))
    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert fragment in problem["detail"]
    assert "call me maybe" not in response.text  # input is never echoed back
    assert await rows(app, "north") == before


async def test_a_role_that_cannot_ask_for_support_is_forbidden(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    response = await client.post(
        "/v1/support-requests", json=BODY, headers=bearer(local_issuer, role="analyst")
    )
    assert response.status_code == 403


async def test_contact_details_are_stored_sealed(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    body = {**BODY, "contact": {"phone": "+44 7700 900123", "email": "sam.jones@example.org"}}
    response = await client.post("/v1/support-requests", json=body, headers=bearer(local_issuer))
    assert response.status_code == 201
    from huddle_runtime.tenancy import Tenant

    async with app.state.runtime.unit_of_work(Tenant("north")) as uow:
        sealed = await uow.conn.fetchval(
            "SELECT sealed FROM contact_detail WHERE case_id = $1",
            uuid.UUID(response.json()["case_id"]),
        )
    assert b"7700" not in sealed and b"sam.jones" not in sealed
    opened = app.state.contact_vault.open(sealed)
    assert (opened.phone, opened.email) == ("+44 7700 900123", "sam.jones@example.org")


async def test_a_colleague_who_referred_someone_sees_it_received_not_their_journey(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    referrer = bearer(local_issuer, subject="emp-ref-1")
    created = await client.post(
        "/v1/support-requests",
        headers=referrer,
        json={**BODY, "origin": "colleague", "person_ref": "emp-ref-2"},
    )
    assert created.status_code == 201
    seen = (await client.get(created.headers["location"], headers=referrer)).json()
    assert (seen["status"], seen["timeline"]) == ("received", [])
    worker = (
        await client.get(
            created.headers["location"], headers=bearer(local_issuer, subject="emp-ref-2")
        )
    ).json()
    assert worker["timeline"][0]["step"] == "requested"


@pytest.mark.parametrize("urgency", ["routine", "crisis"])
async def test_the_answer_to_a_request_shows_its_journey_as_committed(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer, urgency: str
) -> None:
    _, client = intake
    me = f"emp-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/v1/support-requests",
        json={**BODY, "urgency": urgency},
        headers=bearer(local_issuer, subject=me),
    )
    assert created.status_code == 201, created.text
    read = await client.get(created.headers["location"], headers=bearer(local_issuer, subject=me))
    answer, stored = created.json(), read.json()
    assert (answer["status"], answer["timeline"]) == (stored["status"], stored["timeline"])
    assert [step["step"] for step in answer["timeline"]] == (
        ["requested"] if urgency == "routine" else ["requested", "referred_to_crisis_support"]
    )
    assert answer["status"] == ("requested" if urgency == "routine" else "referred")
