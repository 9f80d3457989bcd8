"""The events on Huddle's bus, v1: one frozen pydantic model per CloudEvents ``type``.

Nothing here can identify a person directly: people appear only as per-network pseudonyms, places
as slugs, and there is no free text at all (no names, contact details, staff or patient numbers,
clinical narrative). Additive changes keep v1; a breaking change is a new v2 type and topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from .topics import topic_for_event_type
from .vocabulary import (
    ClinicalArea,
    Discipline,
    DurationBand,
    EscalationReason,
    EventClass,
    Gender,
    HarmCategory,
    HarmLevel,
    HospitalId,
    LanguageTag,
    Mode,
    Month,
    NetworkId,
    Origin,
    ProgrammeRecordKind,
    Pseudonym,
    ReferralResource,
    Tier,
    UnitId,
    Urgency,
    Withdrawal,
)

# Unknown fields are refused (a typo or a smuggled identifier must not pass) and events are values.
_CONTRACT = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Event(BaseModel):
    """Base of every event: the tenant it belongs to, its Kafka key and its own timestamp."""

    model_config = _CONTRACT

    event_type: ClassVar[str]
    """The CloudEvents ``type``, e.g. ``huddle.support_requested.v1``."""
    subject_field: ClassVar[str]
    """The field whose value is the Kafka key and the CloudEvents ``subject``."""
    time_field: ClassVar[str]
    """The field whose value is the CloudEvents ``time`` (when the occurrence happened)."""

    network_id: NetworkId
    """The health network (tenant) the event belongs to."""
    hospital_id: HospitalId
    """The hospital within the network."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Fail at import, not in production, when a model is not wired to the topic registry.
        for attribute in ("event_type", "subject_field", "time_field"):
            if not isinstance(getattr(cls, attribute, None), str):
                raise TypeError(f"{cls.__name__} must set the ClassVar {attribute}")
        topic_for_event_type(cls.event_type)
        for attribute in (cls.subject_field, cls.time_field):
            if attribute not in cls.model_fields:
                raise TypeError(f"{cls.__name__} has no field {attribute!r}")

    @property
    def subject(self) -> str:
        """The Kafka record key and CloudEvents ``subject``: per-key order is per case or peer."""
        return str(getattr(self, self.subject_field))

    @property
    def event_time(self) -> datetime:
        """When the occurrence happened (the CloudEvents ``time``)."""
        moment = getattr(self, self.time_field)
        assert isinstance(moment, datetime)
        return moment


class InvolvedStaff(BaseModel):
    """A member of staff involved in an adverse event, to be offered support."""

    model_config = _CONTRACT

    pseudonym: Pseudonym
    discipline: Discipline
    unit_id: UnitId
    """The unit the person works in (or their manager's unit when not found in the directory)."""


class AdverseEventReported(Event):
    """An incident-reporting system reported an adverse event, de-identified by intake."""

    event_type: ClassVar[str] = "huddle.adverse_event_reported.v1"
    subject_field: ClassVar[str] = "adverse_event_id"
    time_field: ClassVar[str] = "reported_at"

    adverse_event_id: UUID
    """Huddle's id for the event (never the reporting system's own reference)."""
    unit_ids: Annotated[tuple[UnitId, ...], Field(min_length=1)]
    """Units where the event happened or whose staff were involved."""
    event_class: EventClass
    harm_level: HarmLevel
    categories: tuple[HarmCategory, ...]
    """Kinds of event; they decide whether proactive outreach applies."""
    occurred_at: AwareDatetime
    """When the adverse event happened (as reported)."""
    reported_at: AwareDatetime
    """When the report was received."""
    involved: tuple[InvolvedStaff, ...]
    """Everyone involved (staff unknown to the directory are placed in their manager's unit or
    the event's unit, never dropped)."""
    outreach_triggered: bool
    """Whether the outreach policy offers support to everyone involved."""
    group_debrief_requested: bool
    """Whether a critical-response group debrief is called (over 5 staff or several units)."""


