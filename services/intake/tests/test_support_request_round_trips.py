"""What one POST /v1/support-requests asks of PostgreSQL: every statement, counted."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from asyncpg.connection import LoggedQuery
from huddle_e2e.harness import running_app
from huddle_intake.service import DEFINITION
from huddle_local.issuer import LocalIssuer
from huddle_runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration

# Intake alone with one pooled connection: no scheduler, relay or consumer shares it.
REQUEST_ONLY = dataclasses.replace(DEFINITION, tasks=())


def only_the_request(settings: ServiceSettings) -> ServiceSettings:
    return settings.model_copy(
        update={
            "database": settings.database.model_copy(
                update={"pool_min_size": 1, "pool_max_size": 1}
            ),
            "delivery": settings.delivery.model_copy(
                update={"relay_enabled": False, "consumer_enabled": False}
            ),
        }
    )


@pytest.mark.parametrize(
    ("body", "crisis_resources_read"),
    [
        ({"urgency": "routine", "contact": {"phone": "+44 7700 900123"}}, False),
        ({"urgency": "routine"}, False),
        ({"urgency": "crisis"}, True),
    ],
)
async def test_a_request_is_one_statement_and_its_outbox_row_in_one_transaction(
    intake_settings: ServiceSettings,
    local_issuer: LocalIssuer,
    body: dict[str, object],
    crisis_resources_read: bool,
) -> None:
    statements: list[str] = []

    def record(query: LoggedQuery) -> None:
        statements.append(" ".join(query.query.split()))

    async with running_app(REQUEST_ONLY, only_the_request(intake_settings)) as (app, client):
        async with app.state.runtime.pool.acquire() as conn:
            conn.add_query_logger(record)
        for _ in range(2):  # the first also prepares its statements and looks up their types
            statements.clear()
            token = local_issuer.mint(
                role="worker", network="north", hospital="st-mary", subject=f"e-{uuid.uuid4()}"
            )
            created = await client.post(
                "/v1/support-requests",
                json={"unit_id": "icu", "discipline": "nurse", **body},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201, created.text

    expected = [
        "BEGIN; SELECT set_config(",  # with the tenant (row-level security), one round trip
        "WITH RECURSIVE line",  # request, contact, journey steps; reads the reporting line
        *(["SELECT label, how_to_reach FROM crisis_resource"] if crisis_resources_read else []),
        "INSERT INTO outbox",
        "COMMIT",  # and nothing as the pool takes the connection back (no reset query)
    ]
    assert len(statements) == len(expected), statements
    assert all(s.startswith(e) for s, e in zip(statements, expected, strict=True)), statements
