"""The inbound topic on the real broker: an incident system's CloudEvent is handled like a POST,
exactly once; a report that can never be accepted goes to the dead-letter topic with a reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI
from huddle_contracts.cloudevents import CloudEvent, CloudEventError, from_record, to_headers
from huddle_contracts.events import AdverseEventReported, SupportRequested
from huddle_contracts.topics import (
    ADVERSE_EVENT_REPORTED,
    INBOUND_ADVERSE_EVENTS,
    SUPPORT_REQUESTED,
)
from huddle_e2e.harness import eventually

pytestmark = pytest.mark.integration

INBOUND_TYPE = "huddle.inbound.adverse_event.v1"
Intake = tuple[FastAPI, httpx.AsyncClient]


async def send_inbound(
    bootstrap: str,
    *,
    network: str,
    document: dict | bytes,
    content_type: str = "application/fhir+json",
    ce_id: str | None = None,
    key: bytes | None = None,
) -> str:
    """Publish a report as an incident system would: binary CloudEvent, tenant in ce_network."""
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    event = CloudEvent(
        id=ce_id or str(uuid.uuid4()),
        source="/incident-system/st-mary",
        type=INBOUND_TYPE,
        data=data,
        datacontenttype=content_type,
        extensions={"network": network},
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            INBOUND_ADVERSE_EVENTS.name, value=data, key=key, headers=to_headers(event)
        )
    finally:
        await producer.stop()
    return event.id


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord]], bool],
    seconds: float = 60,
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from its start, read until ``until(records)`` or the deadline."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while not until(records) and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def of_network(records: list[ConsumerRecord], network: str, kind: type) -> list:
    """The events of ``kind`` for ``network`` (a topic carries other types, other tenants and
    other tests' poison records too)."""

    def type_of(r: ConsumerRecord) -> str | None:
        try:
            return from_record(r.headers, r.value).type
        except CloudEventError:
            return None

    ours = [r for r in records if type_of(r) == kind.event_type]
    events = [kind.model_validate_json(r.value) for r in ours]
    return [e for e in events if e.network_id == network]


async def test_a_report_on_the_inbound_topic_is_handled_like_a_post_and_exactly_once(
    intake: Intake,
    kafka_bootstrap: str,
    documents,
    provision,
    count,
    network: str,
    new_staff_refs,
) -> None:
    app, _ = intake
    staff = new_staff_refs(3)
    await provision(
        [(ref, unit, "nurse") for ref, unit in zip(staff, ("icu", "icu", "ed"), strict=True)]
    )
    document = documents.r4(event_id=f"INC-{network}", staff=staff)
    ce_id = await send_inbound(kafka_bootstrap, network=network, document=document, key=b"INC")

    async def stored() -> bool:
        return await count(app, "adverse_event") == 1

    await eventually(stored, seconds=60, what="the inbound report stored")
    requests = await read_topic(
        kafka_bootstrap,
        SUPPORT_REQUESTED.name,
        until=lambda rs: len(of_network(rs, network, SupportRequested)) >= 3,
    )
    outreach = of_network(requests, network, SupportRequested)
    assert len(outreach) == 3 and {e.origin.value for e in outreach} == {"outreach"}
    assert {e.unit_id for e in outreach} == {"icu", "ed"}
    reported = of_network(
        await read_topic(
            kafka_bootstrap,
            ADVERSE_EVENT_REPORTED.name,
            until=lambda rs: bool(of_network(rs, network, AdverseEventReported)),
        ),
        network,
        AdverseEventReported,
    )
    assert [r.outreach_triggered for r in reported] == [True]
    for record in requests:
        assert documents.PATIENT.encode() not in record.value
        assert documents.NARRATIVE.encode() not in record.value

    # The same CloudEvent again (the inbox), and the same report as a new CloudEvent (its
    # reporter id): neither creates anything.
    consumer = app.state.runtime.consumer
    handled, duplicates = consumer.handled, consumer.duplicates
    await send_inbound(kafka_bootstrap, network=network, document=document, ce_id=ce_id)
    await send_inbound(kafka_bootstrap, network=network, document=document)

    async def both_seen() -> bool:
        return consumer.duplicates > duplicates and consumer.handled > handled

    await eventually(both_seen, seconds=60, what="both re-sent reports consumed")
    assert await count(app, "adverse_event") == 1
    assert await count(app, "support_request") == 3


async def test_an_invalid_inbound_report_goes_to_the_dead_letter_topic_with_a_reason(
    intake: Intake, kafka_bootstrap: str, documents, count, network: str
) -> None:
    app, _ = intake
    patient = {"resourceType": "Patient", "name": [{"text": documents.PATIENT}]}
    refused = await send_inbound(kafka_bootstrap, network=network, document=patient)
    malformed = await send_inbound(
        kafka_bootstrap,
        network=network,
        document=b'{"reporter_event_id": "Jane Roe-Patient",',
        content_type="application/json",
    )

    def dead(records: list[ConsumerRecord]) -> dict[str, dict[str, str]]:
        letters = {}
        for record in records:
            headers = {name: (value or b"").decode() for name, value in record.headers}
            letters[from_record(record.headers, record.value).id] = headers
        return letters

    records = await read_topic(
        kafka_bootstrap,
        INBOUND_ADVERSE_EVENTS.dead_letter,
        until=lambda rs: {refused, malformed} <= dead(rs).keys(),
    )
    letters = dead(records)
    assert {refused, malformed} <= letters.keys()
    assert "must be an AdverseEvent" in letters[refused]["dlt.reason"]
    assert "not valid JSON" in letters[malformed]["dlt.reason"]
    for letter in (letters[refused], letters[malformed]):
        assert letter["dlt.reason"].startswith("permanent failure: adverse-event report refused")
        assert "Jane" not in letter["dlt.reason"] and "Patient" not in letter["dlt.reason"]
        assert letter["dlt.original.topic"] == INBOUND_ADVERSE_EVENTS.name
    assert await count(app, "adverse_event") == 0
    assert await count(app, "support_request") == 0
