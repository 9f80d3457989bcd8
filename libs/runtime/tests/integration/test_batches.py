"""The consumer's batch path on the real broker and database: a partition's records share one
transaction, a failed record is left out alone, and a crash mid-batch loses and doubles nothing;
a raw handler that takes runs of records (``BatchRawHandler``) gets one call per run."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from huddle_contracts.cloudevents import CloudEvent, to_headers
from huddle_contracts.events import Event, SupportRequested
from huddle_contracts.registry import encode_event
from huddle_contracts.topics import INBOUND_ADVERSE_EVENTS, SUPPORT_REQUESTED
from huddle_runtime import consumer as consumer_module
from huddle_runtime import database
from huddle_runtime.consumer import (
    DEFAULT_BATCH_SIZE,
    BatchRawHandler,
    EventConsumer,
    Inbound,
    PermanentFailure,
    RawHandler,
    RetryPolicy,
)
from huddle_runtime.kafka import new_consumer, new_producer
from huddle_runtime.metrics import Metrics
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration

K = TypeVar("K")

ProbeFactory = Callable[..., Awaitable[ServiceSettings]]
TOPIC = SUPPORT_REQUESTED.name
PARTITION = 0  # one partition, so that every record below is in the same fetched batch


def support_requested() -> SupportRequested:
    return SupportRequested(
        case_id=uuid.uuid4(),
        network_id="north",
        hospital_id="h1",
        unit_id="icu",
        requester="p_" + uuid.uuid4().hex,
        discipline="nurse",
        origin="self",
        urgency="routine",
        requested_at=datetime.now(UTC),
    )


class Notes:
    """Writes one note per event of its own; told which events fail, and how."""

    def __init__(self, events: list[SupportRequested]) -> None:
        self.mine = {e.case_id for e in events}  # the topic is shared with other tests
        self.permanent: set[uuid.UUID] = set()
        self.clash: dict[uuid.UUID, uuid.UUID] = {}  # writes the other case's note: a conflict
        self.fail_once: set[uuid.UUID] = set()
        self.block_at: uuid.UUID | None = None
        self.blocked = asyncio.Event()
        self.hold_at: uuid.UUID | None = None  # waits for ``release``, then is written
        self.release = asyncio.Event()
        self.delay = 0.0  # seconds each of its events takes

    async def __call__(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        assert isinstance(event, SupportRequested)
        if event.case_id not in self.mine:
            return
        if event.case_id == self.block_at:
            self.blocked.set()
            await asyncio.Event().wait()  # until the consumer is killed
        if event.case_id == self.hold_at:
            self.blocked.set()
            await self.release.wait()
        await asyncio.sleep(self.delay)
        case = self.clash.get(event.case_id, event.case_id)
        await uow.conn.execute(
            "INSERT INTO note (network_id, case_id, body) VALUES ($1, $2, 'seen')",
            event.network_id,
            case,
        )
        if event.case_id in self.permanent:
            raise PermanentFailure("this case can never be handled")
        if event.case_id in self.fail_once:
            self.fail_once.discard(event.case_id)
            raise RuntimeError("a passing fault")


async def publish(
    producer: AIOKafkaProducer, events: list[SupportRequested], partition: int = PARTITION
) -> None:
    for event in events:
        ce = encode_event(event, source="/test")
        await producer.send_and_wait(
            TOPIC, ce.data, key=ce.subject.encode(), headers=to_headers(ce), partition=partition
        )


async def start(
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    producer,
    notes: Notes,
    batch_size: int = DEFAULT_BATCH_SIZE,
    commit_interval_s: float = 1.0,
):
    consumer = EventConsumer(
        consumer=new_consumer(settings.kafka, group_id=settings.consumer_group, client_id="t"),
        producer=producer,
        pool=pool,
        group_id=settings.consumer_group,
        source="/huddle/probe",
        topics=[TOPIC],
        handlers={SupportRequested.event_type: notes},
        metrics=Metrics(),
        retry=RetryPolicy(max_attempts=3, backoff_seconds=0.01),
        batch_size=batch_size,
        commit_interval_s=commit_interval_s,
    )
    await consumer.start()
    return consumer, asyncio.create_task(consumer.run())


async def stop(consumer: EventConsumer, task: asyncio.Task[None]) -> None:
    consumer.stop()
    await task
    await consumer.close()


async def noted(admin: asyncpg.Connection, settings: ServiceSettings) -> dict[uuid.UUID, int]:
    rows = await admin.fetch(
        f"SELECT case_id, count(*) AS n FROM {settings.schema_name}.note GROUP BY case_id"
    )
    return {r["case_id"]: r["n"] for r in rows}


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def letters_by(
    topic: str, bootstrap: str, group: str, want: int, key: Callable[[ConsumerRecord], K]
) -> dict[K, dict[str, str]]:
    """The dead letters this test's consumer group sent to ``topic``: headers by ``key``; read
    to the topic's end as it was when read, and on until ``want`` are found (or 20 s pass)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[K, dict[str, str]] = {}
    end: dict[TopicPartition, int] | None = None  # the topic's end once its partitions are known
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                for record in batch:
                    headers = {k: (v or b"").decode() for k, v in record.headers}
                    if headers.get("dlt.consumer.group") == group:
                        found[key(record)] = headers
            if end is None and consumer.assignment():
                end = await consumer.end_offsets(list(consumer.assignment()))
            if end is not None and len(found) >= want and await _read_to(consumer, end):
                break
        assert end is not None, f"{topic} was never assigned: its letters were not read"
    finally:
        await consumer.stop()
    return found


