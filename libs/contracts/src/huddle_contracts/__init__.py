"""Huddle's event contracts: topics, CloudEvents codec, event models, schemas and their export."""

from .cloudevents import CloudEvent, CloudEventError, from_record, to_headers
from .events import (
    AdverseEventReported,
    CaseClosed,
    CertificationLapsed,
    Event,
    InvolvedStaff,
    MatchEscalated,
    MatchPreferences,
    OfferMade,
    PeerCertified,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportRequested,
    SupportWithdrawn,
)
from .registry import (
    EVENT_TYPES,
    InvalidEventData,
    UnknownEventType,
    decode_event,
    encode_event,
    topic_for,
)

__all__ = [
    "EVENT_TYPES",
    "AdverseEventReported",
    "CaseClosed",
    "CertificationLapsed",
    "CloudEvent",
    "CloudEventError",
    "Event",
    "InvalidEventData",
    "InvolvedStaff",
    "MatchEscalated",
    "MatchPreferences",
    "OfferMade",
    "PeerCertified",
    "PeerMatched",
    "ReferralMade",
    "SessionCompleted",
    "SupportRequested",
    "SupportWithdrawn",
    "UnknownEventType",
    "decode_event",
    "encode_event",
    "from_record",
    "to_headers",
    "topic_for",
]
