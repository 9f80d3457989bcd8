"""How the consumer commits offsets to Kafka, with a small fake of the Kafka consumer: only what
it still owns, nothing lost to a refusal or a cancellation, and never a hang when closing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from huddle_runtime.consumer import EventConsumer, RetryPolicy
from huddle_runtime.metrics import Metrics

OWNED, GONE = TopicPartition("huddle.support-requested.v1", 0), TopicPartition("t", 9)


@dataclass
class FakeKafkaConsumer:
    """Owns ``OWNED``; ``on_commit`` decides what a commit does (by default it succeeds)."""

    on_commit: Callable[[dict[TopicPartition, int]], object] | None = None
    committed: list[dict[TopicPartition, int]] = field(default_factory=list)
    stopped: bool = False

    def assignment(self) -> set[TopicPartition]:
        return {OWNED}

    def highwater(self, tp: TopicPartition) -> int:
        return 100

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.on_commit is not None:
            outcome = self.on_commit(offsets)
            if asyncio.iscoroutine(outcome):
                await outcome
        self.committed.append(dict(offsets))

    async def stop(self) -> None:
        self.stopped = True


def consumer_over(kafka: FakeKafkaConsumer) -> EventConsumer:
    return EventConsumer(
        consumer=kafka,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        pool=None,  # type: ignore[arg-type]
        group_id="huddle.matching",
        source="/huddle/matching",
        topics=[OWNED.topic],
        handlers={},
        metrics=Metrics(),
        retry=RetryPolicy(max_attempts=1),
    )


async def test_only_partitions_still_owned_are_committed() -> None:
    kafka = FakeKafkaConsumer()
    consumer = consumer_over(kafka)
    consumer._offset_done(OWNED, 7)
    consumer._offset_done(GONE, 3)  # moved to another member: it reads on from its commit
    assert await consumer.flush()
    assert kafka.committed == [{OWNED: 7}]
    assert await consumer.flush()  # nothing left to commit, nothing sent
    assert kafka.committed == [{OWNED: 7}]


async def test_a_refused_commit_keeps_its_offsets_unless_newer_ones_came_meanwhile() -> None:
    consumer: EventConsumer

    def refuse(_: dict[TopicPartition, int]) -> None:
        consumer._offset_done(OWNED, 9)  # a batch committed while the request was out
        raise KafkaError("refused")

    kafka = FakeKafkaConsumer(on_commit=refuse)
    consumer = consumer_over(kafka)
    consumer._offset_done(OWNED, 7)
    assert not await consumer.flush()
    kafka.on_commit = None
    assert await consumer.flush()
    assert kafka.committed == [{OWNED: 9}]


async def test_a_cancelled_commit_keeps_its_offsets() -> None:
    kafka = FakeKafkaConsumer(on_commit=lambda _: asyncio.Event().wait())
    consumer = consumer_over(kafka)
    consumer._offset_done(OWNED, 7)
    flushing = asyncio.create_task(consumer.flush())
    await asyncio.sleep(0.01)
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    kafka.on_commit = None
    assert await consumer.flush()
    assert kafka.committed == [{OWNED: 7}]


async def test_closing_with_the_broker_away_gives_up_the_commit_and_leaves_the_group() -> None:
    # aiokafka retries a commit to an unreachable broker until the consumer stops.
    kafka = FakeKafkaConsumer(on_commit=lambda _: asyncio.Event().wait())
    consumer = consumer_over(kafka)
    consumer._offset_done(OWNED, 7)
    await asyncio.wait_for(consumer.close(timeout_s=0.1), timeout=5)
    assert kafka.stopped
    assert kafka.committed == []
