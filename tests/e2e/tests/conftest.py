from __future__ import annotations

import pytest
from huddle_contracts.topics import all_topic_names
from huddle_local.kafka import create_topics


@pytest.fixture(scope="session")
async def topics(kafka_bootstrap: str) -> str:
    await create_topics(kafka_bootstrap, all_topic_names(), partitions=3)
    return kafka_bootstrap
