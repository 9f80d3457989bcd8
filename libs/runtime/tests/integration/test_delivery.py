"""Outbox relay and idempotent consumer against the real broker and database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from huddle_contracts.cloudevents import CloudEvent, from_record, to_headers
from huddle_contracts.events import Event, PeerCertified, SupportRequested
from huddle_contracts.registry import encode_event
from huddle_contracts.topics import PEER_CERTIFICATION, SUPPORT_REQUESTED
from huddle_runtime import database
from huddle_runtime.consumer import EventConsumer, PermanentFailure, RetryPolicy
from huddle_runtime.kafka import new_consumer, new_producer
from huddle_runtime.metrics import Metrics
from huddle_runtime.outbox import OutboxRelay
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import UnitOfWork, unit_of_work
from opentelemetry.sdk.trace import TracerProvider

pytestmark = pytest.mark.integration

ProbeFactory = Callable[..., Awaitable[ServiceSettings]]


def support_requested(network: str = "north", **changes: object) -> SupportRequested:
    fields: dict[str, object] = {
        "case_id": uuid.uuid4(),
        "network_id": network,
        "hospital_id": "h1",
        "unit_id": "icu",
        "requester": "p_" + uuid.uuid4().hex,
        "discipline": "nurse",
        "origin": "self",
        "urgency": "routine",
        "requested_at": datetime.now(UTC),
    }
    return SupportRequested.model_validate({**fields, **changes})


async def read_topic(
    bootstrap: str, topic: str, *, want: Callable[[list], bool], seconds: float = 20
):
    """All records of ``topic`` from the start, until ``want(records)`` or the deadline."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
            if want(records):
                break
    finally:
        await consumer.stop()
    return records


def peer_certified(peer: str, year: int) -> PeerCertified:
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