async def _read_to(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= offset for tp, offset in end.items()])


async def dead_letters(bootstrap: str, group: str, want: int) -> dict[bytes, dict[str, str]]:
    """The dead letters of SupportRequested this test's consumer group sent, by key."""
    return await letters_by(SUPPORT_REQUESTED.dead_letter, bootstrap, group, want, _key)


def _key(record: ConsumerRecord) -> bytes:
    return bytes(record.key or b"")


async def test_a_poison_record_mid_batch_is_dead_lettered_alone_and_the_rest_handled_once(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    events = [support_requested() for _ in range(30)]
    notes = Notes(events)
    permanent, clashing, passing = events[7], events[12], events[20]
    notes.permanent.add(permanent.case_id)
    notes.clash[clashing.case_id] = events[2].case_id  # a unique violation: never retried
    notes.fail_once.add(passing.case_id)
    await publish(producer, events[:15])
    poison_key = uuid.uuid4().hex.encode()
    await producer.send_and_wait(TOPIC, b"\x00not json", key=poison_key, partition=PARTITION)
    await publish(producer, events[15:])

    consumer, task = await start(settings, pool, producer, notes)
    good = [e for e in events if e not in (permanent, clashing)]
    await until(lambda: _all_noted(admin, settings, good))
    await stop(consumer, task)

    counts = await noted(admin, settings)
    # Every other event once; the failed ones left nothing behind, not even a partial write.
    assert {case: n for case, n in counts.items() if case in notes.mine} == {
        e.case_id: 1 for e in good
    }
    letters = await dead_letters(settings.kafka.bootstrap_servers, settings.consumer_group, 3)
    assert letters[poison_key]["dlt.reason"].startswith("undecodable")
    assert letters[str(permanent.case_id).encode()]["dlt.reason"] == (
        "permanent failure: this case can never be handled"
    )
    assert letters[str(clashing.case_id).encode()]["dlt.reason"].startswith(
        "permanent failure: UniqueViolationError"
    )
    assert str(passing.case_id).encode() not in letters  # it passed on its retry
    assert len(letters) == 3
    assert consumer.duplicates == 0
    # The records shared transactions: fewer commits than records handled.
    assert consumer.batches < consumer.handled
    await producer.stop()
    await pool.close()


async def _all_noted(
    admin: asyncpg.Connection, settings: ServiceSettings, events: list[SupportRequested]
) -> bool:
    return {e.case_id for e in events} <= (await noted(admin, settings)).keys()


async def test_a_crash_mid_batch_then_a_restart_gives_each_effect_once(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    events = [support_requested() for _ in range(40)]
    notes = Notes(events)
    notes.block_at = events[25].case_id
    await publish(producer, events)

    # Killed while the batch is in hand: its transaction never commits, nor do its offsets.
    consumer, task = await start(settings, pool, producer, notes)
    await asyncio.wait_for(notes.blocked.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await consumer.close()
    before = await noted(admin, settings)
    assert not set(before) & notes.mine  # all of its batch rolled back, nothing half-written

    notes.block_at = None
    consumer, task = await start(settings, pool, producer, notes)
    await until(lambda: _all_noted(admin, settings, events))
    await stop(consumer, task)

    # Offsets lost after the database committed (a crash between the two): all redelivered.
    await rewind(settings, TopicPartition(TOPIC, PARTITION))
    replay, task = await start(settings, pool, producer, notes)
    await until(lambda: _replayed(replay, len(events)))
    await stop(replay, task)

    counts = await noted(admin, settings)
    assert {case: n for case, n in counts.items() if case in notes.mine} == {
        e.case_id: 1 for e in events
    }
    assert replay.handled == 0  # every one was already in the inbox
    letters = await dead_letters(settings.kafka.bootstrap_servers, settings.consumer_group, 0)
    # None of its events (the group read the shared topic from the start: others' poison too).
    assert not letters.keys() & {str(e.case_id).encode() for e in events}
    await producer.stop()
    await pool.close()


async def test_a_slow_partition_holds_back_no_other(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    slow = support_requested()
    first, later = [support_requested() for _ in range(5)], [support_requested() for _ in range(5)]
    notes = Notes([slow, *first, *later])
    notes.hold_at = slow.case_id
    await publish(producer, [slow], partition=2)
    await publish(producer, first, partition=0)

    consumer, task = await start(settings, pool, producer, notes)
    await asyncio.wait_for(notes.blocked.wait(), timeout=30)
    await until(lambda: _all_noted(admin, settings, first))
    # Sent while partition 2's batch is in hand: fetched and handled all the same.
    await publish(producer, later, partition=0)
    await until(lambda: _all_noted(admin, settings, later))
    assert slow.case_id not in await noted(admin, settings)
    notes.release.set()
    await until(lambda: _all_noted(admin, settings, [slow]))
    await stop(consumer, task)

    counts = await noted(admin, settings)
    assert {case: n for case, n in counts.items() if case in notes.mine} == {
        case: 1 for case in notes.mine
    }
    assert consumer.duplicates == 0
    await producer.stop()
    await pool.close()


async def test_a_member_joining_mid_stream_takes_partitions_over_with_no_event_twice(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    await skip_to_end(settings, producer, TOPIC)  # other tests' poison records are not ours
    events = [support_requested() for _ in range(600)]
    notes = Notes(events)
    notes.delay = 0.05  # at most 10 s in all: the second member joins with batches in hand
    for partition in range(3):
        await publish(producer, events[partition::3], partition=partition)

    first, first_task = await start(settings, pool, producer, notes, batch_size=10)
    await until(lambda: _noted_at_least(admin, settings, 10))
    second, second_task = await start(settings, pool, producer, notes, batch_size=10)
    await until(lambda: _has_partitions(second))
    notes.delay = 0.0
    await until(lambda: _all_noted(admin, settings, events), seconds=60)
    await stop(first, first_task)
    await stop(second, second_task)

    counts = await noted(admin, settings)
    assert {case: n for case, n in counts.items() if case in notes.mine} == {
        e.case_id: 1 for e in events
    }
    # The batches in hand committed, offsets too, before the partitions moved; what was queued
    # and not yet handled was left for the new owner: not one record was delivered twice.
    assert first.duplicates == second.duplicates == 0
    assert first.dead_lettered == second.dead_lettered == 0  # a second note would be refused
    assert second.handled > 0
    await producer.stop()
    await pool.close()


async def _has_partitions(consumer: EventConsumer) -> bool:
    return consumer.assignment_seen


async def committed(settings: ServiceSettings, partitions: list[TopicPartition]) -> list[int]:
    """The group's committed offsets, read without joining it."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        return [await reader.committed(tp) or 0 for tp in partitions]
    finally:
        await reader.stop()


async def test_offsets_wait_for_the_interval_and_all_go_to_kafka_before_a_stop(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    await skip_to_end(settings, producer, TOPIC)
    partitions = [TopicPartition(TOPIC, p) for p in range(3)]
    start_at = await committed(settings, partitions)
    events = [support_requested() for _ in range(30)]
    notes = Notes(events)
    for partition in range(3):
        await publish(producer, events[partition::3], partition=partition)

    # A batch per record, and an interval longer than the test: nothing is committed meanwhile.
    consumer, task = await start(
        settings, pool, producer, notes, batch_size=1, commit_interval_s=60
    )
    await until(lambda: _all_noted(admin, settings, events))
    assert consumer.batches >= 30
    assert await committed(settings, partitions) == start_at
    await stop(consumer, task)
    # Stopping committed every batch's offset: a new member of the group has nothing to redo.
    assert await committed(settings, partitions) == [n + 10 for n in start_at]
    again, task = await start(settings, pool, producer, notes)
    await until(lambda: _has_partitions(again))
    await asyncio.sleep(2)  # a few fetch rounds from the committed offsets
    await stop(again, task)
    assert again.handled == again.duplicates == 0
    await producer.stop()
    await pool.close()


async def test_a_dead_letter_commits_its_offset_at_once(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    await skip_to_end(settings, producer, TOPIC)
    tp = TopicPartition(TOPIC, PARTITION)
    poison = await producer.send_and_wait(TOPIC, b"\x00not json", partition=PARTITION)
    consumer, task = await start(settings, pool, producer, Notes([]), commit_interval_s=60)

    async def passed_by() -> bool:
        return (await committed(settings, [tp]))[0] > poison.offset

    # Long before the interval: redelivered, the record would be dead-lettered twice.
    await until(passed_by, seconds=20)
    assert consumer.dead_lettered == 1
    await stop(consumer, task)
    await producer.stop()
    await pool.close()


async def _noted_at_least(admin: asyncpg.Connection, settings: ServiceSettings, n: int) -> bool:
    return len(await noted(admin, settings)) >= n


async def _replayed(consumer: EventConsumer, count: int) -> bool:
    return consumer.duplicates >= count


async def rewind(settings: ServiceSettings, tp: TopicPartition) -> None:
    """The group's committed offset back to the start of the partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        await consumer.commit({tp: start})
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- batch handlers

RAW_TOPIC = INBOUND_ADVERSE_EVENTS.name
RAW_TYPE = INBOUND_ADVERSE_EVENTS.event_types[0]
RAW_PARTITION = 1  # one partition, so that the records below arrive in fetched batches together


PLAIN_TYPE = "huddle.test.plain.v1"  # a raw type whose handler takes one record at a time


def raw_event(
    case_id: uuid.UUID,
    *,
    event_id: str | None = None,
    network: str = "north",
    event_type: str = RAW_TYPE,
) -> CloudEvent:
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source="/incident-system/test",
        type=event_type,
        data=json.dumps({"case_id": str(case_id)}).encode(),
        time=datetime.now(UTC),
        datacontenttype="application/json",
        # A trace of its own, so that the events it leads to can be told apart.
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        extensions={"network": network},
    )


class RunNotes:
    """Writes one note per record of its own and publishes one event for it; refuses, or fails
    as a whole, when told to."""

    def __init__(self, cases: Sequence[uuid.UUID]) -> None:
        self.mine = set(cases)  # the topic is shared with other tests
        self.refused: set[uuid.UUID] = set()
        self.breaks_the_run: uuid.UUID | None = None
        self.runs: list[int] = []
        self.run_networks: list[str] = []
        self.alone = 0

    async def __call__(self, uow: UnitOfWork, cloud_event: CloudEvent) -> None:
        self.alone += 1
        [refusal] = await self._write([Inbound(uow, cloud_event)])
        if refusal is not None:
            raise refusal

    async def batch(self, records: Sequence[Inbound]) -> list[PermanentFailure | None]:
        self.runs.append(len(records))
        self.run_networks.append(_network(records[0].uow))
        if self.breaks_the_run in {_case(r.cloud_event) for r in records} - {None}:
            raise RuntimeError("this run cannot be taken at once")
        return await self._write(records)

    async def _write(self, records: Sequence[Inbound]) -> list[PermanentFailure | None]:
        refusals: list[PermanentFailure | None] = []
        rows = []
        for record in records:
            case = _case(record.cloud_event)
            if case in self.refused:
                refusals.append(PermanentFailure("this report can never be taken in"))
                continue
            refusals.append(None)
            if case in self.mine:
                rows.append((_network(record.uow), case))
                record.uow.publish(requested(case, _network(record.uow)))
        await records[0].uow.conn.executemany(
            "INSERT INTO note (network_id, case_id, body) VALUES ($1, $2, 'seen')", rows
        )
        return refusals


def _network(uow: UnitOfWork) -> str:
    assert uow.tenant is not None
    return uow.tenant.network_id


def _case(cloud_event: CloudEvent) -> uuid.UUID | None:
    """The record's case; None for another test's record (the topic is shared)."""
    try:
        return uuid.UUID(json.loads(cloud_event.data)["case_id"])
    except (ValueError, KeyError, TypeError):
        return None


def requested(case: uuid.UUID, network: str = "north") -> SupportRequested:
    return SupportRequested(
        case_id=case,
        network_id=network,
        hospital_id="h1",
        unit_id="icu",
        requester="p_" + case.hex,
        discipline="nurse",
        origin="outreach",
        urgency="routine",
        requested_at=datetime.now(UTC),
    )


async def publish_raw(producer: AIOKafkaProducer, events: list[CloudEvent]) -> None:
    for ce in events:
        await producer.send(RAW_TOPIC, ce.data, headers=to_headers(ce), partition=RAW_PARTITION)
    await producer.flush()


async def skip_to_end(
    settings: ServiceSettings, producer: AIOKafkaProducer, topic: str = RAW_TOPIC
) -> None:
    """The group starts at the topic's end: other tests' records (and re-sends) are not ours."""
    partitions = [TopicPartition(topic, p) for p in await producer.partitions_for(topic)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def start_raw(
    settings: ServiceSettings, pool: asyncpg.Pool, producer, notes: RunNotes, **raw: RawHandler
):
    consumer = EventConsumer(
        consumer=new_consumer(settings.kafka, group_id=settings.consumer_group, client_id="t"),
        producer=producer,
        pool=pool,
        group_id=settings.consumer_group,
        source="/huddle/probe",
        topics=[RAW_TOPIC],
        handlers={},
        raw_handlers={RAW_TYPE: notes, **raw},
        metrics=Metrics(),
        retry=RetryPolicy(max_attempts=3, backoff_seconds=0.01),
    )
    await consumer.start()
    return consumer, asyncio.create_task(consumer.run())


async def raw_dead_letters(bootstrap: str, group: str, want: int) -> dict[str, dict[str, str]]:
    """The dead letters of inbound records this test's consumer group sent, by CloudEvent id."""
    return await letters_by(INBOUND_ADVERSE_EVENTS.dead_letter, bootstrap, group, want, _ce_id)


def _ce_id(record: ConsumerRecord) -> str:
    return dict(record.headers)["ce_id"].decode()


async def outbox_cases(admin: asyncpg.Connection, settings: ServiceSettings) -> list[str]:
    rows = await admin.fetch(f"SELECT value FROM {settings.schema_name}.outbox ORDER BY id")
    return [json.loads(r["value"])["case_id"] for r in rows]


async def outbox_traces(admin: asyncpg.Connection, settings: ServiceSettings) -> dict[str, str]:
    """Each outbox event's case and the trace id its traceparent carries."""
    rows = await admin.fetch(f"SELECT value, headers FROM {settings.schema_name}.outbox")
    traces = {}
    for row in rows:
        headers = dict(json.loads(row["headers"]))
        traces[json.loads(row["value"])["case_id"]] = headers["traceparent"].split("-")[1]
    return traces


async def inbox_ids(admin: asyncpg.Connection, settings: ServiceSettings) -> set[str]:
    rows = await admin.fetch(f"SELECT event_id FROM {settings.schema_name}.inbox")
    return {r["event_id"] for r in rows}


def trace_of(event: CloudEvent) -> str:
    assert event.traceparent is not None
    return event.traceparent.split("-")[1]


def test_a_handler_with_a_batch_method_is_taken_for_a_batch_handler() -> None:
    assert isinstance(RunNotes([]), BatchRawHandler)

    async def plain(uow: UnitOfWork, cloud_event: CloudEvent) -> None: ...

    assert not isinstance(plain, BatchRawHandler)


async def test_a_run_is_taken_in_one_call_refused_records_dead_lettered_alone_and_a_resent_id_once(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe(relay_enabled=False)
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    cases = [uuid.uuid4() for _ in range(40)]
    notes = RunNotes(cases)
    refused = {cases[5], cases[31]}
    notes.refused |= refused
    events = [raw_event(case) for case in cases]
    resent = raw_event(cases[9], event_id=events[9].id)  # the same CloudEvent, sent again
    await skip_to_end(settings, producer)
    await publish_raw(producer, [*events[:20], resent, *events[20:]])

    consumer, task = await start_raw(settings, pool, producer, notes)
    taken = [c for c in cases if c not in refused]
    await until(lambda: _raw_noted(admin, settings, taken))
    consumer.stop()
    await task
    await consumer.close()

    counts = await noted(admin, settings)
    assert {case: n for case, n in counts.items() if case in notes.mine} == dict.fromkeys(taken, 1)
    assert sorted(await outbox_cases(admin, settings)) == sorted(str(c) for c in taken)
    # Each event carries the trace of the record it came from; refused records are not in the
    # inbox (a replay would refuse them again, not skip them).
    assert await outbox_traces(admin, settings) == {
        str(_case(e)): trace_of(e) for e in events if _case(e) not in refused
    }
    assert await inbox_ids(admin, settings) == {e.id for e in events if _case(e) not in refused}
    letters = await raw_dead_letters(settings.kafka.bootstrap_servers, settings.consumer_group, 2)
    assert {letters[e.id]["dlt.reason"] for e in events if _case(e) in refused} == {
        "permanent failure: this report can never be taken in"
    }
    assert len(letters) == 2
    assert consumer.duplicates == 1
    assert consumer.handled == len(taken)
    assert notes.alone == 0  # no record needed a transaction of its own
    assert max(notes.runs) > 1  # records shared calls
    await producer.stop()
    await pool.close()


async def test_a_run_that_fails_as_a_whole_is_done_again_one_record_at_a_time(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe(relay_enabled=False)
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    cases = [uuid.uuid4() for _ in range(20)]
    notes = RunNotes(cases)
    notes.breaks_the_run = cases[11]
    notes.refused.add(cases[3])
    await skip_to_end(settings, producer)
    await publish_raw(producer, [raw_event(case) for case in cases])

    consumer, task = await start_raw(settings, pool, producer, notes)
    taken = [c for c in cases if c != cases[3]]
    await until(lambda: _raw_noted(admin, settings, taken))
    consumer.stop()
    await task
    await consumer.close()

    counts = await noted(admin, settings)
    # Nothing of the failed run survived its rollback; each record then once, alone.
    assert {case: n for case, n in counts.items() if case in notes.mine} == dict.fromkeys(taken, 1)
    assert sorted(await outbox_cases(admin, settings)) == sorted(str(c) for c in taken)
    assert notes.alone >= 1
    letters = await raw_dead_letters(settings.kafka.bootstrap_servers, settings.consumer_group, 1)
    assert [h["dlt.reason"] for h in letters.values()] == [
        "permanent failure: this report can never be taken in"
    ]
    await producer.stop()
    await pool.close()


async def _raw_noted(
    admin: asyncpg.Connection, settings: ServiceSettings, cases: list[uuid.UUID]
) -> bool:
    return set(cases) <= (await noted(admin, settings)).keys()


async def test_runs_end_at_another_network_and_at_a_record_handled_alone_and_keep_the_order(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe(relay_enabled=False)
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    cases = [uuid.uuid4() for _ in range(6)]
    notes = RunNotes(cases)

    async def one_at_a_time(uow: UnitOfWork, cloud_event: CloudEvent) -> None:
        case = _case(cloud_event)
        assert case is not None
        await uow.conn.execute(
            "INSERT INTO note (network_id, case_id, body) VALUES ($1, $2, 'alone')",
            _network(uow),
            case,
        )
        uow.publish(requested(case, _network(uow)))

    events = [
        raw_event(cases[0]),
        raw_event(cases[1]),
        raw_event(cases[2], network="south"),
        raw_event(cases[3], event_type=PLAIN_TYPE),
        raw_event(cases[4]),
        raw_event(cases[5]),
    ]
    await skip_to_end(settings, producer)
    await publish_raw(producer, events)

    consumer, task = await start_raw(settings, pool, producer, notes, **{PLAIN_TYPE: one_at_a_time})
    await until(lambda: _raw_noted(admin, settings, cases))
    consumer.stop()
    await task
    await consumer.close()

    assert (notes.runs, notes.run_networks) == ([2, 1, 2], ["north", "south", "north"])
    rows = await admin.fetch(f"SELECT case_id, network_id FROM {settings.schema_name}.note")
    assert {r["case_id"]: r["network_id"] for r in rows} == {
        case: "south" if case == cases[2] else "north" for case in cases
    }
    # The outbox in the records' order, each event with its own record's trace.
    assert await outbox_cases(admin, settings) == [str(c) for c in cases]
    assert await outbox_traces(admin, settings) == {str(_case(e)): trace_of(e) for e in events}
    assert await inbox_ids(admin, settings) == {e.id for e in events}
    assert consumer.handled == len(events)
    await producer.stop()
    await pool.close()


async def test_a_batch_looks_its_events_up_in_the_inbox_by_key_however_large_the_inbox(
    probe: ProbeFactory, admin: asyncpg.Connection
) -> None:
    settings = await probe()
    schema = settings.schema_name
    await admin.execute(
        f"""INSERT INTO {schema}.inbox (consumer, source, event_id, event_type, topic,
                                        kafka_partition, kafka_offset)
            SELECT 'c', 'huddle/intake', g::text, 't', 'x', 0, g
              FROM generate_series(1, 20000) AS g"""
    )
    await admin.execute(f"ANALYZE {schema}.inbox")
    held = [str(n) for n in range(1, 400, 2)]  # 200 events already handled, 300 not
    keys = held + [uuid.uuid4().hex for _ in range(300)]
    sql = consumer_module._INBOX_HELD_SQL
    pool = await database.create_pool(settings)
    try:
        async with pool.acquire() as conn:
            args = ("c", ["huddle/intake"] * len(keys), keys)
            found = await conn.fetch(sql, *args)
            [plan] = await conn.fetchrow("EXPLAIN (FORMAT JSON) " + sql, *args)
    finally:
        await pool.close()
    assert sorted(r["event_id"] for r in found) == sorted(held)
    assert "Seq Scan" not in plan and "Index" in plan, plan
