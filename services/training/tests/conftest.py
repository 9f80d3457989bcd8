from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from huddle_contracts.topics import all_topic_names
from huddle_e2e.harness import migrate_service, running_app, service_settings
from huddle_local.issuer import LocalIssuer
from huddle_local.kafka import create_topics
from huddle_runtime.settings import ServiceSettings
from huddle_training.service import DEFINITION


@pytest.fixture(scope="session")
async def training_settings(
    database_url: str, kafka_bootstrap: str, local_issuer: LocalIssuer
) -> ServiceSettings:
    await create_topics(kafka_bootstrap, all_topic_names(), partitions=3)
    settings = service_settings(
        DEFINITION,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        jwks_file=local_issuer.jwks_path,
        # The relay would delete rows once published; held, the outbox shows what each call queued.
        relay_enabled=False,
    )
    await migrate_service(DEFINITION, settings)
    return settings


@pytest.fixture
async def training(
    training_settings: ServiceSettings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(DEFINITION, training_settings) as running:
        yield running
