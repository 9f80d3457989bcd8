"""Idempotent consumer: inbox row and effects in one transaction, offsets committed after it.

The records of a fetched partition batch (at most ``batch_size``) share one transaction, so one
fsync: their inbox rows, effects and outbox rows commit together, and the Kafka offsets are
committed once the transaction has: every partition's in one request, at most once an interval, and
at once after a dead letter, before partitions move and when the consumer stops (a crash redelivers
about an interval's worth, which the inbox absorbs). Each partition's records queue for a worker of
their own, so partitions run side by side and none waits for another's batch. If a record fails,
the batch is rolled back and done again with each record in a savepoint, so that only that record
is left out. A record that cannot be decoded, has no handler, or keeps failing goes to
``<topic>.dlt`` with the reason and its original coordinates in headers, and the consumer moves on;
the others of its batch are not lost with it. Infrastructure failures (database or broker
unreachable) are retried without limit: nothing is dropped for them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from huddle_contracts.cloudevents import CloudEvent, CloudEventError, from_record
from huddle_contracts.events import Event
from huddle_contracts.registry import EVENT_TYPES, decode_event
from huddle_contracts.topics import dead_letter_topic
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from huddle_runtime.metrics import Metrics
from huddle_runtime.outbox import OutboxMessage, add_to_outbox, outbox_message
from huddle_runtime.tenancy import Tenant, apply_tenant
from huddle_runtime.unit_of_work import UnitOfWork, unit_of_work_on

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("huddle.consumer")

Handler = Callable[[UnitOfWork, Event, CloudEvent], Awaitable[None]]
# For CloudEvents from outside Huddle (no contract model): the handler parses ``data`` itself.
RawHandler = Callable[[UnitOfWork, CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class Inbound:
    """A record of a run given to a batch handler: its CloudEvent and its own unit of work (the
    run's connection and tenant; the events it publishes carry the record's trace)."""

    uow: UnitOfWork
    cloud_event: CloudEvent


@runtime_checkable
class BatchRawHandler(Protocol):
    """A raw handler that also takes a run of records at once: consecutive records of a batch of
    one type and tenant, on one connection, in offset order. ``batch`` returns, per record, None
    or the PermanentFailure that refused it before it wrote anything; any exception it raises
    has the batch done again one record at a time, each through ``__call__`` in a savepoint.
    A copy of a record later in the same run counts as a duplicate, even of a refused one (the
    dead letter holds it)."""

    async def __call__(self, uow: UnitOfWork, cloud_event: CloudEvent) -> None: ...

    async def batch(self, records: Sequence[Inbound]) -> Sequence[PermanentFailure | None]: ...


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


DEFAULT_BATCH_SIZE = 500

_INBOX_SQL = """INSERT INTO inbox (consumer, source, event_id, event_type, topic,
                                  kafka_partition, kafka_offset)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT DO NOTHING RETURNING true"""
# A batch reads which of its events the inbox already holds in one query, and writes its new
# rows in one statement at its end, with no ON CONFLICT: an event another consumer recorded
# meanwhile makes that statement fail, and the batch is then done again one record at a time.
# One probe of the primary key per event (a LATERAL with LIMIT), so the read costs what the batch
# holds, never what the inbox holds: as a semi-join, PostgreSQL hashed the whole inbox for a
# batch of a hundred events.
_INBOX_HELD_SQL = """SELECT k.source, k.event_id
                       FROM unnest($2::text[], $3::text[]) AS k(source, event_id)
                      CROSS JOIN LATERAL (SELECT FROM inbox i
                                           WHERE i.consumer = $1 AND i.source = k.source
                                             AND i.event_id = k.event_id
                                           LIMIT 1) AS held"""
_INBOX_ROWS_SQL = """INSERT INTO inbox (consumer, source, event_id, event_type, topic,
                                       kafka_partition, kafka_offset)
                    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                         $5::text[], $6::integer[], $7::bigint[])"""


class PermanentFailure(Exception):
    """Raised by a handler for a message that can never succeed: dead-letter it at once."""


class _RecordFailed(Exception):
    """A record of a batch run without savepoints failed: run the batch again with them."""


class _Undecodable(Exception):
    """The record can never reach a handler; ``reason`` goes with it to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _same_run(first: _Decoded, record: _Decoded) -> bool:
    return first.cloud_event.type == record.cloud_event.type and first.tenant == record.tenant


