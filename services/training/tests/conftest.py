from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from huddle_contracts.topics import all_topic_names
from huddle_e2e.harness import held_service_settings, running_app
from huddle_local.issuer import LocalIssuer
from huddle_local.kafka import create_topics
from huddle_runtime.settings import ServiceSettings
from huddle_training.service import DEFINITION


@pytest.fixture(scope="session")
async def training_settings(
    database_url: str, kafka_bootstrap: str, local_issuer: LocalIssuer
) -> ServiceSettings:
    await create_topics(kafka_bootstrap, all_topic_names(), partitions=3)
    # The relay would delete rows once published; held, the outbox shows what each call queued.
    # The HTTP tests need no consumer (each app joining the group would rebalance it);
    # `training_live` runs one.
    return await held_service_settings(
        DEFINITION,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        jwks_file=local_issuer.jwks_path,
    )


@pytest.fixture
async def training(
    training_settings: ServiceSettings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(DEFINITION, training_settings) as running:
        yield running


@pytest.fixture
async def training_live(
    training_settings: ServiceSettings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service as deployed: its relay publishes to Kafka and its consumer reads the bus."""
    settings = training_settings.model_copy(
        update={
            "delivery": training_settings.delivery.model_copy(
                update={"relay_enabled": True, "consumer_enabled": True}
            )
        }
    )
    async with running_app(DEFINITION, settings) as running:
        yield running


def _bearer(
    issuer: LocalIssuer,
    role: str = "coordinator",
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


@pytest.fixture
def bearer(local_issuer: LocalIssuer) -> Callable[..., dict[str, str]]:
    """Authorization headers: bearer(role=..., network=..., hospital=..., subject=...)."""

    def headers(**claims: str | None) -> dict[str, str]:
        return _bearer(local_issuer, **claims)  # type: ignore[arg-type]

    return headers


@pytest.fixture
def network() -> str:
    """A network of its own for each test: nothing another test wrote is visible in it."""
    return f"net-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def outbox_of() -> Callable[[FastAPI, str], Awaitable[list[tuple[str, bytes]]]]:
    """(CloudEvents type, data) of every outbox row keyed by a peer, oldest first."""

    async def read(app: FastAPI, peer: str) -> list[tuple[str, bytes]]:
        async with app.state.runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT headers, value FROM outbox WHERE key = $1 ORDER BY id", peer.encode()
            )
        return [(dict(json.loads(r["headers"]))["ce_type"], bytes(r["value"])) for r in rows]

    return read
