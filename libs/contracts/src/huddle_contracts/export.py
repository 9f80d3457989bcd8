"""Generate the committed contract files from the models: JSON Schemas and one AsyncAPI document.

    uv run python -m huddle_contracts.export            # rewrite schemas/ and asyncapi.json
    uv run python -m huddle_contracts.export --check    # exit 1 if the committed files drifted
    uv run python -m huddle_contracts.export --release  # freeze today's schemas as a baseline

Released baselines (``schemas/released/<version>/``) are written only with ``--release`` and never
changed once written: the compatibility tests compare every current schema against them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from .cloudevents import CONTENT_TYPE, SPEC_VERSION
from .events import Event
from .registry import EVENT_TYPES
from .topics import TOPICS, Topic

CONTRACTS_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.json"
RELEASED_DIR = "released"
BASELINE = "v1"

ASYNCAPI_VERSION = "3.0.0"
# The version of the contract as a whole; bump the minor on additive changes.
CONTRACT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
HEADERS_SCHEMA = "CloudEventHeaders"
REGENERATE = "uv run python -m huddle_contracts.export"

# Parties of the topic registry that are not Huddle services, as the document names them.
_OUTSIDE_PARTIES = {
    "incident-systems": "incident-reporting systems (outside Huddle)",
    "analysts": "analysts (outside Huddle)",
}


def render(document: Any) -> str:
    """The committed text of a JSON document: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def event_schema(model: type[Event]) -> dict[str, Any]:
    """The standalone JSON Schema (2020-12) of one event's data."""
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$comment"] = f"Generated from huddle_contracts.events.{model.__name__}; {REGENERATE}"
    return schema


def schema_file_name(event_type: str) -> str:
    return f"{event_type}.json"


