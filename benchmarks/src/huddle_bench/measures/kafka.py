"""Raw aiokafka baselines: the latency floor and the throughput ceiling for anything on Kafka."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from huddle_local.kafka import create_topics
from huddle_runtime.kafka import new_producer
from huddle_runtime.outbox import OutboxMessage
from huddle_runtime.settings import KafkaSettings

from huddle_bench.context import Context
from huddle_bench.measures.events import TOPIC, offer_messages, record_bytes
from huddle_bench.model import RunResult, percentile

ROUND_TRIP_TOPIC = "huddle.bench.round-trip"


@dataclass(frozen=True)
class RoundTripParams:
    round_trips: int
    warmup: int = 20


@dataclass(frozen=True)
class ThroughputParams:
    messages: int
    warmup: int = 200


ROUND_TRIP = {False: RoundTripParams(round_trips=1_000), True: RoundTripParams(round_trips=200)}
THROUGHPUT = {False: ThroughputParams(messages=20_000), True: ThroughputParams(messages=10_000)}


async def ensure_topics(ctx: Context) -> None:
    if "topics" not in ctx.cache:
        await create_topics(ctx.kafka(), [ROUND_TRIP_TOPIC], partitions=1)
        await create_topics(ctx.kafka(), [TOPIC.name], partitions=TOPIC.partitions)
        ctx.cache["topics"] = True


def huddle_producer(ctx: Context, client_id: str) -> AIOKafkaProducer:
    """The producer every Huddle relay uses (acks=all, idempotent, no linger)."""
    return new_producer(KafkaSettings(bootstrap_servers=ctx.kafka()), client_id=client_id)


async def send_all(producer: AIOKafkaProducer, messages: list[OutboxMessage]) -> None:
    """Hand every record to the producer, then wait for every acknowledgement."""
    deliveries = [
        await producer.send(m.topic, value=m.value, key=m.key, headers=m.headers) for m in messages
    ]
    await asyncio.gather(*deliveries)


async def kafka_round_trip(ctx: Context) -> RunResult:
    """Produce one record with acks=all, wait for the consumer to receive it; one at a time."""
    params = ROUND_TRIP[ctx.smoke]
    await ensure_topics(ctx)
    message = offer_messages(ctx, 1)[0]
    # linger 0: the floor is the broker round trip itself, not a batching delay.
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.kafka(), acks="all", enable_idempotence=True, linger_ms=0
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ctx.kafka(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        isolation_level="read_committed",
    )
    partition = TopicPartition(ROUND_TRIP_TOPIC, 0)
    await producer.start()
    await consumer.start()
    latencies_ms: list[float] = []
    try:
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        total = params.warmup + params.round_trips
        with ctx.task("kafka round trips", total) as bar:
            for i in range(total):
                started = time.perf_counter()
                await (
                    await producer.send(
                        ROUND_TRIP_TOPIC,
                        value=message.value,
                        key=message.key,
                        headers=message.headers,
                        partition=0,
                    )
                )
                await asyncio.wait_for(consumer.getone(partition), timeout=30)
                if i >= params.warmup:
                    latencies_ms.append((time.perf_counter() - started) * 1000)
                bar.advance()
    finally:
        await consumer.stop()
        await producer.stop()
    return RunResult(
        metrics={
            "p50_ms": percentile(latencies_ms, 50),
            "p99_ms": percentile(latencies_ms, 99),
            "max_ms": max(latencies_ms),
            "round_trips": len(latencies_ms),
            "record_bytes": record_bytes(message),
        },
        series={"latency_ms": latencies_ms},
    )


async def kafka_producer_throughput(ctx: Context) -> RunResult:
    """Raw aiokafka with Huddle's producer settings: the same records the relay publishes."""
    params = THROUGHPUT[ctx.smoke]
    await ensure_topics(ctx)
    messages = offer_messages(ctx, params.messages)
    producer = huddle_producer(ctx, "bench-raw")
    await producer.start()
    try:
        await send_all(producer, messages[: params.warmup])  # connections and metadata
        with ctx.task("raw producer", None):
            started = time.perf_counter()
            await send_all(producer, messages)
            elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return RunResult(
        metrics={
            "msgs_per_s": len(messages) / elapsed,
            "seconds": elapsed,
            "messages": len(messages),
            "record_bytes": record_bytes(messages[0]),
        }
    )
