"""POST /v1/adverse-events and the outreach policy, against the real database, outbox included."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from huddle_contracts.events import AdverseEventReported, SupportRequested
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration

FHIR_JSON = "application/fhir+json"
Intake = tuple[FastAPI, httpx.AsyncClient]


def key_of(app: FastAPI):
    return app.state.settings.pseudonym_key


async def support_requests(app: FastAPI, network: str) -> list[dict]:
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        return [dict(r) for r in await uow.conn.fetch("SELECT * FROM support_request")]


@pytest.mark.parametrize(
    ("release", "content_type"),
    [("r4", FHIR_JSON), ("r5", FHIR_JSON), ("r4", f"{FHIR_JSON}; fhirVersion=4.0")],
)
async def test_a_fhir_adverse_event_offers_support_to_each_practitioner_and_keeps_no_patient_data(
    held: Intake,
    documents,
    provision,
    reporter,
    published,
    scan,
    network: str,
    new_staff_refs,
    reporter_pseudonym: str,
    release: str,
    content_type: str,
) -> None:
    app, client = held
    manager, nurse, surgeon, pharmacist = new_staff_refs(4)
    await provision(
        [
            (manager, "icu", "nurse"),
            (nurse, "icu", "nurse", manager),
            (surgeon, "theatres", "physician"),
            (pharmacist, "pharmacy", "pharmacist"),
        ]
    )
    event_id = f"INC-{network}"
    build = documents.r4 if release == "r4" else documents.r5
    document = build(event_id=event_id, staff=[nurse, surgeon, pharmacist])

    response = await client.post(
        "/v1/adverse-events", content=json.dumps(document), headers=reporter(content_type)
    )

    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["outreach_triggered"] is True
    assert (answer["support_requests"], answer["unknown_staff"]) == (3, 0)
    assert answer["group_debrief_requested"] is True  # three units
    key = key_of(app)
    who = {ref: pseudonym_for(key, network, ref) for ref in (manager, nurse, surgeon, pharmacist)}
    events = await published(app)
    [reported] = [e for e in events if isinstance(e, AdverseEventReported)]
    assert str(reported.adverse_event_id) == answer["adverse_event_id"]
    assert (reported.harm_level.value, reported.event_class.value) == ("death", "incident")
    assert {p.pseudonym for p in reported.involved} == {who[nurse], who[surgeon], who[pharmacist]}
    outreach = [e for e in events if isinstance(e, SupportRequested)]
    assert events.index(reported) < min(events.index(e) for e in outreach)
    placed = {e.requester: (e.unit_id, e.discipline.value, e.urgency.value) for e in outreach}
    assert placed == {
        who[nurse]: ("icu", "nurse", "urgent"),
        who[surgeon]: ("theatres", "physician", "urgent"),
        who[pharmacist]: ("pharmacy", "pharmacist", "urgent"),
    }
    for request in outreach:
        assert request.origin.value == "outreach"
        assert request.adverse_event_id == reported.adverse_event_id
        assert set(request.involved) == {who[nurse], who[surgeon], who[pharmacist]}
        expected_line = (who[manager],) if request.requester == who[nurse] else ()
        assert request.reporting_line == expected_line

    stored = await support_requests(app, network)
    assert {r["requester"] for r in stored} == set(placed)
    assert {(r["origin"], r["submitted_by"]) for r in stored} == {("outreach", reporter_pseudonym)}

    # Nothing of the patient, the narrative or who the staff are, anywhere intake keeps data.
    needles = [documents.PATIENT, "Jane Roe", documents.NARRATIVE, "MRN-55501"]
    needles += [documents.STAFF_NAME, event_id, nurse, surgeon, pharmacist]
    assert await scan(needles) == []


async def test_huddle_json_places_an_unknown_person_in_their_managers_unit(
    held: Intake, documents, provision, reporter, published, network: str, new_staff_refs
) -> None:
    app, client = held
    manager, known, stranger = new_staff_refs(3)
    await provision([(manager, "theatres", "nurse"), (known, "icu", "physician")])
    body = documents.huddle(
        event_id="INC-42",
        staff=[known, {"staff_ref": stranger, "discipline": "midwife", "manager_ref": manager}],
        categories=["violence_against_staff"],
        harm_level="mild",
    )
    response = await client.post("/v1/adverse-events", json=body, headers=reporter())
    assert response.status_code == 201, response.text
    assert (response.json()["support_requests"], response.json()["unknown_staff"]) == (2, 1)
    key = key_of(app)
    outreach = {e.requester: e for e in await published(app) if isinstance(e, SupportRequested)}
    placed = outreach[pseudonym_for(key, network, stranger)]
    assert (placed.unit_id, placed.discipline.value, placed.urgency.value) == (
        "theatres",
        "midwife",
        "urgent",
    )
    assert placed.reporting_line == (pseudonym_for(key, network, manager),)


async def test_an_unknown_practitioner_is_still_offered_support_through_the_events_unit(
    held: Intake, documents, provision, reporter, published, network: str, new_staff_refs
) -> None:
    app, client = held
    known, unknown = new_staff_refs(2)
    await provision([(known, "icu", "physician")])
    document = documents.r4(event_id="INC-43", staff=[known, unknown], unit="ed")
    response = await client.post(
        "/v1/adverse-events", content=json.dumps(document), headers=reporter(FHIR_JSON)
    )
    assert response.status_code == 201, response.text
    assert (response.json()["support_requests"], response.json()["unknown_staff"]) == (2, 1)
    outreach = {e.requester: e for e in await published(app) if isinstance(e, SupportRequested)}
    stranger = outreach[pseudonym_for(key_of(app), network, unknown)]
    assert (stranger.hospital_id, stranger.unit_id, stranger.discipline.value) == (
        "st-mary",
        "ed",
        "other",
    )


async def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_creates_nothing(
    held: Intake, documents, provision, reporter, published, count, network: str, new_staff_refs
) -> None:
    app, client = held
    [nurse] = new_staff_refs(1)
    await provision([(nurse, "icu", "nurse")])
    body = json.dumps(documents.r5(event_id="INC-44", staff=[nurse]))
    headers = reporter(FHIR_JSON, **{"Idempotency-Key": "retry-me-1"})
    first = await client.post("/v1/adverse-events", content=body, headers=headers)
    assert first.status_code == 201, first.text
    events_after_first = len(await published(app))

    again = await client.post("/v1/adverse-events", content=body, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await published(app)) == events_after_first
    assert await count(app, "adverse_event") == 1
    assert await count(app, "support_request") == 1

    other = json.dumps(documents.r5(event_id="INC-45", staff=[nurse]))
    reused = await client.post("/v1/adverse-events", content=other, headers=headers)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("idempotency-key-reused")
    assert await count(app, "adverse_event") == 1
    assert len(await published(app)) == events_after_first


async def test_the_same_report_sent_twice_without_a_key_is_answered_with_the_first_result(
    held: Intake, documents, reporter, published, count, network: str, new_staff_refs
) -> None:
    app, client = held
    body = documents.huddle(event_id="INC-46", staff=new_staff_refs(2))
    first = await client.post("/v1/adverse-events", json=body, headers=reporter())
    assert first.status_code == 201, first.text
    before = len(await published(app))
    # Re-sent, even reworded, by another system of the network: the reporter's id decides.
    resent = {**body, "harm_level": "severe"}
    second = await client.post(
        "/v1/adverse-events", json=resent, headers=reporter(subject="other-system")
    )
    assert (second.status_code, second.json()) == (200, first.json())
    assert len(await published(app)) == before
    assert await count(app, "adverse_event") == 1
    assert await count(app, "support_request") == 2
    # Another network's report with the same id is its own event.
    elsewhere = await client.post(
        "/v1/adverse-events", json=body, headers=reporter(for_network=f"{network}-b")
    )
    assert elsewhere.status_code == 201
    assert elsewhere.json()["adverse_event_id"] != first.json()["adverse_event_id"]


async def test_a_report_that_does_not_qualify_emits_adverse_event_reported_only(
    held: Intake, documents, reporter, published, count, new_staff_refs
) -> None:
    app, client = held
    body = documents.huddle(
        event_id="INC-47",
        staff=new_staff_refs(2),
        harm_level="moderate",
        categories=["medication_error"],
    )
    response = await client.post("/v1/adverse-events", json=body, headers=reporter())
    assert response.status_code == 201, response.text
    assert response.json() == {
        "adverse_event_id": response.json()["adverse_event_id"],
        "outreach_triggered": False,
        "group_debrief_requested": False,
        "support_requests": 0,
        "unknown_staff": 2,
    }
    events = await published(app)
    assert [type(e).__name__ for e in events] == ["AdverseEventReported"]
    assert len(events[0].involved) == 2  # matching still learns who was involved
    assert await count(app, "support_request") == 0


async def test_more_than_five_staff_call_a_group_debrief(
    held: Intake, documents, provision, reporter, published, new_staff_refs
) -> None:
    app, client = held
    team = new_staff_refs(6)
    await provision([(ref, "icu", "nurse") for ref in team])
    body = documents.huddle(event_id="INC-48", staff=team, categories=["serious_safety_event"])
    body["harm_level"] = "moderate"
    response = await client.post("/v1/adverse-events", json=body, headers=reporter())
    assert response.status_code == 201, response.text
    assert response.json()["group_debrief_requested"] is True
    assert response.json()["support_requests"] == 6
    events = await published(app)
    [reported] = [e for e in events if isinstance(e, AdverseEventReported)]
    assert reported.group_debrief_requested and reported.unit_ids == ("icu",)
    outreach = [e for e in events if isinstance(e, SupportRequested)]
    assert {e.urgency.value for e in outreach} == {"routine"}
    assert all(len(e.involved) == 6 for e in outreach)


async def test_outreach_is_an_offer_the_worker_may_decline(
    held: Intake, documents, provision, reporter, published, local_issuer, network, new_staff_refs
) -> None:
    app, client = held
    [nurse] = new_staff_refs(1)
    await provision([(nurse, "icu", "nurse")])
    body = documents.huddle(event_id="INC-49", staff=[nurse])
    assert (await client.post("/v1/adverse-events", json=body, headers=reporter())).is_success
    [offer] = [e for e in await published(app) if isinstance(e, SupportRequested)]
    worker = local_issuer.mint(role="worker", network=network, hospital="st-mary", subject=nurse)
    mine = {"Authorization": f"Bearer {worker}"}
    seen = await client.get(f"/v1/support-requests/{offer.case_id}", headers=mine)
    assert seen.status_code == 200, seen.text
    declined = await client.post(f"/v1/support-requests/{offer.case_id}/withdrawal", headers=mine)
    assert declined.status_code == 200, declined.text
    withdrawn = [e for e in await published(app) if type(e).__name__ == "SupportWithdrawn"]
    assert [e.reason.value for e in withdrawn] == ["declined_offer"]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "fragment"),
    [
        (
            FHIR_JSON,
            {"resourceType": "Patient", "name": [{"text": "Jane Roe-Patient"}]},
            422,
            "AdverseEvent",
        ),
        ("application/json", b'{"reporter_event_id": "Jane Roe-Patient",', 422, "not valid JSON"),
        ("application/json", "unknown-field", 422, "patient_name: Extra inputs"),
        ("application/json", "network-field", 422, "network_id: Extra inputs"),
        (FHIR_JSON, "bad-date", 422, "date"),
        ("text/plain", b"Jane Roe-Patient died", 415, "application/fhir+json"),
    ],
)
async def test_bad_input_gets_a_problem_stores_nothing_and_publishes_nothing(
    held: Intake,
    documents,
    reporter,
    published,
    count,
    new_staff_refs,
    content_type: str,
    body: object,
    status: int,
    fragment: str,
) -> None:
    app, client = held
    if body == "unknown-field":
        body = {
            **documents.huddle(event_id="I-1", staff=new_staff_refs(1)),
            "patient_name": documents.PATIENT,
        }
    elif body == "network-field":
        body = {**documents.huddle(event_id="I-1", staff=new_staff_refs(1)), "network_id": "x"}
    elif body == "bad-date":
        body = {**documents.r4(event_id="I-1", staff=new_staff_refs(1)), "date": documents.PATIENT}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(
        "/v1/adverse-events", content=content, headers=reporter(content_type)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert fragment in problem["detail"]
    assert "Jane" not in response.text and documents.NARRATIVE not in response.text
    assert await count(app, "adverse_event") == 0
    assert await count(app, "support_request") == 0
    assert await published(app) == []


async def test_a_reporter_bound_to_a_hospital_cannot_report_for_another(
    held: Intake, documents, reporter, published, count, new_staff_refs
) -> None:
    app, client = held
    body = documents.huddle(event_id="INC-50", staff=new_staff_refs(1), hospital_id="st-luke")
    response = await client.post("/v1/adverse-events", json=body, headers=reporter())
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(app, "adverse_event") == 0 and await published(app) == []
    # A network-wide reporter names the hospital in the report, or is refused.
    anywhere = await client.post("/v1/adverse-events", json=body, headers=reporter(hospital=None))
    assert anywhere.status_code == 201, anywhere.text
    nowhere = await client.post(
        "/v1/adverse-events",
        json={**body, "hospital_id": None, "reporter_event_id": "INC-51"},
        headers=reporter(hospital=None),
    )
    assert nowhere.status_code == 422 and "hospital" in nowhere.json()["detail"]


async def test_only_reporting_systems_report_adverse_events(
    intake: Intake, documents, reporter, new_staff_refs
) -> None:
    _, client = intake
    body = documents.huddle(event_id="INC-52", staff=new_staff_refs(1))
    for role in ("worker", "coordinator", "network_admin"):
        response = await client.post("/v1/adverse-events", json=body, headers=reporter(role=role))
        assert response.status_code == 403, role


async def test_the_network_sets_its_outreach_policy_and_a_hospital_may_override_it(
    held: Intake, documents, admin, reporter, published, new_staff_refs
) -> None:
    app, client = held
    coordinator = admin(role="coordinator")
    default = await client.get("/v1/outreach-policy", headers=coordinator)
    assert default.status_code == 200, default.text
    assert default.json()["source"] == "default"
    assert default.json()["harm_levels"] == ["severe", "death"]
    assert "troubling_case" in default.json()["categories"] and not default.json()["near_misses"]

    near_misses_too = {"harm_levels": ["death"], "categories": ["lawsuit"], "near_misses": True}
    refused = await client.put("/v1/outreach-policy", json=near_misses_too, headers=coordinator)
    assert refused.status_code == 403
    put = await client.put("/v1/outreach-policy", json=near_misses_too, headers=admin())
    assert put.status_code == 200, put.text
    assert put.json()["source"] == "network"

    near_miss = documents.huddle(
        event_id="INC-53",
        staff=new_staff_refs(1),
        event_class="near_miss",
        harm_level="none",
        categories=[],
    )
    response = await client.post("/v1/adverse-events", json=near_miss, headers=reporter())
    assert response.json()["outreach_triggered"] is True

    hospital_own = {"harm_levels": ["death"], "categories": [], "near_misses": False}
    url = "/v1/hospitals/st-mary/outreach-policy"
    assert (await client.put(url, json=hospital_own, headers=admin())).status_code == 200
    seen = await client.get(url, headers=admin(role="coordinator", hospital="st-mary"))
    assert (seen.json()["source"], seen.json()["near_misses"]) == ("hospital", False)
    again = await client.post(
        "/v1/adverse-events", json={**near_miss, "reporter_event_id": "INC-54"}, headers=reporter()
    )
    assert again.json()["outreach_triggered"] is False

    elsewhere = await client.get(
        "/v1/hospitals/st-luke/outreach-policy",
        headers=admin(role="coordinator", hospital="st-mary"),
    )
    assert elsewhere.status_code == 403
    bound = admin(hospital="st-mary")
    assert (
        await client.put("/v1/outreach-policy", json=hospital_own, headers=bound)
    ).status_code == 403
    assert (await client.delete(url, headers=admin())).status_code == 204
    assert (await client.get(url, headers=coordinator)).json()["source"] == "network"
    assert (await client.delete(url, headers=admin())).status_code == 404

    bad = {"harm_levels": ["death"], "categories": ["near_miss"], "near_misses": False}
    refused_policy = await client.put("/v1/outreach-policy", json=bad, headers=admin())
    assert refused_policy.status_code == 422
    assert "near_misses" in refused_policy.json()["detail"]
