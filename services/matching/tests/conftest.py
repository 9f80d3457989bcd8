from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from huddle_contracts.events import Event
from huddle_contracts.registry import EVENT_TYPES
from huddle_e2e.harness import held_service_settings, running_app
from huddle_local.issuer import LocalIssuer
from huddle_matching.application.search import Matching
from huddle_matching.service import DEFINITION
from huddle_runtime.settings import ServiceSettings


@pytest.fixture(scope="session")
async def matching_settings(database_url: str, local_issuer: LocalIssuer) -> ServiceSettings:
    return await held_service_settings(
        DEFINITION,
        database_url=database_url,
        kafka_bootstrap="127.0.0.1:1",
        jwks_file=local_issuer.jwks_path,
    )


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 10, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class MatchingUnderTest:
    app: FastAPI
    client: httpx.AsyncClient
    matching: Matching
    clock: Clock
    network: str


@pytest.fixture
async def matching(
    matching_settings: ServiceSettings, kafka_bootstrap: str
) -> AsyncIterator[MatchingUnderTest]:
    settings = matching_settings.model_copy(
        update={
            "kafka": matching_settings.kafka.model_copy(
                update={"bootstrap_servers": kafka_bootstrap}
            )
        }
    )
    clock = Clock()
    under_test = Matching(clock=clock)
    async with running_app(DEFINITION, settings) as (app, client):
        # The scheduler and the API use the test's clock (the scheduler reads runtime.state).
        app.state.matching = app.state.runtime.state["matching"] = under_test
        yield MatchingUnderTest(app, client, under_test, clock, f"net-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def published() -> Callable[[FastAPI, str], object]:
    """The events a test network's units of work wrote to the outbox, decoded, oldest first."""

    async def read(app: FastAPI, network: str) -> list[Event]:
        async with app.state.runtime.pool.acquire() as conn:
            rows = await conn.fetch("SELECT headers, value FROM outbox ORDER BY id")
        events: list[Event] = []
        for row in rows:
            import json

            ce_type = dict(json.loads(row["headers"]))["ce_type"]
            event = EVENT_TYPES[ce_type].model_validate_json(row["value"])
            if event.network_id == network:
                events.append(event)
        return events

    return read