class MatchPreferences(BaseModel):
    """A requester's opt-in preferences for their peer; null means no preference."""

    model_config = _CONTRACT

    own_unit: bool | None = None
    """True for a peer from the requester's own unit, False for another unit."""
    language: LanguageTag | None = None
    gender: Gender | None = None


class SupportRequested(Event):
    """A worker asked for support, or was offered it by outreach after an event."""

    event_type: ClassVar[str] = "huddle.support_requested.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "requested_at"

    case_id: UUID
    unit_id: UnitId
    """The requester's unit (peers from it are avoided unless preferred)."""
    requester: Pseudonym
    discipline: Discipline
    """The requester's discipline (peers are matched like with like)."""
    origin: Origin
    urgency: Urgency
    preferred_mode: Mode | None = None
    preferences: MatchPreferences = MatchPreferences()
    adverse_event_id: UUID | None = None
    """The adverse event behind the request, if any (peers involved in it are never matched)."""
    requested_at: AwareDatetime
    clinical_area: ClinicalArea | None = None
    """The requester's clinical background (peers with a similar one are preferred)."""
    reporting_line: tuple[Pseudonym, ...] = ()
    """The requester's managers, up the line: never matched as their peer."""
    involved: tuple[Pseudonym, ...] = ()
    """Everyone involved in the same adverse event: never matched as a peer for it."""


class OfferMade(Event):
    """A case was offered to a peer, who must answer by ``respond_by`` (they are paged)."""

    event_type: ClassVar[str] = "huddle.offer_made.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "offered_at"

    case_id: UUID
    offer_id: UUID
    peer: Pseudonym
    urgency: Urgency
    offered_at: AwareDatetime
    respond_by: AwareDatetime


class PeerMatched(Event):
    """A trained peer accepted a case; the first contact is now theirs to make."""

    event_type: ClassVar[str] = "huddle.peer_matched.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "matched_at"

    case_id: UUID
    offer_id: UUID
    """The offer the peer accepted."""
    peer: Pseudonym
    requester: Pseudonym
    tier: Tier = Tier.PEER
    mode: Mode
    matched_at: AwareDatetime
    first_offered_at: AwareDatetime | None = None
    """When the case was first offered to a peer (for time-to-offer metrics)."""
    respond_by: AwareDatetime | None = None
    """The first-contact deadline the peer accepted."""


class SupportWithdrawn(Event):
    """The worker declined outreach or withdrew their request; the search for a peer stops."""

    event_type: ClassVar[str] = "huddle.support_withdrawn.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "withdrawn_at"

    case_id: UUID
    reason: Withdrawal
    withdrawn_at: AwareDatetime


class MatchEscalated(Event):
    """No peer could be found in time: the hospital's coordinators are alerted."""

    event_type: ClassVar[str] = "huddle.match_escalated.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "escalated_at"

    case_id: UUID
    reason: EscalationReason
    urgency: Urgency
    offers_made: Annotated[int, Field(ge=0)]
    respond_by: AwareDatetime
    """The first-contact deadline that is at risk."""
    widened_to_network: bool
    """Whether the search now includes peers from the rest of the network (remote support)."""
    escalated_at: AwareDatetime


class CaseClosed(Event):
    """A support case ended: the peer's load is released and contact details purged later."""

    event_type: ClassVar[str] = "huddle.case_closed.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "closed_at"

    case_id: UUID
    peer: Pseudonym
    sessions: Annotated[int, Field(ge=0)]
    referral_made: bool
    opened_at: AwareDatetime
    closed_at: AwareDatetime


class SessionCompleted(Event):
    """A one-to-one or group session took place; when, how long and how, never what was said."""

    event_type: ClassVar[str] = "huddle.session_completed.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "completed_at"

    case_id: UUID
    session_id: UUID
    peer: Pseudonym
    """The peer who led the session."""
    mode: Mode
    tier: Tier
    started_at: AwareDatetime
    duration_minutes: Annotated[int, Field(ge=1, le=600)]
    participants: Annotated[int, Field(ge=1)]
    """How many people took part besides the peer (1 for one-to-one, the group size otherwise)."""
    follow_up_planned: bool
    referral_made: bool
    completed_at: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> SessionCompleted:
        if self.completed_at < self.started_at:
            raise ValueError("completed_at must not be before started_at")
        return self


