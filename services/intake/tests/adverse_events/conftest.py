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
from huddle_e2e.fhir_documents import STAFF_NAME, Documents
from huddle_local.issuer import LocalIssuer
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant


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
