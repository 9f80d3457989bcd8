from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import httpx
import pytest
from fastapi import FastAPI
from huddle_analytics.application.projections import HANDLERS
from huddle_analytics.application.releases import release_closed_months
from huddle_analytics.service import DEFINITION
from huddle_contracts.events import Event
from huddle_contracts.registry import encode_event
from huddle_contracts.topics import all_topic_names
from huddle_e2e.harness import held_service_settings, running_app
from huddle_local.issuer import LocalIssuer
from huddle_local.kafka import create_topics
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.tenancy import Tenant


@pytest.fixture(scope="session")
async def analytics_settings(
    database_url: str, kafka_bootstrap: str, local_issuer: LocalIssuer
) -> ServiceSettings:
    await create_topics(kafka_bootstrap, all_topic_names(), partitions=3)
    # Held in the outbox, the analysts' records can be read back by each test.
    return await held_service_settings(
        DEFINITION,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        jwks_file=local_issuer.jwks_path,
    )


@pytest.fixture
async def analytics(
    analytics_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    # Releases run when a test asks for them, not on a timer; the results' warmer only when a
    # test calls it (it would warm every network earlier tests left in the schema).
    monkeypatch.setenv("HUDDLE_ANALYTICS_RELEASE_INTERVAL_SECONDS", "3600")
    definition = dataclasses.replace(DEFINITION, tasks=(release_closed_months,))
    async with running_app(definition, analytics_settings) as running:
        yield running


@pytest.fixture
def bearer(local_issuer: LocalIssuer) -> Callable[..., dict[str, str]]:
    """Authorization headers: bearer(role=..., network=..., hospital=...)."""

    def headers(
        role: str = "analyst", network: str = "north", hospital: str | None = None
    ) -> dict[str, str]:
        token = local_issuer.mint(
            role=role, network=network, hospital=hospital, subject=f"emp-{uuid.uuid4().hex[:8]}"
        )
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def network() -> str:
    """A network of its own for each test: nothing another test wrote is visible in it."""
    return f"net-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def project() -> Callable[[FastAPI, Iterable[Event]], Awaitable[None]]:
    """Fold events into the projections as the consumer would (one unit of work each)."""

    async def run(app: FastAPI, events: Iterable[Event]) -> None:
        runtime = app.state.runtime
        for event in events:
            async with runtime.unit_of_work(Tenant(event.network_id)) as uow:
                await HANDLERS[event.event_type](uow, event, encode_event(event, source="/test"))

    return run
