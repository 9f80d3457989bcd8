"""Synthetic, seeded rosters and requests shaped like a health network's (no real people)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Gender, Urgency
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed

NETWORK = "bench-network"
NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
UNITS_PER_HOSPITAL = 30
CLINICAL_AREAS = (
    "emergency",
    "icu",
    "surgery",
    "oncology",
    "paediatrics",
    "maternity",
    "mental-health",
)
LANGUAGES = ("es", "fr", "pl", "tl", "hi", "ar", "pt")

# Rough shape of a hospital workforce: nurses first, then physicians and allied health.
DISCIPLINES: dict[Discipline, float] = {
    Discipline.NURSE: 45,
    Discipline.PHYSICIAN: 18,
    Discipline.ALLIED_HEALTH: 10,
    Discipline.ADVANCED_PRACTICE: 5,
    Discipline.PHARMACIST: 4,
    Discipline.PARAMEDIC: 4,
    Discipline.MIDWIFE: 4,
    Discipline.STUDENT: 4,
    Discipline.SUPPORT_STAFF: 4,
    Discipline.ADMINISTRATOR: 2,
}


def hospital_id(index: int) -> str:
    return f"hospital-{index:03d}"


def unit_id(rng: random.Random) -> str:
    return f"unit-{rng.randrange(UNITS_PER_HOSPITAL):02d}"


def pseudonym(rng: random.Random) -> str:
    return f"p_{rng.getrandbits(128):032x}"


def discipline(rng: random.Random) -> Discipline:
    return rng.choices(list(DISCIPLINES), weights=list(DISCIPLINES.values()))[0]


def synthetic_peer(
    rng: random.Random, hospital: str, *, on_call_share: float = 0.25, now: datetime = NOW
) -> Peer:
    capacity = rng.choices((2, 3, 4), weights=(10, 80, 10))[0]
    active = min(capacity, rng.choices((0, 1, 2, 3), weights=(50, 30, 15, 5))[0])
    languages = {"en"} | ({rng.choice(LANGUAGES)} if rng.random() < 0.15 else set())
    return Peer(
        pseudonym=pseudonym(rng),
        network_id=NETWORK,
        hospital_id=hospital,
        unit_id=unit_id(rng),
        discipline=discipline(rng),
        # About 8% have lapsed: certification runs two years and not everyone renews on time.
        certified_until=now + timedelta(days=rng.uniform(-60, 700)),
        languages=frozenset(languages),
        clinical_area=rng.choice((*CLINICAL_AREAS, None)),
        gender=rng.choice((*Gender, None)),
        active_cases=active,
        pending_offers=1 if rng.random() < 0.05 and active < capacity else 0,
        capacity=capacity,
        on_call=rng.random() < on_call_share,
        paused=rng.random() < 0.04,
        last_matched_at=None if rng.random() < 0.3 else now - timedelta(days=rng.uniform(0, 120)),
    )


def synthetic_roster(size: int, *, hospitals: int = 100, seed: int = 6) -> list[Peer]:
    """``size`` peers of one network spread unevenly over ``hospitals`` (big and small sites)."""
    rng = random.Random(f"roster:{seed}:{size}:{hospitals}")
    weights = [rng.uniform(0.3, 3.0) for _ in range(hospitals)]
    sites = rng.choices(range(hospitals), weights=weights, k=size)
    return [synthetic_peer(rng, hospital_id(site)) for site in sites]


def synthetic_need(
    rng: random.Random,
    *,
    hospitals: int,
    urgency: Urgency | None = None,
    hospital: str | None = None,
    requester: str | None = None,
    involved: frozenset[str] | None = None,
    now: datetime = NOW,
) -> SupportNeed:
    me = requester or pseudonym(rng)
    wishes = MatchPreferences(
        own_unit=True if rng.random() < 0.05 else None,
        language=rng.choice(LANGUAGES) if rng.random() < 0.1 else None,
        gender=rng.choice(list(Gender)) if rng.random() < 0.1 else None,
    )
    return SupportNeed(
        case_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        network_id=NETWORK,
        hospital_id=hospital or hospital_id(rng.randrange(hospitals)),
        unit_id=unit_id(rng),
        requester=me,
        discipline=discipline(rng),
        urgency=urgency
        or rng.choices((Urgency.ROUTINE, Urgency.URGENT, Urgency.CRISIS), (70, 25, 5))[0],
        requested_at=now,
        preferences=wishes,
        clinical_area=rng.choice((*CLINICAL_AREAS, None)),
        involved=involved
        if involved is not None
        else frozenset({me, *(pseudonym(rng) for _ in range(rng.randrange(4)))}),
        reporting_line=frozenset(pseudonym(rng) for _ in range(2)),
    )