def asyncapi_document() -> dict[str, Any]:
    """One AsyncAPI 3.0.0 document for the whole bus: every topic, message and party."""
    models = [EVENT_TYPES[event_type] for event_type in sorted(EVENT_TYPES)]
    _, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas[HEADERS_SCHEMA] = _headers_schema()
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        channel_id = _slug(topic)
        channel_messages: dict[str, Any] = {}
        for event_type in topic.event_types:
            name = _message_name(event_type)
            messages[name] = _message(event_type, topic)
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[channel_id] = _channel(topic, channel_messages)
        message_refs = [
            {"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in channel_messages
        ]
        for party in sorted(topic.publishers):
            operations[f"{party}.publish.{channel_id}"] = _operation(
                "send", party, channel_id, message_refs
            )
        for party in sorted(topic.consumers):
            operations[f"{party}.consume.{channel_id}"] = _operation(
                "receive", party, channel_id, message_refs
            )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Huddle event bus",
            "version": CONTRACT_VERSION,
            "description": (
                "Events between Huddle's services (peer support for healthcare workers). Every "
                "record is a CloudEvents 1.0 event in the Kafka protocol binding, binary content "
                "mode: attributes in `ce_*` headers, JSON data as the value, W3C `traceparent` "
                "for tracing; `ce_source` + `ce_id` is the de-duplication key. Records that "
                "cannot be processed go to `<topic>.dlt` with the reason in headers. No event "
                "carries a direct identifier: people appear only as per-network pseudonyms. "
                "Additive changes keep v1; a breaking change is a new v2 type and topic."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The local broker started by `make run` (KRaft).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def generated_files() -> dict[str, str]:
    """Every generated file (path relative to the contracts root) and its text."""
    files = {
        f"{SCHEMAS_DIR}/{schema_file_name(event_type)}": render(event_schema(model))
        for event_type, model in sorted(EVENT_TYPES.items())
    }
    files[ASYNCAPI_FILE] = render(asyncapi_document())
    return files


def release_files(version: str = BASELINE) -> dict[str, str]:
    """Today's schemas as a release baseline under ``schemas/released/<version>/``."""
    return {
        f"{SCHEMAS_DIR}/{RELEASED_DIR}/{version}/{schema_file_name(event_type)}": render(
            event_schema(model)
        )
        for event_type, model in sorted(EVENT_TYPES.items())
    }


def drift(root: Path = CONTRACTS_ROOT) -> list[str]:
    """Why the committed files differ from what the models produce; empty when they agree."""
    problems = []
    expected = generated_files()
    for relative, text in expected.items():
        path = root / relative
        if not path.exists():
            problems.append(f"{_shown(path)} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{_shown(path)} differs from what the models produce")
    for path in sorted((root / SCHEMAS_DIR).glob("*.json")):
        if path.relative_to(root).as_posix() not in expected:
            problems.append(f"{_shown(path)} is produced by no model (stale)")
    return problems


def write(root: Path = CONTRACTS_ROOT) -> list[Path]:
    """Rewrite the generated files; returns those that changed. Never touches released baselines."""
    changed = []
    expected = generated_files()
    for path in sorted((root / SCHEMAS_DIR).glob("*.json")):
        if path.relative_to(root).as_posix() not in expected:
            path.unlink()
            changed.append(path)
    for relative, text in expected.items():
        if _write_if_changed(root / relative, text):
            changed.append(root / relative)
    return changed


def release(root: Path = CONTRACTS_ROOT, version: str = BASELINE) -> tuple[list[Path], list[str]]:
    """Freeze the schemas not yet in baseline ``version``; a released schema is never rewritten.

    Returns the files written and the reasons for any file left alone because it differs.
    """
    written, refused = [], []
    for relative, text in release_files(version).items():
        path = root / relative
        if not path.exists():
            _write_if_changed(path, text)
            written.append(path)
        elif path.read_text(encoding="utf-8") != text:
            refused.append(
                f"{_shown(path)} is released and frozen; a breaking change needs a new v2 type"
            )
    return written, refused


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m huddle_contracts.export",
        description=(__doc__ or "").strip().splitlines()[0],
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed files differ from the models"
    )
    parser.add_argument(
        "--release",
        nargs="?",
        const=BASELINE,
        metavar="VERSION",
        help=f"also freeze the schemas as baseline VERSION (default {BASELINE})",
    )
    parser.add_argument(
        "--root", type=Path, default=CONTRACTS_ROOT, help="the libs/contracts directory"
    )
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.check:
        problems = drift(root)
        for problem in problems:
            sys.stderr.write(f"contract drift: {problem}\n")
        if problems:
            sys.stderr.write(f"regenerate with `{REGENERATE}` and commit the result\n")
            return 1
        sys.stdout.write(f"contracts up to date ({len(generated_files())} files)\n")
        return 0
    for path in write(root):
        sys.stdout.write(
            (f"wrote {_shown(path)}" if path.exists() else f"removed {_shown(path)}") + "\n"
        )
    if args.release is not None:
        written, refused = release(root, args.release)
        for path in written:
            sys.stdout.write(f"released {_shown(path)}\n")
        for reason in refused:
            sys.stderr.write(f"not released: {reason}\n")
        if refused:
            return 1
    return 0


def _slug(topic: Topic) -> str:
    """A topic's short id for channels and operations: huddle.peer-matched.v1 -> peer-matched."""
    name = topic.name.removeprefix("huddle.").removesuffix(".v1")
    return name.replace(".", "-")


def _message_name(event_type: str) -> str:
    model = EVENT_TYPES.get(event_type)
    if model is not None:
        return model.__name__
    words = event_type.removeprefix("huddle.").rsplit(".", 1)[0].replace(".", "_").split("_")
    return "".join(word.capitalize() for word in words)


def _message(event_type: str, topic: Topic) -> dict[str, Any]:
    model = EVENT_TYPES.get(event_type)
    headers = {
        "allOf": [
            {"$ref": f"#/components/schemas/{HEADERS_SCHEMA}"},
            {"type": "object", "properties": {"ce_type": {"type": "string", "const": event_type}}},
        ]
    }
    if model is None:
        # Raw reports are validated by intake itself; they are not part of the typed contract.
        payload: dict[str, Any] = {
            "type": "object",
            "description": (
                "A raw report from an incident-reporting system: a FHIR AdverseEvent (R4 or R5) "
                "or Huddle's own JSON. It may identify people, hence intake-only and kept briefly."
            ),
        }
        key: dict[str, Any] = {"type": "string"}
        summary = topic.description
    else:
        payload = {"$ref": f"#/components/schemas/{model.__name__}"}
        key = _key_schema(model)
        summary = _first_line(model.__doc__)
    key["description"] = f"The {topic.key}, also the CloudEvents subject."
    return {
        "name": event_type,
        "title": _message_name(event_type),
        "summary": summary,
        "contentType": CONTENT_TYPE,
        "headers": headers,
        "payload": payload,
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _key_schema(model: type[Event]) -> dict[str, Any]:
    field_schema = model.model_json_schema()["properties"][model.subject_field]
    return {k: v for k, v in field_schema.items() if k in ("type", "format", "pattern")}


def _channel(topic: Topic, messages: dict[str, Any]) -> dict[str, Any]:
    key = f"the {topic.key}" if topic.keyed else "none (random partition)"
    return {
        "address": topic.name,
        "title": topic.name,
        "description": (
            f"{topic.description} Kafka key: {key}. Dead letters: `{topic.dead_letter}`."
        ),
        "messages": messages,
        "servers": [{"$ref": "#/servers/kafka"}],
        "bindings": {
            "kafka": {
                "partitions": topic.partitions,
                "topicConfiguration": {
                    "cleanup.policy": ["delete"],
                    "retention.ms": topic.retention_ms,
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _operation(
    action: str, party: str, channel_id: str, messages: list[dict[str, str]]
) -> dict[str, Any]:
    who = _OUTSIDE_PARTIES.get(party, f"the {party} service")
    summary = f"Sent by {who}." if action == "send" else f"Received by {who}."
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "summary": summary,
    }
    if messages:
        operation["messages"] = messages
    return operation


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "CloudEvents 1.0 attributes in the Kafka protocol binding, binary content mode "
            "(UTF-8 header values), plus W3C Trace Context."
        ),
        "required": ["ce_id", "ce_source", "ce_type", "ce_specversion"],
        "properties": {
            "ce_id": {
                "type": "string",
                "minLength": 1,
                "description": "Unique per source; ce_source + ce_id is the de-duplication key.",
            },
            "ce_source": {
                "type": "string",
                "minLength": 1,
                "description": "URI-reference of the producing service.",
            },
            "ce_type": {
                "type": "string",
                "minLength": 1,
                "description": "The event type, e.g. huddle.support_requested.v1.",
            },
            "ce_specversion": {"type": "string", "const": SPEC_VERSION},
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "When the occurrence happened (RFC 3339, UTC).",
            },
            "ce_subject": {
                "type": "string",
                "description": "Same as the Kafka key: case id, adverse event id or peer.",
            },
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C Trace Context parent.",
            },
            "tracestate": {"type": "string", "description": "W3C Trace Context state."},
        },
    }


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return True


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return os.fspath(path)


if __name__ == "__main__":
    sys.exit(main())
