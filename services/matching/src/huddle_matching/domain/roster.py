"""Peers as matching knows them: a projection of training's events plus rota and load."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from huddle_contracts.vocabulary import Discipline, Gender


@dataclass(frozen=True)
class Peer:
    pseudonym: str
    network_id: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    certified_until: datetime
    languages: frozenset[str] = frozenset()
    clinical_area: str | None = None
    gender: Gender | None = None
    active_cases: int = 0
    pending_offers: int = 0
    """Offers the peer has not answered yet: each may become a case, so each counts as load."""
    capacity: int = 3
    on_call: bool = False
    paused: bool = False
    """A peer may pause or withdraw at any time; a paused peer gets no offers."""
    last_matched_at: datetime | None = None

    @property
    def free_slots(self) -> int:
        return max(0, self.capacity - self.active_cases - self.pending_offers)
