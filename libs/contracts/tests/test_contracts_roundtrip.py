"""Every event survives the bus: model -> CloudEvent -> Kafka record -> CloudEvent -> model."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from huddle_contracts.cloudevents import from_record, to_headers
from huddle_contracts.events import Event
from huddle_contracts.export import ASYNCAPI_FILE, CONTRACTS_ROOT, SCHEMAS_DIR, schema_file_name
from huddle_contracts.registry import EVENT_TYPES, decode_event, encode_event
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

TRACEPARENTS = st.from_regex(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", fullmatch=True)


@cache
def committed_schema_validator(event_type: str) -> Draft202012Validator:
    path = CONTRACTS_ROOT / SCHEMAS_DIR / schema_file_name(event_type)
    schema = json.loads(path.read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def asyncapi_payload_validator(event_type: str) -> Draft202012Validator:
    document = json.loads((CONTRACTS_ROOT / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    name = EVENT_TYPES[event_type].__name__
    # The payload's $refs point into components, so the components travel with it.
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid(validator: Draft202012Validator, instance: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), traceparent=st.none() | TRACEPARENTS)
def test_every_event_round_trips_through_a_kafka_record(
    event_type: str, data: st.DataObject, traceparent: str | None
) -> None:
    model = EVENT_TYPES[event_type]
    event: Event = data.draw(st.from_type(model), label="event")

    sent = encode_event(event, source="/huddle/test", traceparent=traceparent)
    received = from_record(to_headers(sent), sent.data)
    decoded = decode_event(received)

    assert decoded == event
    assert type(decoded) is model
    assert received.type == event_type
    assert received.subject == event.subject
    assert received.time == event.event_time
    assert received.dedup_key == sent.dedup_key
    assert received.traceparent == traceparent
    assert received.time.utcoffset() is not None


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_event_validates_against_its_exported_schemas(
    event_type: str, data: st.DataObject
) -> None:
    event: Event = data.draw(st.from_type(EVENT_TYPES[event_type]), label="event")
    instance = json.loads(encode_event(event, source="/huddle/test").data)

    assert_valid(committed_schema_validator(event_type), instance)
    assert_valid(asyncapi_payload_validator(event_type), instance)
