"""Transactional outbox: write events with the state change, publish them with one relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from huddle_contracts.cloudevents import to_headers
from huddle_contracts.events import Event
from huddle_contracts.registry import encode_event
from huddle_contracts.topics import topic_for_event_type
from opentelemetry import trace
from opentelemetry.propagate import inject

from huddle_runtime.metrics import Metrics

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("huddle.outbox")


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def outbox_message(event: Event, *, source: str) -> OutboxMessage:
    """The exact record to publish, with the current trace context carried in its headers."""
    carrier: dict[str, str] = {}
    inject(carrier)
    cloud_event = encode_event(event, source=source, traceparent=carrier.get("traceparent"))
    topic = topic_for_event_type(cloud_event.type)
    key = cloud_event.subject.encode() if (topic.keyed and cloud_event.subject) else None
    return OutboxMessage(topic.name, key, cloud_event.data, to_headers(cloud_event))


async def add_to_outbox(conn: asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
    """Insert in the caller's transaction, so the messages exist if and only if it commits."""
    if not messages:
        return
    # One statement for them all (one execution, one trigger), in the order given.
    await conn.execute(
        """INSERT INTO outbox (topic, key, value, headers)
           SELECT topic, key, value, headers
             FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[])
                  WITH ORDINALITY AS m(topic, key, value, headers, position)
            ORDER BY position""",
        [m.topic for m in messages],
        [m.key for m in messages],
        [m.value for m in messages],
        [json.dumps([[n, v.decode()] for n, v in m.headers]) for m in messages],
    )


class OutboxRelay:
    """Publishes outbox rows in order. One active relay per service: a session advisory lock."""

    def __init__(
        self,
        *,
        schema: str,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        connect: object,
        metrics: Metrics,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        gather_seconds: float = 0.0,
    ) -> None:
        self._schema = schema
        self._pool = pool
        self._producer = producer
        self._connect = connect  # async () -> asyncpg.Connection, for LISTEN and the lock
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._gather_seconds = gather_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.active = False
        self.published = 0
        self.batches = 0  # transactions that published rows: published / batches is their size

    @property
    def lock_key(self) -> str:
        return f"huddle.outbox.{self._schema}"

    @property
    def channel(self) -> str:
        return f"{self._schema}_outbox"

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Until stopped: take the lock (or stand by), then publish on NOTIFY or every poll."""
        while not self._stopping.is_set():
            try:
                await self._run_once()
            except (TimeoutError, OSError, asyncpg.PostgresError, KafkaError) as exc:
                self.active = False
                log.warning("outbox relay interrupted; retrying", error=str(exc))
                await self._sleep(self._poll_seconds)

    async def _run_once(self) -> None:
        conn: asyncpg.Connection = await self._connect()  # type: ignore[operator]
        try:
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", self.lock_key
            )
            if not got:
                self.active = False
                await self._sleep(self._poll_seconds)
                return
            self.active = True
            await conn.add_listener(self.channel, self._on_notify)
            log.info("outbox relay active", schema=self._schema)
            woken = False
            loop = asyncio.get_running_loop()
            while not self._stopping.is_set():
                if not woken:
                    # A lost lock connection ends this round (and the lock); take it again.
                    # (A NOTIFY just came over it, so after one there is no need to ask.)
                    await conn.fetchval("SELECT 1")
                await self.drain()
                drained_at = loop.time()
                woken = await self._sleep(self._poll_seconds)
                if woken and loop.time() - drained_at < self._gather_seconds:
                    # Commits come faster than the window: let those right behind this one join
                    # its batch. One after a quiet spell is published at once.
                    await asyncio.sleep(self._gather_seconds)
        finally:
            self.active = False
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def drain(self) -> int:
        """Publish every pending row, batch by batch; returns how many were published.

        The backlog gauge is not refreshed here: /metrics counts the outbox when it is scraped.
        """
        # Commits from here on wake the next round; those before are in this one's batches.
        self._wake.clear()
        total = 0
        while not self._stopping.is_set():
            sent = await self._publish_batch()
            total += sent
            if sent < self._batch_size:
                break
        return total

    async def _publish_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            # Batches never interleave, even if a relay has not yet noticed it lost the
            # session lock to another: per-key order holds whatever happens to connections.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", self.lock_key + ".batch"
            )
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            with tracer.start_as_current_span(
                "outbox publish", attributes={"messaging.batch.message_count": len(rows)}
            ):
                deliveries = [
                    await self._producer.send(
                        row["topic"],
                        value=row["value"],
                        key=row["key"],
                        headers=[(n, v.encode()) for n, v in json.loads(row["headers"])],
                    )
                    for row in rows
                ]
                # Rows are deleted only after every record is acknowledged by all in-sync replicas.
                await asyncio.gather(*deliveries)
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        self.published += len(rows)
        self.batches += 1
        self._metrics.outbox_published.labels(self._schema).inc(len(rows))
        return len(rows)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> bool:
        """Wait for a NOTIFY (or stop) at most ``seconds``; whether one came."""
        woken = False
        with contextlib.suppress(asyncio.TimeoutError):
            woken = await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()
        return woken
