"""The course catalogue, the certification rule and cohorts over HTTP against the real database
and Kafka: a cohort completed certifies its peers by itself (PeerCertified, outbox and topic)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from huddle_contracts.cloudevents import CloudEventError, from_record
from huddle_contracts.events import PeerCertified
from huddle_contracts.topics import PEER_CERTIFICATION
from huddle_runtime.tenancy import Tenant
from huddle_training.domain.certification import certification_valid_until
from huddle_training.domain.course import SUGGESTED_CURRICULUM

pytestmark = pytest.mark.integration

Training = tuple[FastAPI, httpx.AsyncClient]
Bearer = Callable[..., dict[str, str]]
OutboxOf = Callable[[FastAPI, str], Awaitable[list[tuple[str, bytes]]]]

COURSE = ["peer-support-concepts", "psychological-first-aid", "active-listening"]
PEER_BODY = {"unit_id": "icu", "discipline": "nurse", "languages": ["en"]}


def module_body(code: str) -> dict[str, object]:
    module = next(m for m in SUGGESTED_CURRICULUM if m.code == code)
    return {"title": module.title, "hours": module.hours, "delivery": module.delivery.value}


async def set_up_programme(
    client: httpx.AsyncClient,
    bearer: Bearer,
    network: str,
    *,
    rule: dict[str, Any] | None = None,
) -> None:
    """The suggested curriculum as the network's catalogue, and a rule requiring COURSE."""
    admin = bearer(role="network_admin", network=network, hospital=None)
    for module in SUGGESTED_CURRICULUM:
        put = await client.put(
            f"/v1/catalogue/modules/{module.code}", json=module_body(module.code), headers=admin
        )
        assert put.status_code == 201, put.text
    ruled = await client.put(
        "/v1/certification-rule", json=rule or {"required_modules": COURSE}, headers=admin
    )
    assert ruled.status_code == 200, ruled.text


