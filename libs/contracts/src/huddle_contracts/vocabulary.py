"""The shared vocabulary of Huddle's events: constrained identifiers and the domain's enumerations.

Declared once here so that every service, schema and test agrees on the same words.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated

from pydantic import StringConstraints

# Slugs, not free text: an identifier of a place can never smuggle in a person's name or a sentence.
_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"

NetworkId = Annotated[str, StringConstraints(pattern=_SLUG)]
"""A health network (the tenant), e.g. ``north-coast``."""

HospitalId = Annotated[str, StringConstraints(pattern=_SLUG)]
"""A hospital or campus within a network, e.g. ``st-marys``."""

UnitId = Annotated[str, StringConstraints(pattern=_SLUG)]

ClinicalArea = Annotated[str, StringConstraints(pattern=_SLUG)]
"""A clinical background such as emergency, icu, oncology, surgery (a slug, no free text)."""
"""A unit or department within a hospital, e.g. ``icu-2``."""

PSEUDONYM_PATTERN = r"^p_[0-9a-f]{32}$"

Pseudonym = Annotated[str, StringConstraints(pattern=PSEUDONYM_PATTERN)]
"""A person, as the per-network HMAC pseudonym (see ``huddle_contracts.pseudonyms``).

Its shape cannot hold a name, an e-mail address or a staff number.
"""

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"

Month = Annotated[str, StringConstraints(pattern=MONTH_PATTERN)]
"""A calendar month, ``YYYY-MM``: the finest time the analysts' stream shows."""

LANGUAGE_TAG_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"

LanguageTag = Annotated[str, StringConstraints(pattern=LANGUAGE_TAG_PATTERN)]
"""A BCP 47 language tag in its common form, e.g. ``en``, ``fr-CA``, ``zh-Hant``."""


class Urgency(StrEnum):
    """How fast a first contact is due: routine 24 working hours, urgent 30 minutes, crisis now."""

    ROUTINE = "routine"
    URGENT = "urgent"
    CRISIS = "crisis"


class Origin(StrEnum):
    """Who started the request: the worker, a colleague, a manager, or proactive outreach."""

    SELF = "self"
    COLLEAGUE = "colleague"
    MANAGER = "manager"
    OUTREACH = "outreach"


class Tier(IntEnum):
    """Scott's three tiers: 1 local check-in, 2 trained peer, 3 professional help."""

    LOCAL = 1
    PEER = 2
    PROFESSIONAL = 3


class Mode(StrEnum):
    """How a session happens."""

    IN_PERSON = "in_person"
    PHONE = "phone"
    VIDEO = "video"
    GROUP = "group"


class Discipline(StrEnum):
    """A worker's professional discipline; peers are matched like with like."""

    NURSE = "nurse"
    PHYSICIAN = "physician"
    ADVANCED_PRACTICE = "advanced_practice"
    ALLIED_HEALTH = "allied_health"
    PHARMACIST = "pharmacist"
    PARAMEDIC = "paramedic"
    MIDWIFE = "midwife"
    STUDENT = "student"
    SUPPORT_STAFF = "support_staff"
    ADMINISTRATOR = "administrator"
    OTHER = "other"


class EventClass(StrEnum):
    """AHRQ Common Formats event class."""

    INCIDENT = "incident"
    NEAR_MISS = "near_miss"
    UNSAFE_CONDITION = "unsafe_condition"


class HarmLevel(StrEnum):
    """AHRQ Common Formats harm scale, coarsened."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    DEATH = "death"


class HarmCategory(StrEnum):
    """What kind of event it was; most of these qualify for proactive outreach."""

    UNEXPECTED_DEATH = "unexpected_death"
    SERIOUS_INJURY = "serious_injury"
    SERIOUS_SAFETY_EVENT = "serious_safety_event"
    ROOT_CAUSE_ANALYSIS = "root_cause_analysis"
    PAEDIATRIC_DEATH = "paediatric_death"
    VIOLENCE_AGAINST_STAFF = "violence_against_staff"
    LAWSUIT = "lawsuit"
    UNPLANNED_TRANSFER = "unplanned_transfer"
    NEAR_MISS = "near_miss"
    TROUBLING_CASE = "troubling_case"
    MEDICATION_ERROR = "medication_error"
    FALL = "fall"
    OTHER = "other"


class ReferralResource(StrEnum):
    """Tier 3: where professional help comes from."""

    EAP = "eap"
    PSYCHOLOGIST = "psychologist"
    CHAPLAIN = "chaplain"
    COUNSELLOR = "counsellor"
    GRIEF_COUNSELLING = "grief_counselling"
    BEHAVIOURAL_HEALTH = "behavioural_health"
    OCCUPATIONAL_HEALTH = "occupational_health"
    CRISIS_LINE = "crisis_line"


class Gender(StrEnum):
    """A requester's opt-in preference for the gender of their peer."""

    WOMAN = "woman"
    MAN = "man"
    NON_BINARY = "non_binary"


class Withdrawal(StrEnum):
    """Why a support request ended before a peer met the worker (no consequence either way)."""

    DECLINED_OFFER = "declined_offer"
    """The worker declined proactive outreach."""
    WITHDRAWN = "withdrawn"
    """The worker withdrew their request."""


class EscalationReason(StrEnum):
    """Why matching alerted the hospital's coordinators."""

    NO_ELIGIBLE_PEER = "no_eligible_peer"
    OFFERS_EXHAUSTED = "offers_exhausted"
    """Every eligible peer declined or let the offer lapse."""
    DEADLINE_AT_RISK = "deadline_at_risk"
    """The first-contact deadline can no longer be met in the hospital."""


class ProgrammeRecordKind(StrEnum):
    """What an anonymised programme record stands for (one per programme event)."""

    ADVERSE_EVENT_REPORTED = "adverse_event_reported"
    SUPPORT_REQUESTED = "support_requested"
    OFFER_MADE = "offer_made"
    PEER_MATCHED = "peer_matched"
    MATCH_ESCALATED = "match_escalated"
    SUPPORT_WITHDRAWN = "support_withdrawn"
    FIRST_CONTACT = "first_contact"
    SESSION_COMPLETED = "session_completed"
    REFERRAL_MADE = "referral_made"
    CASE_CLOSED = "case_closed"
    PEER_CERTIFIED = "peer_certified"
    CERTIFICATION_LAPSED = "certification_lapsed"


class DurationBand(StrEnum):
    """A waiting time coarsened for the analysts' stream (never the exact minutes)."""

    UNDER_30_MINUTES = "under_30_minutes"
    UNDER_2_HOURS = "under_2_hours"
    UNDER_24_HOURS = "under_24_hours"
    UNDER_72_HOURS = "under_72_hours"
    LONGER = "longer"
