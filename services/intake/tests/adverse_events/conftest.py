"""Shared by the adverse-event tests: report documents as incident systems send them (with
patient data that must never be kept), staff provisioned through the directory's CSV import,
and readers of what intake stored and published."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from huddle_contracts.events import Event
from huddle_contracts.registry import EVENT_TYPES
from huddle_local.issuer import LocalIssuer
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

PATIENT = "Jane Roe-Patient"
NARRATIVE = "found unresponsive after the infusion"
STAFF_NAME = "Dr Avery Quill"
HUDDLE = "https://huddle.dev/fhir/CodeSystem/"
HL7 = "http://terminology.hl7.org/CodeSystem/"


def coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": NARRATIVE}]}


class Documents:
    """Reports in Huddle's JSON and as FHIR R4 and R5 AdverseEvents.

    FHIR staff alternate between the three ways a reference names a practitioner: a contained
    Practitioner, a logical reference by identifier, and a contained PractitionerRole whose
    practitioner is contained too.
    """

    PATIENT = PATIENT
    NARRATIVE = NARRATIVE
    STAFF_NAME = STAFF_NAME

    def r4(
        self,
        *,
        event_id: str,
        staff: Sequence[str],
        unit: str = "icu",
        hospital: str | None = "st-mary",
        seriousness: str = "SeriousResultsInDeath",
        categories: Sequence[str] = (),
        actuality: str = "actual",
    ) -> dict[str, Any]:
        contained, references = self._staff(staff)
        return {
            "resourceType": "AdverseEvent",
            "id": "local-1",
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{PATIENT} {NARRATIVE}</div>',
            },
            "contained": [*contained, *self._place(unit, hospital), self._patient()],
            "identifier": {"system": "urn:incidents", "value": event_id},
            "actuality": actuality,
            "category": [coding(HUDDLE + "harm-category", c) for c in categories],
            "event": {"text": NARRATIVE},
            "subject": {"reference": "#patient", "display": PATIENT},
            "date": "2025-03-02T03:15:00+00:00",
            "location": {"reference": "#unit"},
            "seriousness": coding(HL7 + "adverse-event-seriousness", seriousness),
            "outcome": coding(HL7 + "adverse-event-outcome", "fatal")
            if seriousness == "SeriousResultsInDeath"
            else {"text": NARRATIVE},
            "contributor": references,
            "resultingCondition": [{"display": f"{PATIENT}: {NARRATIVE}"}],
            "suspectEntity": [{"instance": {"display": f"infusion pump of {PATIENT}"}}],
        }

    def r5(
        self,
        *,
        event_id: str,
        staff: Sequence[str],
        unit: str = "icu",
        hospital: str | None = "st-mary",
        harm: str = "death",
        categories: Sequence[str] = ("unexpected_death",),
    ) -> dict[str, Any]:
        contained, references = self._staff(staff)
        return {
            "resourceType": "AdverseEvent",
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{PATIENT} {NARRATIVE}</div>',
            },
            "contained": [*contained, *self._place(unit, hospital), self._patient()],
            "identifier": [{"system": "urn:incidents", "value": event_id}],
            "status": "completed",
            "actuality": "actual",
            "category": [coding(HUDDLE + "harm-category", c) for c in categories],
            "code": {"text": NARRATIVE},
            "subject": {"reference": "#patient", "display": PATIENT},
            "occurrenceDateTime": "2025-03-02T03:15:00Z",
            "location": {"reference": "#unit"},
            "seriousness": coding(HUDDLE + "harm-level", harm),
            "participant": [
                {"function": {"text": "performer"}, "actor": reference} for reference in references
            ],
            "note": [{"text": f"{PATIENT}: {NARRATIVE}"}],
            "resultingEffect": [{"display": NARRATIVE}],
            "suspectEntity": [{"instanceCodeableConcept": {"text": NARRATIVE}}],
        }

    def huddle(
        self,
        *,
        event_id: str,
        staff: Sequence[str | dict[str, Any]],
        unit_ids: Sequence[str] = ("icu",),
        harm_level: str = "death",
        categories: Sequence[str] = ("unexpected_death",),
        **more: Any,
    ) -> dict[str, Any]:
        return {
            "reporter_event_id": event_id,
            "unit_ids": list(unit_ids),
            "harm_level": harm_level,
            "categories": list(categories),
            "occurred_at": "2025-03-02T03:15:00Z",
            "involved": [{"staff_ref": s} if isinstance(s, str) else s for s in staff],
            **more,
        }

    def _staff(self, refs: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        contained: list[dict[str, Any]] = []
        references: list[dict[str, Any]] = []
        for i, ref in enumerate(refs):
            person = {
                "resourceType": "Practitioner",
                "id": f"prac-{i}",
                "identifier": [{"system": "urn:employees", "value": ref}],
                "name": [{"text": STAFF_NAME}],
            }
            if i % 3 == 0:
                contained.append(person)
                references.append({"reference": f"#prac-{i}", "display": STAFF_NAME})
            elif i % 3 == 1:
                references.append(
                    {"type": "Practitioner", "identifier": {"value": ref}, "display": STAFF_NAME}
                )
            else:
                contained.append(person)
                contained.append(
                    {
                        "resourceType": "PractitionerRole",
                        "id": f"role-{i}",
                        "practitioner": {"reference": f"#prac-{i}"},
                        "code": [coding(HL7 + "practitioner-role", "nurse")],
                    }
                )
                references.append({"reference": f"#role-{i}"})
        return contained, references

    def _place(self, unit: str, hospital: str | None) -> list[dict[str, Any]]:
        location: dict[str, Any] = {
            "resourceType": "Location",
            "id": "unit",
            "identifier": [{"value": unit}],
            "name": f"bed 4, next to {PATIENT}",
        }
        if hospital is not None:
            location["managingOrganization"] = {"identifier": {"value": hospital}}
        return [location]

    def _patient(self) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "id": "patient",
            "name": [{"text": PATIENT}],
            "identifier": [{"system": "urn:mrn", "value": "MRN-55501"}],
        }


@pytest.fixture
def documents() -> Documents:
    return Documents()


@pytest.fixture
def network() -> str:
    return f"net-{uuid.uuid4().hex[:10]}"


def staff_refs(n: int) -> list[str]:
    return [f"EMP{uuid.uuid4().hex[:8].upper()}" for _ in range(n)]


@pytest.fixture
def new_staff_refs() -> Callable[[int], list[str]]:
    """Staff identifiers never seen before, so none can be found where it should not be."""
    return staff_refs


Headers = Callable[..., dict[str, str]]


@pytest.fixture
def reporter(local_issuer: LocalIssuer, network: str) -> Headers:
    """Headers of an incident system (role reporter) in the test's network."""

    def headers(
        content_type: str = "application/json",
        *,
        hospital: str | None = "st-mary",
        role: str = "reporter",
        for_network: str | None = None,
        subject: str = "incident-system",
        **extra: str,
    ) -> dict[str, str]:
        token = local_issuer.mint(
            role=role, network=for_network or network, hospital=hospital, subject=subject
        )
        return {"Authorization": f"Bearer {token}", "Content-Type": content_type, **extra}

    return headers


