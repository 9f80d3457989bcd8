"""The outbox relay's gather window, against the real broker and database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from huddle_contracts.events import PeerCertified
from huddle_runtime import database
from huddle_runtime.kafka import new_producer
from huddle_runtime.metrics import Metrics
from huddle_runtime.outbox import OutboxRelay
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.integration

ProbeFactory = Callable[..., Awaitable[ServiceSettings]]
GATHER_SECONDS = 2.0  # five commits in a row fit in it even on a busy CI machine


def certified(peer: str, year: int) -> PeerCertified:
    return PeerCertified(
        peer=peer,
        network_id="north",
        hospital_id="h1",
        unit_id="icu",
        discipline="nurse",
        languages=("en",),
        certified_at=datetime(year, 1, 1, tzinfo=UTC),
        valid_until=datetime(year + 1, 1, 1, tzinfo=UTC),
    )


async def until(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("gather_seconds", "one_batch"), [(GATHER_SECONDS, True), (0.0, False)])
async def test_commits_right_behind_the_one_that_woke_the_relay_share_its_batch(
    probe: ProbeFactory, gather_seconds: float, one_batch: bool
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    relay = OutboxRelay(
        schema=settings.schema_name,
        pool=pool,
        producer=producer,
        connect=lambda: database.connect(settings),
        metrics=Metrics(),
        poll_seconds=60,  # only a NOTIFY wakes it within the test
        gather_seconds=gather_seconds,
    )
    running = asyncio.create_task(relay.run())
    await until(lambda: relay.active)
    await asyncio.sleep(0.2)  # its first drain, of an empty outbox, is over
    peer = "p_" + uuid.uuid4().hex
    first_commit = asyncio.get_running_loop().time()
    for committed, year in enumerate(range(2000, 2005), start=1):
        async with unit_of_work(pool, Tenant("north"), source="/huddle/probe") as uow:
            uow.publish(certified(peer, year))
        if not one_batch:
            await until(lambda n=committed: relay.published == n)
    await until(lambda: relay.published == 5)
    waited = asyncio.get_running_loop().time() - first_commit
    relay.stop()
    await running
    await producer.stop()
    await pool.close()
    if one_batch:
        assert relay.batches == 1
        assert waited >= GATHER_SECONDS  # the first row waited for the window
    else:
        assert relay.batches == 5  # each commit published on its own wake-up, at once
