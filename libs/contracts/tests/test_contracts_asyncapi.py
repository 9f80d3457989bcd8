"""The AsyncAPI document is well-formed AsyncAPI 3.0.0 and describes the topic registry faithfully.

The meta-schema below is the subset of the AsyncAPI 3.0.0 specification this document uses (field
names, required fields, key patterns); the reference checks stand in for what a parser resolves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from huddle_contracts.export import ASYNCAPI_FILE, CONTRACTS_ROOT
from huddle_contracts.registry import EVENT_TYPES
from huddle_contracts.topics import TOPICS
from jsonschema import Draft7Validator

DOCUMENT: dict[str, Any] = json.loads((CONTRACTS_ROOT / ASYNCAPI_FILE).read_text(encoding="utf-8"))

_KEY = r"^[\w\d\.\-_]+$"
_REF = {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string"}}}
_EXTENSIONS: dict[str, Any] = {"^x-[\\w\\d\\.\\x2d_]+$": {}}
ASYNCAPI_3_SUBSET: dict[str, Any] = {
    "type": "object",
    "required": ["asyncapi", "info"],
    "additionalProperties": False,
    "patternProperties": _EXTENSIONS,
    "properties": {
        "asyncapi": {"const": "3.0.0"},
        "id": {"type": "string"},
        "defaultContentType": {"type": "string"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string"},
                "version": {"type": "string"},
                "description": {"type": "string"},
            },
        },
        "servers": {
            "type": "object",
            "propertyNames": {"pattern": _KEY},
            "additionalProperties": {
                "type": "object",
                "required": ["host", "protocol"],
                "additionalProperties": False,
                "properties": {
                    "host": {"type": "string"},
                    "protocol": {"type": "string"},
                    "description": {"type": "string"},
                },
            },
        },
        "channels": {
            "type": "object",
            "propertyNames": {"pattern": _KEY},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "address": {"type": ["string", "null"]},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "messages": {
                        "type": "object",
                        "propertyNames": {"pattern": _KEY},
                        "additionalProperties": _REF,
                    },
                    "servers": {"type": "array", "items": _REF, "uniqueItems": True},
                    "bindings": {"type": "object", "properties": {"kafka": {"type": "object"}}},
                },
            },
        },
        "operations": {
            "type": "object",
            "propertyNames": {"pattern": _KEY},
            "additionalProperties": {
                "type": "object",
                "required": ["action", "channel"],
                "additionalProperties": False,
                "properties": {
                    "action": {"enum": ["send", "receive"]},
                    "channel": _REF,
                    "messages": {"type": "array", "items": _REF},
                    "summary": {"type": "string"},
                },
            },
        },
        "components": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "schemas": {"type": "object", "propertyNames": {"pattern": _KEY}},
                "messages": {
                    "type": "object",
                    "propertyNames": {"pattern": _KEY},
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["payload"],
                        "properties": {
                            "name": {"type": "string"},
                            "title": {"type": "string"},
                            "summary": {"type": "string"},
                            "contentType": {"type": "string"},
                            "headers": {"type": "object"},
                            "payload": {"type": "object"},
                            "bindings": {
                                "type": "object",
                                "properties": {
                                    "kafka": {
                                        "type": "object",
                                        "required": ["key"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "key": {"type": "object"},
                                            "bindingVersion": {"const": "0.5.0"},
                                        },
                                    }
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), f"only local references are expected, not {pointer}"
    node: Any = DOCUMENT
    for part in pointer[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{pointer} does not resolve"
        assert part in node, f"{pointer} does not resolve"
        node = node[part]
    return node


def test_the_document_fits_the_asyncapi_3_structure() -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft7Validator(ASYNCAPI_3_SUBSET).iter_errors(DOCUMENT)
    ]
    assert errors == []


def test_every_reference_resolves() -> None:
    pointers = set(references(DOCUMENT))
    assert pointers
    for pointer in pointers:
        resolve(pointer)


def test_the_kafka_server_is_the_local_broker() -> None:
    assert DOCUMENT["servers"]["kafka"] == {
        "host": "localhost:9092",
        "protocol": "kafka",
        "description": DOCUMENT["servers"]["kafka"]["description"],
    }


def test_there_is_one_channel_per_topic_at_its_address() -> None:
    addresses = {channel["address"] for channel in DOCUMENT["channels"].values()}
    assert addresses == {topic.name for topic in TOPICS}
    assert len(DOCUMENT["channels"]) == len(TOPICS)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda topic: topic.name)
def test_each_channel_carries_its_topics_event_types(topic: Any) -> None:
    (channel,) = [c for c in DOCUMENT["channels"].values() if c["address"] == topic.name]
    names = {resolve(ref["$ref"])["name"] for ref in channel["messages"].values()}
    assert names == set(topic.event_types)
    assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
    assert channel["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == topic.retention_ms


@pytest.mark.parametrize("topic", TOPICS, ids=lambda topic: topic.name)
def test_every_publisher_sends_and_every_consumer_receives(topic: Any) -> None:
    parties: dict[str, set[str]] = {"send": set(), "receive": set()}
    for name, operation in DOCUMENT["operations"].items():
        if resolve(operation["channel"]["$ref"])["address"] == topic.name:
            parties[operation["action"]].add(name.split(".", 1)[0])
            verb = "publish" if operation["action"] == "send" else "consume"
            assert re.fullmatch(rf"[a-z-]+\.{verb}\.[a-z-]+", name), name
    assert parties == {"send": set(topic.publishers), "receive": set(topic.consumers)}


def test_operation_messages_belong_to_the_operations_channel() -> None:
    for name, operation in DOCUMENT["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        for message in operation.get("messages", []):
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), name


def test_intake_publishes_support_requested_under_the_agreed_name() -> None:
    operation = DOCUMENT["operations"]["intake.publish.support-requested"]
    assert operation["action"] == "send"
    assert resolve(operation["channel"]["$ref"])["address"] == "huddle.support-requested.v1"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_message_has_its_payload_cloudevents_headers_and_key(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    message = DOCUMENT["components"]["messages"][model.__name__]
    assert message["name"] == event_type
    assert message["contentType"] == "application/json"
    assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
    headers = resolve(message["headers"]["allOf"][0]["$ref"])
    assert {"ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject"} <= set(
        headers["properties"]
    )
    assert "traceparent" in headers["properties"]
    assert message["headers"]["allOf"][1]["properties"]["ce_type"]["const"] == event_type
    assert "key" in message["bindings"]["kafka"]
    assert message["bindings"]["kafka"]["key"]["description"]
