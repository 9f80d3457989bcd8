"""From events to CloudEvents and back: the one codec every producer and consumer uses."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .cloudevents import CONTENT_TYPE, CloudEvent, CloudEventError
from .events import (
    AdverseEventReported,
    AnonymisedProgrammeEvent,
    CaseClosed,
    CertificationLapsed,
    Event,
    MatchEscalated,
    OfferMade,
    PeerCertified,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportRequested,
    SupportWithdrawn,
)
from .topics import Topic, topic_for_event_type

EVENT_TYPES: dict[str, type[Event]] = {
    model.event_type: model
    for model in (
        AdverseEventReported,
        SupportRequested,
        SupportWithdrawn,
        OfferMade,
        PeerMatched,
        MatchEscalated,
        SessionCompleted,
        CaseClosed,
        ReferralMade,
        PeerCertified,
        CertificationLapsed,
        AnonymisedProgrammeEvent,
    )
}


class UnknownEventType(CloudEventError):
    """The record's ``ce_type`` names no event this version of the contracts knows."""

    def __init__(self, event_type: str) -> None:
        known = ", ".join(sorted(EVENT_TYPES))
        super().__init__(f"unknown event type {event_type!r} (known: {known})")
        self.event_type = event_type


class InvalidEventData(CloudEventError):
    """The record's data does not satisfy the contract of its ``ce_type``."""

    def __init__(self, event_type: str, reason: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(f"invalid {event_type} data: {reason}")
        self.event_type = event_type
        self.errors = errors or []


def topic_for(event: Event | type[Event]) -> Topic:
    """The topic an event is published to."""
    return topic_for_event_type(event.event_type)


def encode_event(
    event: Event, *, source: str, id: str | None = None, traceparent: str | None = None
) -> CloudEvent:
    """The CloudEvent for ``event``; ``source`` + ``id`` must be unique (it is the dedup key).

    Give ``id`` when the event is stored before it is sent (the outbox), so a retry reuses it.
    """
    if not source:
        raise CloudEventError("CloudEvent source must not be empty")
    return CloudEvent(
        id=id if id is not None else CloudEvent.new_id(),
        source=source,
        type=event.event_type,
        data=event.model_dump_json().encode("utf-8"),
        subject=event.subject,
        time=event.event_time,
        traceparent=traceparent,
    )


def decode_event(ce: CloudEvent) -> Event:
    """The event carried by ``ce``; raises UnknownEventType or InvalidEventData with the reason."""
    model = EVENT_TYPES.get(ce.type)
    if model is None:
        raise UnknownEventType(ce.type)
    media_type = ce.datacontenttype.split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise InvalidEventData(ce.type, f"content type {ce.datacontenttype!r} is not JSON")
    try:
        event = model.model_validate_json(ce.data)
    except ValidationError as exc:
        # The input values are left out: a rejected record may hold exactly what must not leak.
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        details = "; ".join(f"{_location(error['loc'])}: {error['msg']}" for error in errors)
        raise InvalidEventData(ce.type, details, [dict(error) for error in errors]) from None
    if ce.subject is not None and ce.subject != event.subject:
        raise InvalidEventData(
            ce.type, f"ce_subject {ce.subject!r} does not match the data's key {event.subject!r}"
        )
    return event


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"