@pytest.fixture
def admin(local_issuer: LocalIssuer, network: str) -> Headers:
    def headers(*, role: str = "network_admin", hospital: str | None = None) -> dict[str, str]:
        token = local_issuer.mint(role=role, network=network, hospital=hospital, subject="admin")
        return {"Authorization": f"Bearer {token}"}

    return headers


Staff = tuple[str, ...]
"""(staff_ref, unit_id, discipline) or (staff_ref, unit_id, discipline, manager_ref)."""
Provision = Callable[[Sequence[Staff]], Awaitable[None]]


@pytest.fixture
def provision(intake: tuple[FastAPI, httpx.AsyncClient], admin: Headers, network: str) -> Provision:
    """Staff into the workforce directory through the CSV import, as a network admin would."""

    async def load(staff: Sequence[Staff]) -> None:
        _, client = intake
        lines = ["staff_ref,hospital_id,unit_id,discipline,manager_ref,display_name"]
        for ref, unit, discipline, *manager in staff:
            lines.append(f"{ref},st-mary,{unit},{discipline},{''.join(manager)},{STAFF_NAME}")
        response = await client.post(
            "/v1/directory/import",
            content="\r\n".join(lines) + "\r\n",
            headers={**admin(), "Content-Type": "text/csv"},
        )
        assert response.status_code == 200, response.text

    return load


