"""A support request as the worker (or a colleague or manager) makes it, and its rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from huddle_contracts.events import MatchPreferences, SupportRequested
from huddle_contracts.vocabulary import Discipline, Mode, Origin, Urgency


class RequestRefused(ValueError):
    """The request breaks a programme rule; the message says which."""


PHONE_PATTERN = r"^\+?[0-9 ()-]{6,20}$"
"""A phone number as people write it: digits, spaces, brackets, hyphens, a leading plus."""


@dataclass(frozen=True)
class ContactDetails:
    """How the assigned peer may reach the worker; never leaves intake unsealed."""

    phone: str | None = None
    email: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"phone": self.phone, "email": self.email}

    @property
    def empty(self) -> bool:
        return not (self.phone or self.email)


@dataclass(frozen=True)
class SupportRequest:
    case_id: UUID
    network_id: str
    hospital_id: str
    unit_id: str
    requester: str
    submitted_by: str
    discipline: Discipline
    origin: Origin
    urgency: Urgency
    requested_at: datetime
    preferred_mode: Mode | None = None
    preferences: MatchPreferences = field(default_factory=MatchPreferences)
    status: str = "requested"

    def to_event(self, **context: Any) -> SupportRequested:
        """The event; ``context`` adds what the request's origin knows (e.g. an adverse event's
        involved staff), validated with the rest."""
        return SupportRequested(
            case_id=self.case_id,
            network_id=self.network_id,
            hospital_id=self.hospital_id,
            unit_id=self.unit_id,
            requester=self.requester,
            discipline=self.discipline,
            origin=self.origin,
            urgency=self.urgency,
            preferred_mode=self.preferred_mode,
            preferences=self.preferences,
            requested_at=self.requested_at,
            **context,
        )


def requester_of(*, origin: Origin, submitter: str, referred: str | None) -> str:
    """Who needs support: the submitter for a self-referral, the referred person otherwise."""
    if origin is Origin.OUTREACH:
        raise RequestRefused(
            "origin 'outreach' is set by Huddle after a qualifying adverse event; "
            "use self, colleague or manager"
        )
    if origin is Origin.SELF:
        if referred is not None and referred != submitter:
            raise RequestRefused("a self-referral cannot name another person (person_ref)")
        return submitter
    if referred is None:
        raise RequestRefused(f"a {origin.value} referral must name the person (person_ref)")
    if referred == submitter:
        raise RequestRefused(f"a {origin.value} referral names someone other than yourself")
    return referred