async def test_relay_publishes_committed_events_in_order_and_empties_the_outbox(
    probe: ProbeFactory,
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    # One peer certified year after year: one key, so Kafka must keep the order.
    peer = "p_" + uuid.uuid4().hex
    events = [peer_certified(peer, 2000 + i) for i in range(20)]
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("certify") as span:  # the trace must travel with the rows
        for event in events[:10]:
            async with unit_of_work(pool, Tenant("north"), source="/huddle/probe") as uow:
                uow.publish(event)
        async with unit_of_work(pool, Tenant("north"), source="/huddle/probe") as uow:
            for event in events[10:]:  # one unit of work's events keep their order too
                uow.publish(event)
    trace_id = format(span.get_span_context().trace_id, "032x")
    with pytest.raises(RuntimeError):  # a rolled-back unit of work leaves nothing to publish
        async with unit_of_work(pool, Tenant("north"), source="/huddle/probe") as uow:
            uow.publish(peer_certified(peer, 1999))
            raise RuntimeError("boom")
    relay = OutboxRelay(
        schema=settings.schema_name,
        pool=pool,
        producer=producer,
        connect=lambda: database.connect(settings),
        metrics=Metrics(),
        batch_size=7,
    )
    assert await relay.drain() == 20
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    records = await read_topic(
        settings.kafka.bootstrap_servers,
        PEER_CERTIFICATION.name,
        want=lambda rs: sum(r.key == peer.encode() for r in rs) >= 20,
    )
    mine = [from_record(r.headers, r.value) for r in records if r.key == peer.encode()]
    years = [PeerCertified.model_validate_json(ce.data).certified_at.year for ce in mine]
    assert years == [2000 + i for i in range(20)]
    assert all(ce.source == "/huddle/probe" and ce.subject == peer for ce in mine)
    assert all(ce.traceparent and ce.traceparent.split("-")[1] == trace_id for ce in mine)
    await producer.stop()
    await pool.close()


async def test_only_one_relay_is_active_and_a_standby_takes_over(probe: ProbeFactory) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()

    def relay() -> OutboxRelay:
        return OutboxRelay(
            schema=settings.schema_name,
            pool=pool,
            producer=producer,
            connect=lambda: database.connect(settings),
            metrics=Metrics(),
            poll_seconds=0.1,
        )

    first, second = relay(), relay()
    tasks = [asyncio.create_task(first.run())]
    await _until(lambda: first.active)
    tasks.append(asyncio.create_task(second.run()))
    await asyncio.sleep(0.5)
    assert (first.active, second.active) == (True, False)

    first.stop()
    await tasks[0]
    await _until(lambda: second.active)
    async with unit_of_work(pool, Tenant("north"), source="/huddle/probe") as uow:
        uow.publish(support_requested())
    await _until(lambda: second.published == 1)  # woken by NOTIFY or the fallback poll
    second.stop()
    await tasks[1]
    await producer.stop()
    await pool.close()


async def _until(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


class Recorder:
    """A handler that writes one note per event in the inbox transaction; can be told to fail."""

    def __init__(self, mine: set[uuid.UUID]) -> None:
        self.mine = mine  # the topic is shared with other tests: leave their events alone
        self.fail_for: set[uuid.UUID] = set()
        self.permanent_for: set[uuid.UUID] = set()
        self.calls = 0

    async def __call__(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        assert isinstance(event, SupportRequested)
        if event.case_id not in self.mine:
            return
        self.calls += 1
        if event.case_id in self.permanent_for:
            raise PermanentFailure("this case can never be handled")
        await uow.conn.execute(
            "INSERT INTO note (network_id, case_id, body) VALUES ($1, $2, 'seen')",
            event.network_id,
            event.case_id,
        )
        if event.case_id in self.fail_for:
            raise RuntimeError("handler bug")


async def _consumer(settings: ServiceSettings, pool, producer, handler) -> EventConsumer:
    consumer = EventConsumer(
        consumer=new_consumer(settings.kafka, group_id=settings.consumer_group, client_id="t"),
        producer=producer,
        pool=pool,
        group_id=settings.consumer_group,
        source="/huddle/probe",
        topics=[SUPPORT_REQUESTED.name],
        handlers={SupportRequested.event_type: handler},
        metrics=Metrics(),
        retry=RetryPolicy(max_attempts=3, backoff_seconds=0.01),
    )
    await consumer.start()
    return consumer


async def test_consumer_handles_each_event_once_and_dead_letters_what_it_cannot(
    probe: ProbeFactory,
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    producer = new_producer(settings.kafka, client_id="test")
    await producer.start()
    good = [support_requested() for _ in range(10)]
    failing, permanent = support_requested(), support_requested()
    recorder = Recorder({e.case_id for e in (*good, failing, permanent)})
    recorder.fail_for.add(failing.case_id)
    recorder.permanent_for.add(permanent.case_id)

    async def send(ce: CloudEvent) -> None:
        await producer.send_and_wait(
            SUPPORT_REQUESTED.name, ce.data, key=ce.subject.encode(), headers=to_headers(ce)
        )

    for event in good[:5]:
        await send(encode_event(event, source="/test"))
    poison_key = uuid.uuid4().hex.encode()
    await producer.send_and_wait(SUPPORT_REQUESTED.name, b"\x00not json", key=poison_key)
    await send(encode_event(failing, source="/test"))
    await send(encode_event(permanent, source="/test"))
    for event in good[5:]:
        ce = encode_event(event, source="/test")
        await send(ce)
        await send(ce)  # redelivered: same source and id

    consumer = await _consumer(settings, pool, producer, recorder)
    task = asyncio.create_task(consumer.run())
    mine = {e.case_id for e in good}

    async def seen() -> set[uuid.UUID]:
        async with unit_of_work(pool, Tenant("north"), source="/t") as uow:
            return {r["case_id"] for r in await uow.conn.fetch("SELECT case_id FROM note")}

    deadline = asyncio.get_running_loop().time() + 30
    while not mine <= await seen():
        assert asyncio.get_running_loop().time() < deadline, "events not handled in time"
        await asyncio.sleep(0.1)
    noted = await seen()
    assert failing.case_id not in noted and permanent.case_id not in noted
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = $1", settings.consumer_group
        )
        >= 10
    )

    dead = await read_topic(
        settings.kafka.bootstrap_servers,
        SUPPORT_REQUESTED.dead_letter,
        want=lambda rs: (
            {poison_key, str(failing.case_id).encode(), str(permanent.case_id).encode()}
            <= {r.key for r in rs}
        ),
    )
    reasons = {
        r.key: dict((k, v.decode()) for k, v in r.headers)
        for r in dead
        if dict(r.headers).get(b"dlt.consumer.group".decode(), b"").decode()
        == settings.consumer_group
    }
    assert reasons[poison_key]["dlt.reason"].startswith("undecodable")
    assert reasons[poison_key]["dlt.original.topic"] == SUPPORT_REQUESTED.name
    assert "dlt.original.offset" in reasons[poison_key]
    assert reasons[str(failing.case_id).encode()]["dlt.reason"].startswith("handler failed 3 times")
    assert reasons[str(permanent.case_id).encode()]["dlt.reason"].startswith("permanent failure")
    assert consumer.duplicates >= 5
    assert not {str(e.case_id).encode() for e in good} & reasons.keys()
    consumer.stop()
    await task
    await consumer.close()

    # The committed offsets sit past everything: a restarted consumer finds nothing new to do.
    calls = recorder.calls
    again = await _consumer(settings, pool, producer, recorder)
    task = asyncio.create_task(again.run())
    await asyncio.sleep(3)
    again.stop()
    await task
    await again.close()
    assert recorder.calls == calls
    await producer.stop()
    await pool.close()