@pytest.fixture
async def held(
    intake: tuple[FastAPI, httpx.AsyncClient],
) -> tuple[FastAPI, httpx.AsyncClient]:
    """Intake with its outbox relay held, so what it publishes stays in the outbox to be read."""
    app, client = intake
    app.state.runtime.relay.stop()
    await app.state.runtime._tasks[0]
    return app, client


Published = Callable[[FastAPI], Awaitable[list[Event]]]


@pytest.fixture
def published(network: str) -> Published:
    """The events in the outbox for the test's network, in order."""

    async def read(app: FastAPI) -> list[Event]:
        async with app.state.runtime.pool.acquire() as conn:
            rows = await conn.fetch("SELECT headers, value FROM outbox ORDER BY id")
        events = []
        for row in rows:
            headers = dict(json.loads(row["headers"]))
            event = EVENT_TYPES[headers["ce_type"]].model_validate_json(row["value"])
            if event.network_id == network:
                events.append(event)
        return events

    return read


Count = Callable[[FastAPI, str], Awaitable[int]]


@pytest.fixture
def count(network: str) -> Count:
    """Rows of a table the test's network sees (row-level security applies)."""

    async def rows(app: FastAPI, table: str) -> int:
        assert table.isidentifier()
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            found: int = await uow.conn.fetchval(f"SELECT count(*) FROM {table}")
        return found

    return rows


Scan = Callable[[Sequence[str]], Awaitable[list[str]]]


@pytest.fixture
def scan(database_url: str, intake_settings: Any) -> Scan:
    """Where any of ``needles`` is found: every text, bytea, json and array column of every
    table in intake's schema (outbox included), read as the superuser, past row-level security.
    """

    async def search(needles: Sequence[str]) -> list[str]:
        schema = intake_settings.schema_name
        conn = await asyncpg.connect(database_url)
        try:
            columns = await conn.fetch(
                """SELECT c.table_name, c.column_name, c.data_type
                     FROM information_schema.columns c
                     JOIN information_schema.tables t
                       ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                    WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE'
                      AND c.data_type IN ('text', 'character varying', 'bytea', 'jsonb',
                                          'json', 'ARRAY')""",
                schema,
            )
            assert {"outbox", "adverse_event", "support_request"} <= {
                c["table_name"] for c in columns
            }
            found = []
            for column in columns:
                target = f'"{schema}"."{column["table_name"]}"."{column["column_name"]}"'
                value = f'"{column["column_name"]}"'
                if column["data_type"] == "bytea":
                    where = f"position(convert_to($1, 'UTF8') in {value}) > 0"
                else:
                    where = f"strpos({value}::text, $1) > 0"
                for needle in needles:
                    hits = await conn.fetchval(
                        f'SELECT count(*) FROM "{schema}"."{column["table_name"]}" WHERE {where}',
                        needle,
                    )
                    if hits:
                        found.append(f"{target} holds {needle!r}")
            return found
        finally:
            await conn.close()

    return search


@pytest.fixture
def reporter_pseudonym(intake_settings: Any, network: str) -> str:
    """The pseudonym of the default reporting system, as outreach requests name their submitter."""
    return pseudonym_for(intake_settings.pseudonym_key, network, "reporter:incident-system")
