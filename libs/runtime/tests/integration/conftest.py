"""A throwaway service ("probe") on the real PostgreSQL and Kafka, to test the runtime itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from huddle_contracts.topics import all_topic_names
from huddle_local.kafka import create_topics
from huddle_runtime import database
from huddle_runtime.migrations import Migration, migrate, runtime_migrations
from huddle_runtime.settings import (
    DatabaseSettings,
    DeliverySettings,
    KafkaSettings,
    ServiceSettings,
)

PROBE_MIGRATION = Migration(
    "0001_note.sql",
    """
    CREATE TABLE note (
        id          bigserial PRIMARY KEY,
        network_id  text NOT NULL,
        case_id     uuid NOT NULL UNIQUE,
        body        text NOT NULL
    );
    ALTER TABLE note ENABLE ROW LEVEL SECURITY;
    ALTER TABLE note FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON note
        USING (network_id = current_setting('huddle.network_id', true))
        WITH CHECK (network_id = current_setting('huddle.network_id', true));
    """,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
async def topics(kafka_bootstrap: str) -> str:
    await create_topics(kafka_bootstrap, all_topic_names(), partitions=3)
    return kafka_bootstrap


ProbeFactory = Callable[..., Awaitable[ServiceSettings]]


@pytest.fixture
async def probe(database_url: str, topics: str) -> ProbeFactory:
    """Settings for a fresh probe service with its own migrated schema and consumer group."""

    async def make(**delivery: object) -> ServiceSettings:
        name = f"probe_{uuid.uuid4().hex[:8]}"
        settings = ServiceSettings(
            service=name,
            environment="test",
            database=DatabaseSettings(url=database_url, pool_max_size=5),
            kafka=KafkaSettings(bootstrap_servers=topics),
            delivery=DeliverySettings(relay_poll_seconds=0.2, **delivery),
        )
        conn = await database.connect(settings)
        try:
            await migrate(
                conn,
                schema=settings.schema_name,
                role=settings.db_role,
                migrations=[*runtime_migrations(), PROBE_MIGRATION],
            )
        finally:
            await conn.close()
        return settings

    return make


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def probe_migration() -> Migration:
    return PROBE_MIGRATION