def _dedup_key(record: ConsumerRecord) -> tuple[str, str] | None:
    headers = dict(record.headers or ())
    source, event_id = headers.get("ce_source"), headers.get("ce_id")
    if source is None or event_id is None:
        return None
    return source.decode(errors="replace"), event_id.decode(errors="replace")


def _undecodable_reason(exc: Exception) -> str:
    if isinstance(exc, _Undecodable):
        return exc.reason
    log.exception("unexpected failure decoding a record")
    return f"unexpected failure: {failure_reason(exc)}"


def _permanent_reason(exc: BaseException) -> str | None:
    """The dead-letter reason of a failure no retry can fix; None for any other failure."""
    if isinstance(exc, PermanentFailure):
        return f"permanent failure: {exc}"
    if isinstance(exc, DETERMINISTIC_ERRORS):
        return f"permanent failure: {failure_reason(exc)}"
    return None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 0.2
    backoff_max_seconds: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class _Decoded:
    """A record ready for its handler: the event, its tenant and the work to run."""

    cloud_event: CloudEvent
    tenant: Tenant
    work: Callable[[UnitOfWork], Awaitable[None]]
    batch: BatchRawHandler | None = None
    """Set when the record's handler takes runs of records (outside a savepoint only)."""


@dataclass(frozen=True)
class _Waiting:
    """A record of a run waiting for its batch handler, with the span it is processed under."""

    record: ConsumerRecord
    decoded: _Decoded
    span: trace.Span


@dataclass
class _BatchInbox:
    """The inbox as a batch run without savepoints sees it."""

    held: set[tuple[str, str]]
    """(source, id) of the events already handled, the batch's own included as it goes."""
    rows: list[tuple[str, str, str, str, str, int, int]] = field(default_factory=list)


