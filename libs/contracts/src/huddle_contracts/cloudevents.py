"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

Attributes travel as ``ce_*`` headers, the data as the record value, and W3C trace context as
``traceparent``/``tracestate`` headers. ``source`` + ``id`` is the de-duplication key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = list[tuple[str, bytes]]

_REQUIRED = ("ce_id", "ce_source", "ce_type", "ce_specversion")


class CloudEventError(ValueError):
    """A Kafka record that is not a valid CloudEvent in the binary binding."""


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    data: bytes
    subject: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = CONTENT_TYPE
    traceparent: str | None = None
    tracestate: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.source, self.id)

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())


def to_headers(event: CloudEvent) -> Headers:
    """The record headers for ``event`` (the value is ``event.data``)."""
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", _format_time(event.time).encode()),
        ("content-type", event.datacontenttype.encode()),
    ]
    if event.subject is not None:
        headers.append(("ce_subject", event.subject.encode()))
    for name, value in sorted(event.extensions.items()):
        headers.append((f"ce_{name}", value.encode()))
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    if event.tracestate:
        headers.append(("tracestate", event.tracestate.encode()))
    return headers


def from_record(headers: Sequence[tuple[str, bytes]] | None, value: bytes | None) -> CloudEvent:
    """Decode a Kafka record in the binary binding; raises CloudEventError with a clear reason."""
    found = _header_map(headers or ())
    missing = [name for name in _REQUIRED if name not in found]
    if missing:
        raise CloudEventError(f"not a CloudEvent: missing header(s) {', '.join(missing)}")
    if found["ce_specversion"] != SPEC_VERSION:
        raise CloudEventError(f"unsupported CloudEvents specversion {found['ce_specversion']!r}")
    if value is None:
        raise CloudEventError("CloudEvent has no data (null record value)")
    for name in ("ce_id", "ce_source", "ce_type"):
        if not found[name]:
            raise CloudEventError(f"CloudEvent header {name} is empty")
    time_text = found.get("ce_time")
    try:
        time = datetime.fromisoformat(time_text) if time_text else datetime.now(UTC)
    except ValueError as exc:
        raise CloudEventError(f"ce_time is not an RFC 3339 timestamp: {time_text!r}") from exc
    if time.tzinfo is None:
        raise CloudEventError(f"ce_time has no time zone: {time_text!r}")
    known = {"ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject"}
    extensions = {
        name[3:]: text
        for name, text in found.items()
        if name.startswith("ce_") and name not in known
    }
    return CloudEvent(
        id=found["ce_id"],
        source=found["ce_source"],
        type=found["ce_type"],
        data=value,
        subject=found.get("ce_subject"),
        time=time,
        datacontenttype=found.get("content-type", CONTENT_TYPE),
        traceparent=found.get("traceparent"),
        tracestate=found.get("tracestate"),
        extensions=extensions,
    )


def _header_map(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in headers:
        try:
            found[name] = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError as exc:
            raise CloudEventError(f"header {name} is not UTF-8") from exc
    return found


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise CloudEventError("CloudEvent time must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