class ReferralMade(Event):
    """Tier 3: someone was referred on to professional help."""

    event_type: ClassVar[str] = "huddle.referral_made.v1"
    subject_field: ClassVar[str] = "case_id"
    time_field: ClassVar[str] = "made_at"

    case_id: UUID
    referral_id: UUID
    tier: Literal[Tier.PROFESSIONAL] = Tier.PROFESSIONAL
    urgency: Urgency
    resource: ReferralResource
    referred_by: Pseudonym | None = None
    """The peer who referred; null when intake escalated a crisis itself."""
    made_at: AwareDatetime


class PeerCertified(Event):
    """A peer completed training and may be matched until the certification lapses."""

    event_type: ClassVar[str] = "huddle.peer_certified.v1"
    subject_field: ClassVar[str] = "peer"
    time_field: ClassVar[str] = "certified_at"

    peer: Pseudonym
    unit_id: UnitId
    discipline: Discipline
    languages: tuple[LanguageTag, ...]
    """Languages the peer can offer support in."""
    clinical_area: ClinicalArea | None = None
    """The peer's clinical background (like is matched with like)."""
    gender: Gender | None = None
    """Given by the peer, opt-in, only to meet requesters' opt-in preferences."""
    certified_at: AwareDatetime
    valid_until: AwareDatetime
    """When a refresher is due (the interval is configurable; yearly is common)."""

    @model_validator(mode="after")
    def _valid_after_certified(self) -> PeerCertified:
        if self.valid_until <= self.certified_at:
            raise ValueError("valid_until must be after certified_at")
        return self


class CertificationLapsed(Event):
    """A peer's certification lapsed or was withdrawn: no new cases until recertified."""

    event_type: ClassVar[str] = "huddle.certification_lapsed.v1"
    subject_field: ClassVar[str] = "peer"
    time_field: ClassVar[str] = "lapsed_at"

    peer: Pseudonym
    lapsed_at: AwareDatetime


class AnonymisedProgrammeEvent(Event):
    """One programme event on the analysts' stream: random surrogates, the month only, and
    people's groups coarsened until each holds at least k cases (or the record waits)."""

    event_type: ClassVar[str] = "huddle.analytics.programme_event.v1"
    subject_field: ClassVar[str] = "record_id"
    time_field: ClassVar[str] = "period_start"

    hospital_id: HospitalId | None = None  # type: ignore[assignment]
    """The hospital, or null when coarsened to the network."""
    record_id: UUID
    """Random, new for every record: it appears on no other topic."""
    kind: ProgrammeRecordKind
    period: Month
    """The calendar month (UTC) of the occurrence, e.g. ``2026-08``; never an exact time."""
    period_start: AwareDatetime
    """Midnight UTC on the first day of ``period``."""
    case: UUID | None = None
    """A random surrogate of the support case, the same on every record of that case."""
    peer: UUID | None = None
    """A random surrogate of the peer (never the pseudonym), the same on every record."""
    discipline: Discipline | None = None
    """Null when coarsened away (or unknown)."""
    clinical_area: ClinicalArea | None = None
    origin: Origin | None = None
    urgency: Urgency | None = None
    tier: Tier | None = None
    mode: Mode | None = None
    waited: DurationBand | None = None
    """How long since the request, in bands: to the offer, the match, the first contact."""
    deadline_met: bool | None = None
    """For a first contact: whether it came before the first-contact deadline."""
    referral: ReferralResource | None = None
    harm_level: HarmLevel | None = None
    involved: Annotated[int, Field(ge=0)] | None = None
    """For an adverse event: how many staff were involved."""
    coarsened: tuple[Literal["hospital", "discipline", "clinical_area"], ...] = ()
    """Which groupings were coarsened away so that no group is smaller than k."""