@dataclass
class _BatchOutcome:
    """What one transaction over a batch did; reported only once it has committed."""

    finished: int = 0
    """Leading records of the batch that are done (handled, duplicate, ignored, to dead-letter)."""
    handled: list[tuple[str, str, float]] = field(default_factory=list)
    dead_letters: list[tuple[ConsumerRecord, str]] = field(default_factory=list)
    retry: tuple[ConsumerRecord, BaseException] | None = None
    """The record that failed in a way a retry may fix; handled alone after the commit."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # The batches in hand commit before the partitions move to another member.
        await self._owner.settle()
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
        batch_size: int = DEFAULT_BATCH_SIZE,
        partitions_at_once: int = 4,
        commit_interval_s: float = 1.0,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._pool = pool
        self._group_id = group_id
        self._source = source
        self._topics = topics
        self._handlers = dict(handlers)
        self._raw_handlers = dict(raw_handlers or {})
        self._batch_handlers = {
            event_type: raw
            for event_type, raw in self._raw_handlers.items()
            if isinstance(raw, BatchRawHandler)
        }
        self._metrics = metrics
        self._retry = retry
        self._batch_size = batch_size
        self._partitions_limit = max(1, partitions_at_once)
        self._partitions_at_once = asyncio.Semaphore(self._partitions_limit)
        self._stopping = asyncio.Event()
        # Records fetched and not yet handled, per partition, each drained by a worker of its own.
        self._queues: dict[TopicPartition, collections.deque[ConsumerRecord]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        # Fetching waits while this many records are queued: memory stays bounded.
        self._queue_limit = 2 * self._partitions_limit * batch_size
        self._room = asyncio.Event()
        self._room.set()
        # Next offsets whose records the database has committed and Kafka not yet: one commit
        # request covers every partition, at most every interval, off the batches' path.
        self._commit_interval_s = commit_interval_s
        self._to_commit: dict[TopicPartition, int] = {}
        self._offsets_waiting = asyncio.Event()
        self._committing = asyncio.Lock()
        self.assignment_seen = False
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.batches = 0
        """Batch transactions committed."""

    @property
    def ready(self) -> bool:
        return self.assignment_seen and not self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()
        self._room.set()
        self._offsets_waiting.set()

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        await self._consumer.start()

    async def close(self, timeout_s: float = 10.0) -> None:
        """Commit what the workers did (run() has returned), then leave the group. The commit is
        bounded: with the broker away aiokafka retries it until the consumer stops, and those
        records are redelivered to the next owner, which the inbox absorbs."""
        self.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout_s)
        await self._consumer.stop()

    async def run(self) -> None:
        """Fetch, and queue each partition's records for a worker of its own that handles them
        batch by batch: partitions overlap one batch's database waits with another's Python,
        and none waits for the slowest of a fetch."""
        async with asyncio.TaskGroup() as workers:
            workers.create_task(self._commit_every_interval())
            while not self._stopping.is_set():
                await self._room.wait()
                if self._stopping.is_set():
                    break
                batches = await self._consumer.getmany(timeout_ms=500)
                # Revoked while we waited: its new owner will read it.
                assigned = self._consumer.assignment()
                for tp, records in batches.items():
                    if tp not in assigned or not records:
                        continue
                    queue = self._queues.get(tp)
                    if queue is None:
                        queue = self._queues[tp] = collections.deque()
                        worker = workers.create_task(self._drain(tp, queue))
                        self._workers.add(worker)
                        worker.add_done_callback(self._workers.discard)
                    queue.extend(records)
                if self._queued() >= self._queue_limit:
                    self._room.clear()

    def _queued(self) -> int:
        return sum(map(len, self._queues.values()))

    async def settle(self) -> None:
        """Drop what is queued, wait for the batches in hand, and commit their offsets (before a
        rebalance moves partitions: their next owner reads what was dropped from there)."""
        self._queues.clear()
        self._room.set()
        if self._workers:
            await asyncio.wait(list(self._workers))
        await self.flush()

    async def _drain(self, tp: TopicPartition, queue: collections.deque[ConsumerRecord]) -> None:
        """Handle ``tp``'s queue in batches, in offset order, until it is empty or dropped."""
        self._report_lag(tp, queue[0].offset)
        while not self._stopping.is_set():
            if not queue and self._queues.get(tp) is queue:
                del self._queues[tp]  # the partition's next fetch starts a new worker
                return
            # Bounded: each batch holds a pooled connection, and HTTP requests, the relay and
            # the readiness probe need theirs too.
            async with self._partitions_at_once:
                if self._stopping.is_set() or self._queues.get(tp) is not queue:
                    return  # stopped, or dropped by a rebalance, while it waited
                batch = list(itertools.islice(queue, self._batch_size))
                dead_before = self.dead_lettered
                finished = await self._process_batch(batch)
            if finished == 0:
                return  # only when stopping mid-retry: the batch is redelivered
            # After the database commit (and any dead letter's acknowledgement), never before.
            self._offset_done(tp, batch[finished - 1].offset + 1)
            if self.dead_lettered > dead_before:
                # At once: redelivered, a dead letter would be sent again (the inbox has no
                # record of an event it refused).
                await self.flush()
            if self._queues.get(tp) is not queue:
                return  # dropped by a rebalance meanwhile
            for _ in range(finished):
                queue.popleft()
            if self._queued() < self._queue_limit:
                self._room.set()

    def _offset_done(self, tp: TopicPartition, next_offset: int) -> None:
        self._to_commit[tp] = next_offset
        self._offsets_waiting.set()
        self._report_lag(tp, next_offset)

    async def _commit_every_interval(self) -> None:
        while not self._stopping.is_set():
            await self._offsets_waiting.wait()
            # The records handled meanwhile share the commit; a crash redelivers about this
            # interval's worth, which the inbox absorbs.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._commit_interval_s)
            if self._stopping.is_set():
                return  # close() commits once the workers are done
            if not await self.flush():
                with contextlib.suppress(TimeoutError):  # refused: not again at once
                    await asyncio.wait_for(self._stopping.wait(), self._retry.delay(3))

    async def flush(self) -> bool:
        """Commit to Kafka the offsets of every batch the database has committed, for the
        partitions still assigned (a partition gone elsewhere is read again by its new owner
        from its last committed offset, and the inbox absorbs it). False if Kafka refused."""
        async with self._committing:
            assigned = self._consumer.assignment()
            offsets = {tp: n for tp, n in self._to_commit.items() if tp in assigned}
            self._to_commit = {}
            self._offsets_waiting.clear()
            if not offsets:
                return True
            try:
                await self._consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # The group moved on (or the partitions did): as above, the new owner redelivers.
                log.warning(
                    "offset commit refused after rebalance",
                    partitions=sorted(str(tp) for tp in offsets),
                    error=str(exc),
                )
            except BaseException as exc:
                # Not committed (aiokafka retries a broker that is away itself; this is a
                # refusal, or a cancellation): keep them, unless newer ones came since.
                for tp, offset in offsets.items():
                    self._to_commit.setdefault(tp, offset)
                self._offsets_waiting.set()
                if not isinstance(exc, KafkaError):
                    raise
                log.warning("offset commit failed; retrying", error=str(exc))
                return False
            return True

    def _report_lag(self, tp: TopicPartition, position: int) -> None:
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )

    async def _process_batch(self, records: list[ConsumerRecord]) -> int:
        """Handle the leading records of ``records`` in one transaction; how many are done.

        First without savepoints (the savepoint, the tenant scope, the inbox row and the outbox
        rows are round trips saved per record); if any record fails, that transaction is rolled
        back whole and the batch is done again, each record in a savepoint, so that only the
        failed record is left out.
        """
        isolated = False
        while True:
            try:
                outcome = await self._try_batch(records, isolated=isolated)
            except _Interrupted:
                return 0
            except _RecordFailed:
                isolated = True
                continue
            except Exception as exc:
                if not is_infrastructure_failure(exc):
                    # Refused as a whole (at commit, say, by a deferred constraint): no savepoint
                    # can tell which record did it, so each gets a transaction of its own.
                    log.warning("batch refused; one record at a time", error=failure_reason(exc))
                    return await self._process_one_by_one(records)
                # Not the messages' fault: nothing of the batch is left; wait and do it again.
                log.warning("infrastructure failure; retrying the batch", error=failure_reason(exc))
                try:
                    await self._pause(self._retry.delay(3))
                except _Interrupted:
                    return 0
                continue
            break
        self.batches += 1
        for event_type, result, seconds in outcome.handled:
            self._metrics.handler_seconds.labels(event_type).observe(seconds)
            self._metrics.events_handled.labels(event_type, result).inc()
            self.handled += result == "handled"
            self.duplicates += result == "duplicate"
        try:
            # In offset order: a run's refusals are known only once the run is handed over.
            for record, reason in sorted(outcome.dead_letters, key=lambda d: d[0].offset):
                await self._dead_letter(record, reason)
        except _Interrupted:
            return 0  # stopping with the broker away: offsets stay, the inbox absorbs the rest
        if outcome.retry is None:
            return outcome.finished
        failed, error = outcome.retry
        log.warning("handler failed", attempt=1, error=failure_reason(error))
        try:
            await self._pause(self._retry.delay(1))
            # It ran in the batch, then again in its savepoint: two attempts already made.
            await self._process(failed, attempts_made=2)
        except _Interrupted:
            return outcome.finished
        return outcome.finished + 1

    async def _process_one_by_one(self, records: list[ConsumerRecord]) -> int:
        for done, record in enumerate(records):
            try:
                await self._process(record)
            except _Interrupted:
                return done
        return len(records)

    async def _try_batch(self, records: list[ConsumerRecord], *, isolated: bool) -> _BatchOutcome:
        """One transaction. ``isolated``: each record in a savepoint, so a failed one is rolled
        back alone; otherwise a failed record rolls the whole batch back (``_RecordFailed``).

        Dead letters and counters wait in the outcome until the commit: if the batch is rolled
        back, nothing of it has been said anywhere.
        """
        outcome = _BatchOutcome()
        outbox: list[OutboxMessage] = []
        scoped: list[Tenant] = []  # the tenant the transaction is scoped to, once set
        async with self._pool.acquire() as conn, conn.transaction():
            inbox = None if isolated else await self._inbox_for(conn, records)
            run: list[_Waiting] = []  # records waiting for a batch handler, one type and tenant
            try:
                await self._records_of_batch(
                    conn, records, isolated, inbox, run, outbox, outcome, scoped
                )
                await self._run(conn, run, inbox, outbox, outcome, scoped)
            finally:
                for waiting in run:  # abandoned with the batch: their spans end all the same
                    waiting.span.end()
            if inbox is not None and inbox.rows:
                await conn.execute(_INBOX_ROWS_SQL, *map(list, zip(*inbox.rows, strict=True)))
            await add_to_outbox(conn, outbox)
        return outcome

    async def _records_of_batch(
        self,
        conn: asyncpg.Connection,
        records: list[ConsumerRecord],
        isolated: bool,
        inbox: _BatchInbox | None,
        run: list[_Waiting],
        outbox: list[OutboxMessage],
        outcome: _BatchOutcome,
        scoped: list[Tenant],
    ) -> None:
        """``_try_batch``'s records in order; those for a batch handler wait in ``run``, their
        spans open until their run is handled."""
        for record in records:
            span = self._start_span(record)
            waits = False
            try:
                # A failure sets the status itself: what passes through may be another's (a
                # run handed over while this record is current).
                with trace.use_span(
                    span, end_on_exit=False, record_exception=False, set_status_on_exception=False
                ):
                    try:
                        decoded = self._decode(record, span)
                    except Exception as exc:
                        reason = _undecodable_reason(exc)
                        span.set_status(Status(StatusCode.ERROR, reason))
                        outcome.dead_letters.append((record, reason))
                        outcome.finished += 1
                        continue
                    if decoded is None:
                        outcome.finished += 1
                        continue
                    if inbox is not None and decoded.batch is not None:
                        if run and not _same_run(run[0].decoded, decoded):
                            await self._run(conn, run, inbox, outbox, outcome, scoped)
                        ce = decoded.cloud_event
                        if (ce.source, ce.id) in inbox.held:
                            outcome.handled.append((ce.type, "duplicate", 0.0))
                            outcome.finished += 1
                        else:
                            # Held from now: a copy later in the run is a duplicate (if this one
                            # is refused, the copy is counted so, and the dead letter holds it).
                            inbox.held.add((ce.source, ce.id))
                            run.append(_Waiting(record, decoded, span))
                            waits = True
                        continue
                    # Handled alone, after the run before it: a partition's order is kept.
                    await self._run(conn, run, inbox, outbox, outcome, scoped)
                    started = time.perf_counter()
                    try:
                        if inbox is None:
                            result = await self._handle_on(conn, record, decoded)
                        else:
                            if scoped != [decoded.tenant]:
                                await apply_tenant(conn, decoded.tenant)
                                scoped[:] = [decoded.tenant]
                            result = await self._handle_unisolated(
                                conn, record, decoded, inbox, outbox
                            )
                    except Exception as exc:
                        if not isolated and not is_infrastructure_failure(exc):
                            raise _RecordFailed from exc
                        permanent = _permanent_reason(exc)
                        if permanent is None:
                            if is_infrastructure_failure(exc):
                                raise  # the whole batch rolls back and is tried again
                            outcome.retry = (record, exc)
                            break  # commit what came before it; retry it alone after
                        span.set_status(Status(StatusCode.ERROR, permanent))
                        outcome.dead_letters.append((record, permanent))
                        outcome.finished += 1
                        continue
                    outcome.handled.append(
                        (decoded.cloud_event.type, result, time.perf_counter() - started)
                    )
                    outcome.finished += 1
            finally:
                if not waits:
                    span.end()

    async def _run(
        self,
        conn: asyncpg.Connection,
        run: list[_Waiting],
        inbox: _BatchInbox | None,
        outbox: list[OutboxMessage],
        outcome: _BatchOutcome,
        scoped: list[Tenant],
    ) -> None:
        """Hand the waiting run to its batch handler and empty it; a record it refused goes to
        the dead letters (after the commit), the others are handled."""
        if not run:
            return
        waiting = run[:]  # left in ``run`` until handed over: if it fails, the batch ends them
        assert inbox is not None
        first = waiting[0].decoded
        assert first.batch is not None
        if scoped != [first.tenant]:
            await apply_tenant(conn, first.tenant)
            scoped[:] = [first.tenant]
        items = [Inbound(UnitOfWork(conn, first.tenant), w.decoded.cloud_event) for w in waiting]
        started = time.perf_counter()
        try:
            with self._run_span(waiting):
                refusals = await first.batch.batch(items)
        except Exception as exc:
            if is_infrastructure_failure(exc):
                raise
            raise _RecordFailed from exc
        run.clear()
        each = (time.perf_counter() - started) / len(waiting)
        for w, item, refusal in zip(waiting, items, refusals, strict=True):
            ce = item.cloud_event
            outcome.finished += 1
            if refusal is not None:
                reason = f"permanent failure: {refusal}"
                w.span.set_status(Status(StatusCode.ERROR, reason))
                w.span.end()
                outcome.dead_letters.append((w.record, reason))
                continue
            inbox.rows.append(
                (
                    self._group_id,
                    ce.source,
                    ce.id,
                    ce.type,
                    w.record.topic,
                    w.record.partition,
                    w.record.offset,
                )
            )
            # Under the record's span, so each event carries its own record's trace.
            with trace.use_span(w.span, end_on_exit=True):
                outbox.extend(outbox_message(e, source=self._source) for e in item.uow.events)
            outcome.handled.append((ce.type, "handled", each))

    def _run_span(self, waiting: list[_Waiting]) -> contextlib.AbstractContextManager[trace.Span]:
        """The batch handler's span: a trace of its own, linked to each of its records' spans."""
        topic = waiting[0].record.topic
        return tracer.start_as_current_span(
            f"{topic} process run",
            context=otel_context.Context(),
            kind=SpanKind.CONSUMER,
            links=[Link(w.span.get_span_context()) for w in waiting],
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.batch.message_count": len(waiting),
                "messaging.consumer.group.name": self._group_id,
            },
        )

    async def _inbox_for(
        self, conn: asyncpg.Connection, records: list[ConsumerRecord]
    ) -> _BatchInbox:
        """Which of the batch's events the inbox holds, read by their CloudEvent headers (a
        record without them is dead-lettered before it is looked for)."""
        keys = [key for record in records if (key := _dedup_key(record)) is not None]
        rows = await conn.fetch(
            _INBOX_HELD_SQL, self._group_id, [k[0] for k in keys], [k[1] for k in keys]
        )
        return _BatchInbox({(row["source"], row["event_id"]) for row in rows})

    async def _handle_unisolated(
        self,
        conn: asyncpg.Connection,
        record: ConsumerRecord,
        decoded: _Decoded,
        inbox: _BatchInbox,
        outbox: list[OutboxMessage],
    ) -> str:
        """``_handle_on`` without its savepoint and tenant scoping (the batch sets it when it
        changes); its inbox and outbox rows join the batch's, written at its end."""
        ce = decoded.cloud_event
        if (ce.source, ce.id) in inbox.held:
            return "duplicate"
        inbox.held.add((ce.source, ce.id))
        uow = UnitOfWork(conn, decoded.tenant)
        await decoded.work(uow)
        inbox.rows.append(
            (
                self._group_id,
                ce.source,
                ce.id,
                ce.type,
                record.topic,
                record.partition,
                record.offset,
            )
        )
        # Here, inside the record's span, so each event carries its own trace.
        outbox.extend(outbox_message(e, source=self._source) for e in uow.events)
        return "handled"

    async def _record_in_inbox(
        self, conn: asyncpg.Connection, record: ConsumerRecord, cloud_event: CloudEvent
    ) -> bool:
        """True when the event was not in the inbox (and now is): its first delivery."""
        inserted = await conn.fetchval(
            _INBOX_SQL,
            self._group_id,
            cloud_event.source,
            cloud_event.id,
            cloud_event.type,
            record.topic,
            record.partition,
            record.offset,
        )
        return bool(inserted)

    def _span(self, record: ConsumerRecord) -> contextlib.AbstractContextManager[trace.Span]:
        return trace.use_span(self._start_span(record), end_on_exit=True)

    def _start_span(self, record: ConsumerRecord) -> trace.Span:
        """The record's processing span, a child of the trace its headers carry; not ended."""
        headers = list(record.headers or ())
        context = extract({k: (v or b"").decode(errors="replace") for k, v in headers})
        return tracer.start_span(
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
        )

    async def _process(self, record: ConsumerRecord, *, attempts_made: int = 0) -> bool:
        """Handle or dead-letter one record in a transaction of its own; True when it was
        dead-lettered. ``attempts_made``: failed attempts it already had in a batch."""
        with self._span(record) as span:
            try:
                reason = await self._handle(record, span, attempts_made)
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

    def _decode(self, record: ConsumerRecord, span: trace.Span) -> _Decoded | None:
        """The record ready for its handler; None for an event this consumer ignores."""
        try:
            cloud_event = from_record(record.headers, record.value)
        except CloudEventError as exc:
            raise _Undecodable(f"undecodable: {exc}") from None
        span.set_attribute("messaging.message.id", cloud_event.id)
        raw = self._raw_handlers.get(cloud_event.type)
        handler = self._handlers.get(cloud_event.type)
        if raw is not None:
            network = cloud_event.extensions.get(NETWORK_EXTENSION, "")
            if not _NETWORK.fullmatch(network):
                raise _Undecodable(
                    "inbound event has no valid ce_network extension naming its network"
                )

            def work(uow: UnitOfWork) -> Awaitable[None]:
                assert raw is not None
                return raw(uow, cloud_event)

            batch = self._batch_handlers.get(cloud_event.type)
            return _Decoded(cloud_event, Tenant(network_id=network), work, batch)
        if handler is not None:
            try:
                event = decode_event(cloud_event)
            except CloudEventError as exc:
                raise _Undecodable(f"undecodable: {exc}") from None

            def handle(uow: UnitOfWork) -> Awaitable[None]:
                assert handler is not None
                return handler(uow, event, cloud_event)

            return _Decoded(cloud_event, Tenant(network_id=event.network_id), handle)
        if cloud_event.type in EVENT_TYPES:
            # Another event on a shared topic (e.g. SessionCompleted beside CaseClosed).
            self._metrics.events_handled.labels(cloud_event.type, "ignored").inc()
            return None
        raise _Undecodable(f"unknown event type {cloud_event.type!r} (no contract in this version)")

    async def _handle(
        self, record: ConsumerRecord, span: trace.Span, attempts_made: int = 0
    ) -> str | None:
        """Run the handler with retries; the reason to dead-letter, or None when done."""
        try:
            decoded = self._decode(record, span)
        except _Undecodable as exc:
            return exc.reason
        if decoded is None:
            return None
        attempt = attempts_made
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                async with self._pool.acquire() as conn:
                    outcome = await self._handle_on(conn, record, decoded)
            except Exception as exc:
                reason = _permanent_reason(exc)
                if reason is not None:
                    return reason
                if is_infrastructure_failure(exc):
                    # Not the message's fault: keep it, wait, try again (never dead-letter it).
                    attempt -= 1
                    log.warning("infrastructure failure; retrying", error=failure_reason(exc))
                    await self._pause(self._retry.delay(3))
                    continue
                log.warning(
                    "handler failed",
                    event_type=decoded.cloud_event.type,
                    attempt=attempt,
                    error=failure_reason(exc),
                )
                if attempt >= self._retry.max_attempts:
                    return f"handler failed {attempt} times: {failure_reason(exc)}"
                await self._pause(self._retry.delay(attempt))
                continue
            self._metrics.handler_seconds.labels(decoded.cloud_event.type).observe(
                time.perf_counter() - started
            )
            self._metrics.events_handled.labels(decoded.cloud_event.type, outcome).inc()
            self.handled += outcome == "handled"
            self.duplicates += outcome == "duplicate"
            return None

    async def _handle_on(
        self, conn: asyncpg.Connection, record: ConsumerRecord, decoded: _Decoded
    ) -> str:
        """Inbox row, the handler's effects and its outbox rows: all or nothing. Its own
        transaction on an idle connection, a savepoint inside a batch's transaction."""
        async with unit_of_work_on(conn, decoded.tenant, source=self._source) as uow:
            if not await self._record_in_inbox(conn, record, decoded.cloud_event):
                return "duplicate"
            await decoded.work(uow)
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
