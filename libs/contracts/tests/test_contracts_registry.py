"""The models and the topic registry agree: every event type has one home and one model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from huddle_contracts.events import (
    AdverseEventReported,
    AnonymisedProgrammeEvent,
    CertificationLapsed,
    Event,
    InvolvedStaff,
    PeerCertified,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
)
from huddle_contracts.registry import EVENT_TYPES, topic_for
from huddle_contracts.topics import (
    ANALYTICS_ANONYMISED,
    INBOUND_ADVERSE_EVENTS,
    TOPICS,
    topic_for_event_type,
)
from huddle_contracts.vocabulary import (
    Discipline,
    EventClass,
    HarmCategory,
    HarmLevel,
    Mode,
    ReferralResource,
    Tier,
    Urgency,
)
from pydantic import ValidationError

# Raw inbound reports and the analysts' stream have no typed model yet.
UNMODELLED_TOPICS = {INBOUND_ADVERSE_EVENTS.name}
# The registry names keys in words; the models name the field that holds them.
KEY_FIELDS = {
    "case id": "case_id",
    "adverse event id": "adverse_event_id",
    "peer id": "peer",
    "none (random)": "record_id",
}

PEER = "p_" + "c" * 32
NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
BASE = {"network_id": "north-coast", "hospital_id": "st-marys"}


def test_every_modelled_topic_event_type_has_a_model_and_vice_versa() -> None:
    in_topics = {
        event_type
        for topic in TOPICS
        if topic.name not in UNMODELLED_TOPICS
        for event_type in topic.event_types
    }
    assert in_topics == set(EVENT_TYPES)


def test_unmodelled_topics_have_no_model() -> None:
    for topic in TOPICS:
        if topic.name in UNMODELLED_TOPICS:
            assert not set(topic.event_types) & set(EVENT_TYPES), topic.name


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_model_is_registered_under_its_own_type(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    assert model.event_type == event_type
    assert topic_for(model) is topic_for_event_type(event_type)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_subject_is_the_key_the_topic_registry_names(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    assert model.subject_field == KEY_FIELDS[topic_for(model).key]


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_events_refuse_unknown_fields_and_are_frozen(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True


def test_a_model_for_an_event_type_no_topic_carries_fails_at_definition() -> None:
    with pytest.raises(KeyError, match="no topic carries"):

        class Orphan(Event):
            event_type: ClassVar[str] = "huddle.orphan.v1"
            subject_field: ClassVar[str] = "network_id"
            time_field: ClassVar[str] = "network_id"


def test_a_model_whose_key_field_is_missing_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="no field 'case_id'"):

        class Keyless(Event):
            event_type: ClassVar[str] = "huddle.peer_matched.v1"
            subject_field: ClassVar[str] = "case_id"
            time_field: ClassVar[str] = "matched_at"
            matched_at: datetime


def test_subjects_are_the_case_the_adverse_event_or_the_peer() -> None:
    case_id, event_id = uuid.uuid4(), uuid.uuid4()
    matched = PeerMatched(
        **BASE,
        case_id=case_id,
        offer_id=uuid.uuid4(),
        peer=PEER,
        requester="p_" + "d" * 32,
        mode=Mode.PHONE,
        matched_at=NOW,
    )
    reported = AdverseEventReported(
        **BASE,
        adverse_event_id=event_id,
        unit_ids=["icu-2"],
        event_class=EventClass.INCIDENT,
        harm_level=HarmLevel.SEVERE,
        categories=[HarmCategory.UNEXPECTED_DEATH],
        occurred_at=NOW - timedelta(hours=3),
        reported_at=NOW,
        involved=[InvolvedStaff(pseudonym=PEER, discipline=Discipline.NURSE, unit_id="icu-2")],
        outreach_triggered=True,
        group_debrief_requested=False,
    )
    lapsed = CertificationLapsed(**BASE, peer=PEER, lapsed_at=NOW)

    assert matched.subject == str(case_id)
    assert matched.tier is Tier.PEER
    assert reported.subject == str(event_id)
    assert reported.event_time == NOW
    assert lapsed.subject == PEER


def test_a_referral_is_always_tier_3() -> None:
    referral = ReferralMade(
        **BASE,
        case_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        urgency=Urgency.CRISIS,
        resource=ReferralResource.CRISIS_LINE,
        made_at=NOW,
    )
    assert referral.tier is Tier.PROFESSIONAL
    assert referral.referred_by is None
    with pytest.raises(ValidationError, match="tier"):
        ReferralMade.model_validate({**referral.model_dump(), "tier": 2})


def test_a_certification_must_end_after_it_starts() -> None:
    with pytest.raises(ValidationError, match="valid_until must be after certified_at"):
        PeerCertified(
            **BASE,
            peer=PEER,
            unit_id="ed",
            discipline=Discipline.PHYSICIAN,
            languages=["en"],
            certified_at=NOW,
            valid_until=NOW,
        )


@pytest.mark.parametrize(("minutes", "ok"), [(0, False), (1, True), (600, True), (601, False)])
def test_a_session_lasts_between_a_minute_and_ten_hours(minutes: int, ok: bool) -> None:
    fields = {
        **BASE,
        "case_id": uuid.uuid4(),
        "session_id": uuid.uuid4(),
        "peer": PEER,
        "mode": Mode.GROUP,
        "tier": Tier.PEER,
        "started_at": NOW,
        "duration_minutes": minutes,
        "participants": 15,
        "follow_up_planned": True,
        "referral_made": False,
        "completed_at": NOW + timedelta(minutes=77),
    }
    if ok:
        assert SessionCompleted(**fields).duration_minutes == minutes
    else:
        with pytest.raises(ValidationError, match="duration_minutes"):
            SessionCompleted(**fields)


def test_a_session_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="completed_at must not be before started_at"):
        SessionCompleted(
            **BASE,
            case_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            peer=PEER,
            mode=Mode.VIDEO,
            tier=Tier.PEER,
            started_at=NOW,
            duration_minutes=30,
            participants=1,
            follow_up_planned=False,
            referral_made=False,
            completed_at=NOW - timedelta(minutes=1),
        )


def test_an_adverse_event_names_at_least_one_unit() -> None:
    with pytest.raises(ValidationError, match="unit_ids"):
        AdverseEventReported(
            **BASE,
            adverse_event_id=uuid.uuid4(),
            unit_ids=[],
            event_class=EventClass.NEAR_MISS,
            harm_level=HarmLevel.NONE,
            categories=[],
            occurred_at=NOW,
            reported_at=NOW,
            involved=[],
            outreach_triggered=False,
            group_debrief_requested=False,
        )


def test_events_are_immutable_values() -> None:
    lapsed = CertificationLapsed(**BASE, peer=PEER, lapsed_at=NOW)
    with pytest.raises(ValidationError, match="frozen"):
        lapsed.peer = "p_" + "e" * 32
    assert hash(lapsed) == hash(CertificationLapsed(**BASE, peer=PEER, lapsed_at=NOW))


def test_the_analysts_stream_is_unkeyed_and_its_subject_is_random() -> None:
    # A key would group records by something an analyst could link; the record id is random.
    assert not ANALYTICS_ANONYMISED.keyed
    assert AnonymisedProgrammeEvent.subject_field == "record_id"
    assert "pseudonym" not in AnonymisedProgrammeEvent.model_json_schema()["properties"]
