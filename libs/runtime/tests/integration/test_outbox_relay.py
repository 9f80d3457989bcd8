"""The outbox relay's gather window, against the real broker and database: it holds a commit
only while commits come faster than the window."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
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


Commit = Callable[[str, int], Awaitable[None]]


@asynccontextmanager
async def running_relay(
    settings: ServiceSettings, gather_seconds: float
) -> AsyncIterator[tuple[OutboxRelay, Commit]]:
    """A relay woken only by NOTIFY, and a way to commit one event to its outbox."""
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

    async def commit(peer: str, year: int) -> None:
        async with unit_of_work(pool, Tenant("north"), source="/huddle/probe") as uow:
            uow.publish(certified(peer, year))

    try:
        await until(lambda: relay.active)
        yield relay, commit
    finally:
        relay.stop()
        await running
        await producer.stop()
        await pool.close()


async def test_a_commit_after_a_quiet_spell_is_published_at_once_and_those_right_behind_share_a_batch(
    probe: ProbeFactory,
) -> None:
    clock = asyncio.get_running_loop().time
    peer = "p_" + uuid.uuid4().hex
    async with running_relay(await probe(), GATHER_SECONDS) as (relay, commit):
        # Quiet for longer than the window since its first drain (of an empty outbox).
        await asyncio.sleep(GATHER_SECONDS + 1.0)
        started = clock()
        await commit(peer, 2000)
        await until(lambda: relay.published == 1)
        alone, second = clock() - started, clock()
        for year in range(2001, 2005):
            await commit(peer, year)
        await until(lambda: relay.published == 5)
        behind = clock() - second
    assert alone < GATHER_SECONDS  # not held for the window
    assert relay.batches == 2  # the first alone, the four right behind it together
    assert behind >= GATHER_SECONDS  # they waited for the window


async def test_with_no_window_each_commit_is_published_on_its_own_wake_up(
    probe: ProbeFactory,
) -> None:
    peer = "p_" + uuid.uuid4().hex
    async with running_relay(await probe(), 0.0) as (relay, commit):
        for committed, year in enumerate(range(2000, 2005), start=1):
            await commit(peer, year)
            await until(lambda n=committed: relay.published == n)
    assert relay.batches == 5
