"""A support request as matching sees it: who needs a peer, and what must hold for the match."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Mode, Urgency


@dataclass(frozen=True)
class SupportNeed:
    case_id: UUID
    network_id: str
    hospital_id: str
    unit_id: str
    requester: str
    discipline: Discipline
    urgency: Urgency
    requested_at: datetime
    preferences: MatchPreferences = field(default_factory=MatchPreferences)
    preferred_mode: Mode | None = None
    clinical_area: str | None = None
    adverse_event_id: UUID | None = None
    involved: frozenset[str] = frozenset()
    """Pseudonyms of everyone involved in the same adverse event."""
    reporting_line: frozenset[str] = frozenset()
    """Pseudonyms of the requester's managers, up the line."""
