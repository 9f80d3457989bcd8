"""What the consumer dead-letters before touching the database, with a fake producer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord
from huddle_contracts.cloudevents import CloudEvent, to_headers
from huddle_runtime.consumer import EventConsumer, RetryPolicy
from huddle_runtime.metrics import Metrics


@dataclass
class FakeProducer:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[None]:
        self.sent.append({"topic": topic, **kwargs})
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def record(
    value: bytes | None, headers: list[tuple[str, bytes]], offset: int = 41
) -> ConsumerRecord:
    return ConsumerRecord(
        topic="huddle.support-requested.v1",
        partition=2,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"case-1",
        value=value,
        checksum=None,
        serialized_key_size=6,
        serialized_value_size=len(value or b""),
        headers=headers,
    )


def consumer(producer: FakeProducer) -> EventConsumer:
    async def never_called(*_: object) -> None:
        raise AssertionError("the handler must not run for this record")

    return EventConsumer(
        consumer=None,  # type: ignore[arg-type]
        producer=producer,  # type: ignore[arg-type]
        pool=None,  # type: ignore[arg-type]
        group_id="huddle.matching",
        source="/huddle/matching",
        topics=["huddle.support-requested.v1"],
        handlers={"huddle.support_requested.v1": never_called},
        metrics=Metrics(),
        retry=RetryPolicy(max_attempts=1),
    )


def headers_of(sent: dict[str, Any]) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in sent["headers"]}


async def test_a_record_without_cloudevent_headers_goes_to_the_dead_letter_topic() -> None:
    producer = FakeProducer()
    await consumer(producer)._process(record(b"{}", []))
    [sent] = producer.sent
    assert sent["topic"] == "huddle.support-requested.v1.dlt"
    assert (sent["key"], sent["value"]) == (b"case-1", b"{}")
    headers = headers_of(sent)
    assert headers["dlt.reason"].startswith(
        "undecodable: not a CloudEvent: missing header(s) ce_id"
    )
    assert headers["dlt.original.topic"] == "huddle.support-requested.v1"
    assert (headers["dlt.original.partition"], headers["dlt.original.offset"]) == ("2", "41")
    assert headers["dlt.consumer.group"] == "huddle.matching"


async def test_an_unknown_event_type_is_dead_lettered_with_its_name() -> None:
    producer = FakeProducer()
    ce = CloudEvent(id="1", source="/x", type="huddle.peer_teleported.v9", data=b"{}")
    await consumer(producer)._process(record(ce.data, to_headers(ce)))
    assert (
        "unknown event type 'huddle.peer_teleported.v9'"
        in (headers_of(producer.sent[0])["dlt.reason"])
    )


async def test_a_known_event_the_consumer_does_not_handle_is_skipped() -> None:
    producer = FakeProducer()
    ce = CloudEvent(id="1", source="/x", type="huddle.peer_matched.v1", data=b"{}")
    await consumer(producer)._process(record(ce.data, to_headers(ce)))
    assert producer.sent == []


async def test_invalid_event_data_is_dead_lettered_without_repeating_the_values() -> None:
    producer = FakeProducer()
    data = b'{"network_id": "north", "requester": "Jane Doe, +1 555 0100"}'
    ce = CloudEvent(id="1", source="/x", type="huddle.support_requested.v1", data=data)
    await consumer(producer)._process(record(data, to_headers(ce)))
    headers = headers_of(producer.sent[0])
    assert headers["dlt.reason"].startswith("undecodable:")
    assert "Jane" not in headers["dlt.reason"] and "555" not in headers["dlt.reason"]
    # The original CloudEvent headers travel on with the dead letter, unchanged.
    assert headers["ce_id"] == "1" and headers["ce_type"] == "huddle.support_requested.v1"


async def test_a_null_header_value_is_dead_lettered_not_fatal() -> None:
    producer = FakeProducer()
    await consumer(producer)._process(record(b"{}", [("ce_id", None), ("traceparent", None)]))  # type: ignore[list-item]
    assert headers_of(producer.sent[0])["dlt.reason"].startswith("undecodable:")


def test_failure_reasons_name_the_error_never_its_message() -> None:
    import asyncpg
    from huddle_runtime.consumer import failure_reason

    error = asyncpg.UniqueViolationError("Key (email)=(jane@example.org) already exists")
    assert "jane" not in failure_reason(error)
    assert failure_reason(RuntimeError("Jane Doe")) == "RuntimeError"


def test_platform_failures_are_told_apart_from_message_failures() -> None:
    import asyncpg
    from aiokafka.errors import KafkaConnectionError
    from huddle_runtime.consumer import is_infrastructure_failure

    assert is_infrastructure_failure(asyncpg.CannotConnectNowError())
    assert is_infrastructure_failure(asyncpg.QueryCanceledError())  # statement timeout
    assert is_infrastructure_failure(asyncpg.SerializationError())
    assert is_infrastructure_failure(ConnectionRefusedError())
    assert is_infrastructure_failure(KafkaConnectionError())
    assert not is_infrastructure_failure(asyncpg.UndefinedColumnError())
    assert not is_infrastructure_failure(ValueError("bug"))
    assert not is_infrastructure_failure(FileNotFoundError())


async def test_an_inbound_event_without_its_network_is_dead_lettered() -> None:
    producer = FakeProducer()

    async def never(*_: object) -> None:
        raise AssertionError("must not run")

    inbound = EventConsumer(
        consumer=None,  # type: ignore[arg-type]
        producer=producer,  # type: ignore[arg-type]
        pool=None,  # type: ignore[arg-type]
        group_id="huddle.intake",
        source="/huddle/intake",
        topics=["huddle.inbound.adverse-events.v1"],
        handlers={},
        raw_handlers={"huddle.inbound.adverse_event.v1": never},
        metrics=Metrics(),
        retry=RetryPolicy(max_attempts=1),
    )
    ce = CloudEvent(
        id="r-1",
        source="/incident-system",
        type="huddle.inbound.adverse_event.v1",
        data=b"{}",
        extensions={"network": "Not A Slug"},
    )
    await inbound._process(record(ce.data, to_headers(ce)))
    assert "ce_network" in headers_of(producer.sent[0])["dlt.reason"]