async def register(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> str:
    response = await client.post(
        "/v1/peers",
        json={**PEER_BODY, "staff_ref": f"EMP-{uuid.uuid4().hex[:10]}", **body},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    peer: str = response.json()["peer"]
    return peer


async def plan(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    starts_at: datetime,
    modules: list[str] = COURSE,
    days: int = 10,
) -> str:
    response = await client.post(
        "/v1/cohorts",
        json={
            "label": "spring-2026",
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(days=days)).isoformat(),
            "modules": modules,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    cohort: str = response.json()["cohort_id"]
    return cohort


async def enrol(
    client: httpx.AsyncClient, headers: dict[str, str], cohort: str, *peers: str
) -> None:
    for peer in peers:
        response = await client.post(
            f"/v1/cohorts/{cohort}/enrolments", json={"peer": peer}, headers=headers
        )
        assert response.status_code == 201, response.text


async def attend(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    cohort: str,
    module: str,
    at: datetime,
    *peers: str,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/cohorts/{cohort}/attendance",
        json={"module": module, "attended_at": at.isoformat(), "peers": list(peers)},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    taken: dict[str, Any] = response.json()
    return taken


async def test_network_admins_keep_the_catalogue(
    training: Training, bearer: Bearer, network: str
) -> None:
    _, client = training
    admin = bearer(role="network_admin", network=network, hospital=None)
    path = "/v1/catalogue/modules/self-care"
    created = await client.put(path, json=module_body("self-care"), headers=admin)
    assert created.status_code == 201, created.text
    updated = await client.put(
        path,
        json={**module_body("self-care"), "hours": 1.5, "delivery": "in_person"},
        headers=admin,
    )
    assert updated.status_code == 200
    assert updated.json() == {
        "module": "self-care",
        "title": "Self-care for peer supporters",
        "hours": 1.5,
        "delivery": "in_person",
    }
    for role in ("worker", "peer", "coordinator"):
        listed = await client.get(
            "/v1/catalogue/modules", headers=bearer(role=role, network=network)
        )
        assert listed.json() == [updated.json()]
    coordinator = bearer(network=network)
    refused = await client.put(path, json=module_body("self-care"), headers=coordinator)
    assert refused.status_code == 403
    other = await client.get(
        "/v1/catalogue/modules", headers=bearer(role="network_admin", network=f"{network}-x")
    )
    assert other.json() == []  # each network keeps its own


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("self-care", {"title": "Self-care", "hours": 60, "delivery": "online"}, "hours"),
        ("self-care", {"title": "Self-care", "hours": 1, "delivery": "by-post"}, "delivery"),
        ("self-care", {"title": "", "hours": 1, "delivery": "online"}, "title"),
        ("self-care", {"title": "x", "hours": 1, "delivery": "online", "fee": 3}, "Extra inputs"),
        ("Self Care", {"title": "Self-care", "hours": 1, "delivery": "online"}, "module"),
    ],
)
async def test_a_bad_module_gets_a_problem_and_changes_nothing(
    training: Training,
    bearer: Bearer,
    network: str,
    path: str,
    body: dict[str, object],
    fragment: str,
) -> None:
    _, client = training
    admin = bearer(role="network_admin", network=network)
    response = await client.put(f"/v1/catalogue/modules/{path}", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]
    assert (await client.get("/v1/catalogue/modules", headers=admin)).json() == []


async def test_the_certification_rule_names_catalogue_modules_and_defaults_to_12_months(
    training: Training, bearer: Bearer, network: str
) -> None:
    _, client = training
    admin = bearer(role="network_admin", network=network)
    coordinator = bearer(network=network)
    unset = (await client.get("/v1/certification-rule", headers=coordinator)).json()
    assert unset == {
        "configured": False,
        "required_modules": [],
        "refresher_modules": [],
        "validity_months": 12,
    }
    unknown = await client.put(
        "/v1/certification-rule", json={"required_modules": ["self-care"]}, headers=admin
    )
    assert unknown.status_code == 422
    assert "not in your network's course catalogue: self-care" in unknown.json()["detail"]
    bad: dict[str, Any]
    for bad in (
        {"required_modules": []},
        {"required_modules": ["self-care"], "validity_months": 0},
        {"required_modules": ["self-care"], "recertify": True},
    ):
        response = await client.put("/v1/certification-rule", json=bad, headers=admin)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/certification-rule", headers=coordinator)).json() == unset
    coordinator_put = await client.put(
        "/v1/certification-rule", json={"required_modules": COURSE}, headers=coordinator
    )
    assert coordinator_put.status_code == 403

    await set_up_programme(client, bearer, network)
    rule = (await client.get("/v1/certification-rule", headers=coordinator)).json()
    assert rule == {
        "configured": True,
        "required_modules": COURSE,
        "refresher_modules": COURSE,
        "validity_months": 12,
    }


async def test_a_full_cohort_certifies_its_peers_by_themselves(
    training: Training, bearer: Bearer, network: str, outbox_of: OutboxOf
) -> None:
    app, client = training
    await set_up_programme(client, bearer, network)
    coordinator = bearer(network=network)
    first, second = await register(client, coordinator), await register(client, coordinator)
    start = datetime.now(UTC) - timedelta(days=9)
    cohort = await plan(client, coordinator, starts_at=start)
    await enrol(client, coordinator, cohort, first, second)

    times = [start + timedelta(days=i + 1) for i in range(len(COURSE))]
    for module, at in zip(COURSE[:-1], times, strict=False):
        taken = await attend(client, coordinator, cohort, module, at, first, second)
        assert taken["recorded"] == sorted([first, second]) and taken["certified"] == []
    assert await outbox_of(app, first) == []
    last = await attend(client, coordinator, cohort, COURSE[-1], times[-1], first)
    assert last["completed"] == [first]
    [granted] = last["certified"]
    assert granted["peer"] == first
    assert datetime.fromisoformat(granted["certified_at"]) == times[-1]
    assert datetime.fromisoformat(granted["valid_until"]) == certification_valid_until(times[-1])

    [(event_type, data)] = await outbox_of(app, first)
    assert event_type == PeerCertified.event_type
    event = PeerCertified.model_validate_json(data)
    assert (event.network_id, event.peer, event.certified_at) == (network, first, times[-1])
    assert event.valid_until == certification_valid_until(times[-1])
    assert await outbox_of(app, second) == []
    shown = (await client.get(f"/v1/peers/{first}", headers=coordinator)).json()
    assert shown["status"] == "certified"
    assert (await client.get(f"/v1/peers/{second}", headers=coordinator)).json()["status"] == (
        "registered"
    )

    detail = (await client.get(f"/v1/cohorts/{cohort}", headers=coordinator)).json()
    assert detail["hours"] == 3 + 12 + 2 and detail["modules"] == COURSE
    enrolments = {e["peer"]: e for e in detail["enrolments"]}
    assert enrolments[first]["completed_at"] is not None
    assert enrolments[second]["completed_at"] is None
    assert sorted(enrolments[second]["attended"]) == sorted(COURSE[:-1])

    # Taking the same attendance again changes and announces nothing.
    again = await attend(client, coordinator, cohort, COURSE[-1], times[-1], first)
    assert again == {"module": COURSE[-1], "recorded": [], "completed": [], "certified": []}
    assert len(await outbox_of(app, first)) == 1


async def test_completing_the_refresher_renews_the_certification(
    training: Training, bearer: Bearer, network: str, outbox_of: OutboxOf
) -> None:
    app, client = training
    await set_up_programme(
        client,
        bearer,
        network,
        rule={"required_modules": COURSE, "refresher_modules": ["self-care"], "validity_months": 6},
    )
    coordinator = bearer(network=network)
    peer = await register(client, coordinator)
    start = datetime.now(UTC) - timedelta(days=20)
    course = await plan(client, coordinator, starts_at=start)
    await enrol(client, coordinator, course, peer)
    for i, module in enumerate(COURSE):
        await attend(client, coordinator, course, module, start + timedelta(days=i + 1), peer)
    certified_at = start + timedelta(days=len(COURSE))

    refresher_start = datetime.now(UTC) - timedelta(days=2)
    refresher = await plan(
        client, coordinator, starts_at=refresher_start, modules=["self-care"], days=1
    )
    await enrol(client, coordinator, refresher, peer)
    renewed_at = refresher_start + timedelta(hours=3)
    taken = await attend(client, coordinator, refresher, "self-care", renewed_at, peer)
    assert [c["peer"] for c in taken["certified"]] == [peer]

    events = [PeerCertified.model_validate_json(d) for _, d in await outbox_of(app, peer)]
    assert [(e.certified_at, e.valid_until) for e in events] == [
        (certified_at, certification_valid_until(certified_at, 6)),
        (renewed_at, certification_valid_until(renewed_at, 6)),
    ]
    shown = (await client.get(f"/v1/peers/{peer}", headers=coordinator)).json()
    assert datetime.fromisoformat(shown["valid_until"]) == certification_valid_until(renewed_at, 6)


async def test_certifying_by_hand_still_works_with_the_networks_validity(
    training: Training, bearer: Bearer, network: str, outbox_of: OutboxOf
) -> None:
    app, client = training
    coordinator = bearer(network=network)
    peer = await register(client, coordinator)
    await set_up_programme(
        client, bearer, network, rule={"required_modules": COURSE, "validity_months": 3}
    )
    response = await client.post(f"/v1/peers/{peer}/certifications", json={}, headers=coordinator)
    assert response.status_code == 201, response.text
    record = response.json()
    certified_at = datetime.fromisoformat(record["certified_at"])
    assert datetime.fromisoformat(record["valid_until"]) == certification_valid_until(
        certified_at, 3
    )
    assert [t for t, _ in await outbox_of(app, peer)] == [PeerCertified.event_type]


async def test_bad_attendance_gets_a_problem_and_records_nothing(
    training: Training, bearer: Bearer, network: str, outbox_of: OutboxOf
) -> None:
    app, client = training
    await set_up_programme(client, bearer, network, rule={"required_modules": ["self-care"]})
    coordinator = bearer(network=network)
    enrolled, stranger = await register(client, coordinator), await register(client, coordinator)
    start = datetime.now(UTC) - timedelta(days=5)
    cohort = await plan(client, coordinator, starts_at=start, modules=["self-care"])
    await enrol(client, coordinator, cohort, enrolled)
    at = (start + timedelta(days=1)).isoformat()
    cases = [
        ({"module": "self-care", "attended_at": at, "peers": [enrolled, stranger]}, "not enrolled"),
        ({"module": "crisis-management", "attended_at": at, "peers": [enrolled]}, "does not teach"),
        (
            {
                "module": "self-care",
                "attended_at": (start - timedelta(days=1)).isoformat(),
                "peers": [enrolled],
            },
            "within the cohort's dates",
        ),
        (
            {
                "module": "self-care",
                "attended_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                "peers": [enrolled],
            },
            "future",
        ),
        ({"module": "self-care", "attended_at": at, "peers": []}, "peers"),
        ({"module": "self-care", "attended_at": at, "peers": ["emp-1"]}, "peers.0"),
        (
            {"module": "self-care", "attended_at": "2026-01-01T10:00", "peers": [enrolled]},
            "timezone",
        ),
        ({"module": "self-care", "attended_at": at, "peers": [enrolled], "note": "x"}, "Extra"),
    ]
    for body, fragment in cases:
        response = await client.post(
            f"/v1/cohorts/{cohort}/attendance", json=body, headers=coordinator
        )
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert fragment in response.json()["detail"], (fragment, response.json()["detail"])
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        assert await uow.conn.fetchval("SELECT count(*) FROM attendance") == 0
    assert await outbox_of(app, enrolled) == []
    missing = await client.post(
        f"/v1/cohorts/{uuid.uuid4()}/attendance",
        json={"module": "self-care", "attended_at": at, "peers": [enrolled]},
        headers=coordinator,
    )
    assert missing.status_code == 404


async def test_cohorts_teach_catalogue_modules_and_enrol_peers_once(
    training: Training, bearer: Bearer, network: str
) -> None:
    app, client = training
    await set_up_programme(client, bearer, network)
    coordinator = bearer(network=network)
    start = datetime.now(UTC)
    bad_cohorts: list[dict[str, Any]] = [
        {"modules": ["yoga"]},
        {"modules": []},
        {"ends_at": (start - timedelta(days=1)).isoformat()},
        {"hospital_id": "st-john"},
        {"label": "Spring 2026"},
        {"cost": 10},
    ]
    for change in bad_cohorts:
        body = {
            "label": "spring-2026",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(days=3)).isoformat(),
            "modules": COURSE,
            **change,
        }
        response = await client.post("/v1/cohorts", json=body, headers=coordinator)
        assert response.status_code in (403, 422), (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/cohorts", headers=coordinator)).json() == []

    cohort = await plan(client, coordinator, starts_at=start)
    peer = await register(client, coordinator)
    await enrol(client, coordinator, cohort, peer)
    twice = await client.post(
        f"/v1/cohorts/{cohort}/enrolments", json={"peer": peer}, headers=coordinator
    )
    assert twice.status_code == 409
    withdrawn = await register(client, coordinator)
    await client.post(f"/v1/peers/{withdrawn}/withdrawal", headers=coordinator)
    refused = await client.post(
        f"/v1/cohorts/{cohort}/enrolments", json={"peer": withdrawn}, headers=coordinator
    )
    assert refused.status_code == 422 and "withdrawn" in refused.json()["detail"]
    unknown = await client.post(
        f"/v1/cohorts/{cohort}/enrolments", json={"peer": "p_" + "0" * 32}, headers=coordinator
    )
    assert unknown.status_code == 404

    elsewhere = bearer(network=network, hospital="st-john")
    assert (await client.get(f"/v1/cohorts/{cohort}", headers=elsewhere)).status_code == 404
    assert (await client.get("/v1/cohorts", headers=elsewhere)).json() == []
    other_hospital_peer = await register(
        client, bearer(role="network_admin", network=network, hospital=None), hospital_id="st-john"
    )
    hidden = await client.post(
        f"/v1/cohorts/{cohort}/enrolments",
        json={"peer": other_hospital_peer},
        headers=coordinator,
    )
    assert hidden.status_code == 404
    assert [
        c["cohort_id"] for c in (await client.get("/v1/cohorts", headers=coordinator)).json()
    ] == [cohort]
    worker = bearer(role="peer", network=network)
    assert (await client.get("/v1/cohorts", headers=worker)).status_code == 403


async def read_certifications(
    bootstrap: str, peer: str, seconds: float = 60
) -> list[PeerCertified]:
    """PeerCertified events for ``peer`` on the topic, read from its start until one arrives."""
    consumer = AIOKafkaConsumer(
        PEER_CERTIFICATION.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[PeerCertified] = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while not found and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                for record in batch:
                    if record.key != peer.encode():
                        continue
                    try:
                        cloud_event = from_record(record.headers, record.value)
                    except CloudEventError:
                        continue
                    if cloud_event.type == PeerCertified.event_type:
                        found.append(PeerCertified.model_validate_json(record.value))
    finally:
        await consumer.stop()
    return found


async def test_a_completed_cohort_puts_peer_certified_on_the_topic(
    training_live: Training, bearer: Bearer, network: str, kafka_bootstrap: str
) -> None:
    _, client = training_live
    await set_up_programme(client, bearer, network)
    coordinator = bearer(network=network)
    peer = await register(client, coordinator)
    start = datetime.now(UTC) - timedelta(days=5)
    cohort = await plan(client, coordinator, starts_at=start)
    await enrol(client, coordinator, cohort, peer)
    for i, module in enumerate(COURSE):
        await attend(client, coordinator, cohort, module, start + timedelta(days=i + 1), peer)

    [event] = await read_certifications(kafka_bootstrap, peer)
    completed = start + timedelta(days=len(COURSE))
    assert (event.network_id, event.hospital_id, event.peer) == (network, "st-mary", peer)
    assert (event.certified_at, event.valid_until) == (
        completed,
        certification_valid_until(completed),
    )
