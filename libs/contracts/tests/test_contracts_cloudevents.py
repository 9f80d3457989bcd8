"""The CloudEvents codec refuses what is not a valid Huddle event, and says why."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from huddle_contracts.cloudevents import CloudEvent, CloudEventError, from_record, to_headers
from huddle_contracts.events import PeerMatched, SupportRequested
from huddle_contracts.registry import (
    InvalidEventData,
    UnknownEventType,
    decode_event,
    encode_event,
)
from huddle_contracts.vocabulary import Discipline, Origin, Urgency

REQUESTER = "p_" + "a" * 32
PEER = "p_" + "b" * 32
CASE_ID = uuid.UUID("0b5bd7a4-7f57-4e0e-9a1c-2f1f2d0c8a11")


def support_requested() -> SupportRequested:
    return SupportRequested(
        case_id=CASE_ID,
        network_id="north-coast",
        hospital_id="st-marys",
        unit_id="icu-2",
        requester=REQUESTER,
        discipline=Discipline.NURSE,
        origin=Origin.SELF,
        urgency=Urgency.URGENT,
        requested_at=datetime(2025, 3, 1, 2, 30, tzinfo=timezone(timedelta(hours=11))),
    )


def record_of(event: SupportRequested) -> tuple[list[tuple[str, bytes]], bytes]:
    ce = encode_event(event, source="/huddle/intake")
    return to_headers(ce), ce.data


def without(headers: list[tuple[str, bytes]], name: str) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in headers if key != name]


def replaced(headers: list[tuple[str, bytes]], name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [*without(headers, name), (name, value)]


def test_encode_takes_type_subject_and_time_from_the_event() -> None:
    event = support_requested()
    ce = encode_event(
        event,
        source="/huddle/intake",
        id="outbox-42",
        traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
    )

    assert ce.type == "huddle.support_requested.v1"
    assert ce.subject == str(CASE_ID)
    assert ce.time == event.requested_at
    assert ce.id == "outbox-42"
    assert ce.dedup_key == ("/huddle/intake", "outbox-42")
    assert json.loads(ce.data)["case_id"] == str(CASE_ID)
    headers = dict(to_headers(ce))
    assert headers["ce_time"] == b"2025-02-28T15:30:00Z"
    assert headers["traceparent"].startswith(b"00-")


def test_encode_gives_each_event_a_fresh_id_unless_told() -> None:
    event = support_requested()
    assert encode_event(event, source="/s").id != encode_event(event, source="/s").id


def test_encode_refuses_an_empty_source() -> None:
    with pytest.raises(CloudEventError, match="source"):
        encode_event(support_requested(), source="")


@pytest.mark.parametrize("header", ["ce_id", "ce_source", "ce_type", "ce_specversion"])
def test_a_missing_required_header_is_refused(header: str) -> None:
    headers, value = record_of(support_requested())
    with pytest.raises(CloudEventError, match=f"missing header.*{header}"):
        from_record(without(headers, header), value)


def test_no_headers_at_all_is_refused() -> None:
    with pytest.raises(CloudEventError, match="not a CloudEvent"):
        from_record(None, b"{}")


def test_a_wrong_specversion_is_refused() -> None:
    headers, value = record_of(support_requested())
    with pytest.raises(CloudEventError, match=re.escape("specversion '0.3'")):
        from_record(replaced(headers, "ce_specversion", b"0.3"), value)


def test_a_null_value_is_refused() -> None:
    headers, _ = record_of(support_requested())
    with pytest.raises(CloudEventError, match="null record value"):
        from_record(headers, None)


def test_a_naive_time_is_refused() -> None:
    headers, value = record_of(support_requested())
    with pytest.raises(CloudEventError, match="no time zone"):
        from_record(replaced(headers, "ce_time", b"2025-03-01T02:30:00"), value)


def test_a_time_that_is_not_rfc3339_is_refused() -> None:
    headers, value = record_of(support_requested())
    with pytest.raises(CloudEventError, match="not an RFC 3339"):
        from_record(replaced(headers, "ce_time", b"yesterday"), value)


def test_a_header_that_is_not_utf8_is_refused() -> None:
    headers, value = record_of(support_requested())
    with pytest.raises(CloudEventError, match="not UTF-8"):
        from_record(replaced(headers, "ce_source", b"\xff\xfe"), value)


def test_an_unknown_event_type_is_refused_by_name() -> None:
    headers, value = record_of(support_requested())
    ce = from_record(replaced(headers, "ce_type", b"huddle.support_requested.v9"), value)
    with pytest.raises(UnknownEventType, match=re.escape("huddle.support_requested.v9")) as caught:
        decode_event(ce)
    assert isinstance(caught.value, CloudEventError)
    assert caught.value.event_type == "huddle.support_requested.v9"


def test_an_unknown_field_in_the_data_is_refused_without_echoing_its_value() -> None:
    data = json.loads(support_requested().model_dump_json())
    data["requester_name"] = "Jane Doe"
    ce = CloudEvent(
        id="1",
        source="/huddle/intake",
        type=SupportRequested.event_type,
        data=json.dumps(data).encode(),
    )
    with pytest.raises(
        InvalidEventData, match="requester_name: Extra inputs are not permitted"
    ) as caught:
        decode_event(ce)
    assert isinstance(caught.value, CloudEventError)
    # The reason ends up in dead-letter headers and logs: it must not repeat what was refused.
    assert "Jane Doe" not in str(caught.value)
    assert "Jane Doe" not in repr(caught.value.errors)
    assert caught.value.__cause__ is None


def test_a_missing_field_and_a_bad_value_are_both_named() -> None:
    data = json.loads(support_requested().model_dump_json())
    del data["urgency"]
    data["requester"] = "jane.doe@example.org"
    ce = CloudEvent(
        id="1", source="/s", type=SupportRequested.event_type, data=json.dumps(data).encode()
    )
    with pytest.raises(InvalidEventData) as caught:
        decode_event(ce)
    message = str(caught.value)
    assert "urgency: Field required" in message
    assert "requester: String should match pattern" in message
    assert "jane.doe" not in message
    assert {error["type"] for error in caught.value.errors} == {
        "missing",
        "string_pattern_mismatch",
    }


def test_data_that_is_not_json_is_refused() -> None:
    ce = CloudEvent(id="1", source="/s", type=PeerMatched.event_type, data=b"\x00not json")
    with pytest.raises(InvalidEventData, match=re.escape("invalid huddle.peer_matched.v1 data")):
        decode_event(ce)


def test_data_of_another_content_type_is_refused() -> None:
    ce = encode_event(support_requested(), source="/s")
    ce = CloudEvent(
        id=ce.id, source=ce.source, type=ce.type, data=ce.data, datacontenttype="application/avro"
    )
    with pytest.raises(InvalidEventData, match="content type 'application/avro'"):
        decode_event(ce)


def test_json_with_a_charset_parameter_is_accepted() -> None:
    ce = encode_event(support_requested(), source="/s")
    ce = CloudEvent(
        id=ce.id,
        source=ce.source,
        type=ce.type,
        data=ce.data,
        subject=ce.subject,
        datacontenttype="application/json; charset=utf-8",
    )
    assert decode_event(ce) == support_requested()


def test_a_subject_that_does_not_match_the_key_is_refused() -> None:
    headers, value = record_of(support_requested())
    ce = from_record(replaced(headers, "ce_subject", str(uuid.uuid4()).encode()), value)
    with pytest.raises(InvalidEventData, match="does not match the data's key"):
        decode_event(ce)


def test_a_naive_timestamp_in_the_data_is_refused() -> None:
    data = json.loads(support_requested().model_dump_json())
    data["requested_at"] = "2025-03-01T02:30:00"
    ce = CloudEvent(
        id="1", source="/s", type=SupportRequested.event_type, data=json.dumps(data).encode()
    )
    with pytest.raises(InvalidEventData, match="requested_at: Input should have timezone info"):
        decode_event(ce)


def test_the_cloudevent_time_is_utc_on_the_wire() -> None:
    ce = encode_event(support_requested(), source="/s")
    received = from_record(to_headers(ce), ce.data)
    assert received.time == datetime(2025, 2, 28, 15, 30, tzinfo=UTC)
