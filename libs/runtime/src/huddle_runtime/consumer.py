"""Idempotent consumer: inbox row and effects in one transaction, offsets committed after it.

A record that cannot be decoded, has no handler, or keeps failing goes to ``<topic>.dlt`` with
the reason and its original coordinates in headers, and the consumer moves on. Infrastructure
failures (database or broker unreachable) are retried without limit: nothing is dropped for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from huddle_contracts.cloudevents import CloudEvent, CloudEventError, from_record
from huddle_contracts.events import Event
from huddle_contracts.registry import EVENT_TYPES, decode_event
from huddle_contracts.topics import dead_letter_topic
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode

from huddle_runtime.metrics import Metrics
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import UnitOfWork, unit_of_work

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("huddle.consumer")

Handler = Callable[[UnitOfWork, Event, CloudEvent], Awaitable[None]]
# For CloudEvents from outside Huddle (no contract model): the handler parses ``data`` itself.
RawHandler = Callable[[UnitOfWork, CloudEvent], Awaitable[None]]

NETWORK_EXTENSION = "network"
"""CloudEvents extension (header ``ce_network``) naming the tenant of a raw inbound event."""
_NETWORK = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# SQLSTATE classes and codes that say "the platform, not the message": retried until they pass.
_TRANSIENT_SQLSTATES = ("08", "53", "57P", "40001", "40P01", "57014")


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Database or broker unreachable or overloaded; never the message's fault."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state.startswith(_TRANSIENT_SQLSTATES)
    return isinstance(
        exc,
        ConnectionError
        | asyncio.TimeoutError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.InternalClientError
        | KafkaError,
    )


def failure_reason(exc: BaseException) -> str:
    """What a dead-letter header and a log may say of a failure: its type and SQLSTATE, never
    its message (which may quote the data)."""
    state = getattr(exc, "sqlstate", None)
    constraint = getattr(exc, "constraint_name", None)
    return (
        type(exc).__name__
        + (f" sqlstate={state}" if state else "")
        + (f" constraint={constraint}" if constraint else "")
    )


# Failures a retry cannot fix (the same row, the same data): dead-letter at once.
DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
)


class _Interrupted(Exception):
    """The consumer is stopping mid-retry: leave the record uncommitted for redelivery."""


COMMIT_INTERVAL_SECONDS = 2.0


class PermanentFailure(Exception):
    """Raised by a handler for a message that can never succeed: dead-letter it at once."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 0.2
    backoff_max_seconds: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1)))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Wait for the batch in hand to commit before the partitions move to another member.
        async with self._owner.processing:
            log.info("partitions revoked", partitions=sorted(str(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owner.assignment_seen = True
        log.info("partitions assigned", partitions=sorted(str(tp) for tp in assigned))


class EventConsumer:
    """Consumes ``topics`` in group ``group_id`` and runs ``handlers`` exactly once per event."""

    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        pool: asyncpg.Pool,
        group_id: str,
        source: str,
        topics: list[str],
        handlers: Mapping[str, Handler],
        metrics: Metrics,
        retry: RetryPolicy,
        raw_handlers: Mapping[str, RawHandler] | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._pool = pool
        self._group_id = group_id
        self._source = source
        self._topics = topics
        self._handlers = dict(handlers)
        self._raw_handlers = dict(raw_handlers or {})
        self._metrics = metrics
        self._retry = retry
        self._stopping = asyncio.Event()
        self.processing = asyncio.Lock()
        self.assignment_seen = False
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0

    @property
    def ready(self) -> bool:
        return self.assignment_seen and not self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        await self._consumer.start()

    async def close(self) -> None:
        # Called once run() has returned; holding `processing` here could deadlock with a
        # rebalance's revocation callback that waits for it.
        self.stop()
        await self._consumer.stop()

    async def run(self) -> None:
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            async with self.processing:
                for tp, records in batches.items():
                    if self._stopping.is_set():
                        break
                    if tp not in self._consumer.assignment():
                        continue  # revoked while we waited; its new owner will read it
                    await self._process_partition(tp, records)

    async def _process_partition(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        self._report_lag(tp, records[0].offset)
        pending: int | None = None
        last_commit = time.monotonic()
        for record in records:
            if self._stopping.is_set():
                break
            try:
                dead_lettered = await self._process(record)
            except _Interrupted:
                break
            pending = record.offset + 1
            # Commit often enough that a slow batch never outlives the poll interval, and at
            # once after a dead letter so that it is not sent twice after a rebalance.
            if dead_lettered or time.monotonic() - last_commit > COMMIT_INTERVAL_SECONDS:
                if not await self._commit(tp, pending):
                    return
                pending, last_commit = None, time.monotonic()
        if pending is not None:
            await self._commit(tp, pending)

    async def _commit(self, tp: TopicPartition, next_offset: int) -> bool:
        try:
            await self._consumer.commit({tp: next_offset})
        except CommitFailedError as exc:
            # The group moved on; the new owner redelivers and the inbox absorbs it.
            log.warning("offset commit refused after rebalance", partition=str(tp), error=str(exc))
            return False
        self._report_lag(tp, next_offset)
        return True

    def _report_lag(self, tp: TopicPartition, position: int) -> None:
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )

    async def _process(self, record: ConsumerRecord) -> bool:
        """Handle or dead-letter one record; True when it was dead-lettered."""
        headers = list(record.headers or ())
        context = extract({k: (v or b"").decode(errors="replace") for k, v in headers})
        with tracer.start_as_current_span(
            f"{record.topic} process",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "messaging.consumer.group.name": self._group_id,
            },
        ) as span:
            try:
                reason = await self._handle(record, span)
            except _Interrupted:
                raise
            except Exception as exc:  # a record must never stop the consumer: dead-letter it
                log.exception("unexpected failure handling a record")
                reason = f"unexpected failure: {failure_reason(exc)}"
            if reason is None:
                return False
            span.set_status(Status(StatusCode.ERROR, reason))
            await self._dead_letter(record, reason)
            return True

    async def _handle(self, record: ConsumerRecord, span: trace.Span) -> str | None:
        """Run the handler with retries; the reason to dead-letter, or None when done."""
        try:
            cloud_event = from_record(record.headers, record.value)
            span.set_attribute("messaging.message.id", cloud_event.id)
            raw = self._raw_handlers.get(cloud_event.type)
            handler = self._handlers.get(cloud_event.type)
            if raw is not None:
                network = cloud_event.extensions.get(NETWORK_EXTENSION, "")
                if not _NETWORK.fullmatch(network):
                    return "inbound event has no valid ce_network extension naming its network"
                tenant = Tenant(network_id=network)

                def work(uow: UnitOfWork) -> Awaitable[None]:
                    assert raw is not None
                    return raw(uow, cloud_event)

            elif handler is not None:
                event = decode_event(cloud_event)
                tenant = Tenant(network_id=event.network_id)

                def work(uow: UnitOfWork) -> Awaitable[None]:
                    assert handler is not None
                    return handler(uow, event, cloud_event)

            elif cloud_event.type in EVENT_TYPES:
                # Another event on a shared topic (e.g. SessionCompleted beside CaseClosed).
                self._metrics.events_handled.labels(cloud_event.type, "ignored").inc()
                return None
            else:
                return f"unknown event type {cloud_event.type!r} (no contract in this version)"
        except CloudEventError as exc:
            return f"undecodable: {exc}"
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                outcome = await self._handle_once(record, cloud_event, tenant, work)
            except PermanentFailure as exc:
                return f"permanent failure: {exc}"
            except DETERMINISTIC_ERRORS as exc:
                return f"permanent failure: {failure_reason(exc)}"
            except Exception as exc:
                if is_infrastructure_failure(exc):
                    # Not the message's fault: keep it, wait, try again (never dead-letter it).
                    attempt -= 1
                    log.warning("infrastructure failure; retrying", error=failure_reason(exc))
                    await self._pause(self._retry.delay(3))
                    continue
                log.warning(
                    "handler failed",
                    event_type=cloud_event.type,
                    attempt=attempt,
                    error=failure_reason(exc),
                )
                if attempt >= self._retry.max_attempts:
                    return f"handler failed {attempt} times: {failure_reason(exc)}"
                await self._pause(self._retry.delay(attempt))
                continue
            self._metrics.handler_seconds.labels(cloud_event.type).observe(
                time.perf_counter() - started
            )
            self._metrics.events_handled.labels(cloud_event.type, outcome).inc()
            return None

    async def _handle_once(
        self,
        record: ConsumerRecord,
        cloud_event: CloudEvent,
        tenant: Tenant,
        work: Callable[[UnitOfWork], Awaitable[None]],
    ) -> str:
        async with unit_of_work(self._pool, tenant, source=self._source) as uow:
            inserted = await uow.conn.fetchval(
                """INSERT INTO inbox (consumer, source, event_id, event_type, topic,
                                      kafka_partition, kafka_offset)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT DO NOTHING RETURNING true""",
                self._group_id,
                cloud_event.source,
                cloud_event.id,
                cloud_event.type,
                record.topic,
                record.partition,
                record.offset,
            )
            if not inserted:
                self.duplicates += 1
                return "duplicate"
            await work(uow)
        self.handled += 1
        return "handled"

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        headers = [
            *(record.headers or ()),
            ("dlt.reason", reason[:2000].encode()),
            ("dlt.original.topic", record.topic.encode()),
            ("dlt.original.partition", str(record.partition).encode()),
            ("dlt.original.offset", str(record.offset).encode()),
            ("dlt.consumer.group", self._group_id.encode()),
            ("dlt.failed.at", datetime.now(UTC).isoformat().encode()),
        ]
        target = dead_letter_topic(record.topic)
        while True:
            try:
                delivery = await self._producer.send(
                    target, value=record.value, key=record.key, headers=headers
                )
                await delivery
                break
            except KafkaError as exc:
                log.warning("dead-letter publish failed; retrying", error=failure_reason(exc))
                await self._pause(self._retry.delay(3))
        self.dead_lettered += 1
        self._metrics.dead_letters.labels(record.topic).inc()
        log.warning(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        if self._stopping.is_set():
            raise _Interrupted
