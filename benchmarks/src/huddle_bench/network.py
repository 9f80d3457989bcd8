"""A simulated health network: hospitals of uneven size, their units, staff and peer roster, the
on-call rota, and the support requests its staff make. Seeded: the same seed, the same network.

Proportions follow the programmes Huddle serves (RISE, forYOU): roughly one trained peer for every
25 to 40 staff, half of the workforce nurses, about a third of peers on call at any hour, and most
requests routine (a quarter urgent). Crisis requests are left out: they are referred to
professional help at once and measure a different path.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from huddle_contracts.vocabulary import Discipline, Urgency

UNITS = (
    "icu",
    "emergency",
    "surgery",
    "medicine",
    "paediatrics",
    "oncology",
    "maternity",
    "theatres",
)
DISCIPLINE_MIX: tuple[tuple[Discipline, float], ...] = (
    (Discipline.NURSE, 0.50),
    (Discipline.PHYSICIAN, 0.20),
    (Discipline.ALLIED_HEALTH, 0.12),
    (Discipline.ADVANCED_PRACTICE, 0.05),
    (Discipline.PHARMACIST, 0.04),
    (Discipline.MIDWIFE, 0.04),
    (Discipline.PARAMEDIC, 0.03),
    (Discipline.SUPPORT_STAFF, 0.02),
)
LANGUAGES = ("es", "fr", "de", "pl", "ar", "zh")
URGENT_SHARE = 0.25


@dataclass(frozen=True)
class NetworkShape:
    hospitals: int
    staff_per_hospital: int
    """The mean; hospitals differ (a teaching hospital is several times a community one)."""
    staff_per_peer: int = 30
    on_call_share: float = 0.35


@dataclass(frozen=True)
class StaffMember:
    staff_ref: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    manager_ref: str | None


@dataclass(frozen=True)
class PeerSupporter:
    staff_ref: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    languages: tuple[str, ...]
    on_call: bool


@dataclass(frozen=True)
class Hospital:
    hospital_id: str
    staff: tuple[StaffMember, ...]
    peers: tuple[PeerSupporter, ...]


@dataclass(frozen=True)
class Network:
    network_id: str
    hospitals: tuple[Hospital, ...]

    @property
    def peers(self) -> list[PeerSupporter]:
        return [p for h in self.hospitals for p in h.peers]

    @property
    def staff(self) -> list[StaffMember]:
        return [s for h in self.hospitals for s in h.staff]


@dataclass(frozen=True)
class PlannedRequest:
    """One self-referral: who asks, from where, how urgently."""

    hospital_id: str
    staff_ref: str
    unit_id: str
    discipline: Discipline
    urgency: Urgency

    def body(self) -> dict[str, str]:
        return {
            "hospital_id": self.hospital_id,
            "unit_id": self.unit_id,
            "discipline": self.discipline.value,
            "urgency": self.urgency.value,
        }


def hospital_sizes(rng: random.Random, count: int, mean: int) -> list[int]:
    """Uneven sizes with the given mean: log-normal, so a few large hospitals and many small."""
    raw = [rng.lognormvariate(0, 0.5) for _ in range(count)]
    scale = mean * count / sum(raw)
    return [max(20, round(r * scale)) for r in raw]


def _discipline(rng: random.Random) -> Discipline:
    [chosen] = rng.choices([d for d, _ in DISCIPLINE_MIX], [w for _, w in DISCIPLINE_MIX])
    return chosen


def simulate_network(network_id: str, shape: NetworkShape, seed: int) -> Network:
    rng = random.Random(seed)
    hospitals = []
    for h, size in enumerate(hospital_sizes(rng, shape.hospitals, shape.staff_per_hospital)):
        hospital_id = f"hospital-{h + 1:02d}"
        units = UNITS[: max(3, min(len(UNITS), size // 40))]
        managers = {u: f"H{h + 1:02d}-{u[:3].upper()}-M" for u in units}
        staff = [
            StaffMember(manager, hospital_id, unit, Discipline.NURSE, None)
            for unit, manager in managers.items()
        ]
        for i in range(size - len(units)):
            unit = rng.choice(units)
            staff.append(
                StaffMember(
                    f"H{h + 1:02d}-{i + 1:05d}", hospital_id, unit, _discipline(rng), managers[unit]
                )
            )
        # Peers are staff who trained for it, from every unit; never a unit's manager.
        trained = rng.sample(staff[len(units) :], max(2, size // shape.staff_per_peer))
        peers = tuple(
            PeerSupporter(
                staff_ref=s.staff_ref,
                hospital_id=hospital_id,
                unit_id=s.unit_id,
                discipline=s.discipline,
                languages=("en", rng.choice(LANGUAGES)) if rng.random() < 0.3 else ("en",),
                on_call=rng.random() < shape.on_call_share,
            )
            for s in trained
        )
        hospitals.append(Hospital(hospital_id, tuple(staff), peers))
    return Network(network_id, tuple(hospitals))


def directory_csv(network: Network, requests: Sequence[PlannedRequest]) -> str:
    """The workforce directory as intake's CSV import reads it (no contact details), for the
    people a run involves: those who ask, every peer, and their managers."""
    wanted = {r.staff_ref for r in requests} | {p.staff_ref for p in network.peers}
    chosen = [s for s in network.staff if s.staff_ref in wanted]
    wanted |= {s.manager_ref for s in chosen if s.manager_ref}
    header = "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name"
    rows = [
        f"{s.staff_ref},{s.hospital_id},{s.unit_id},{s.discipline.value},{s.manager_ref or ''},,,"
        for s in network.staff
        if s.staff_ref in wanted
    ]
    return "\n".join([header, *rows]) + "\n"


def plan_requests(network: Network, count: int, seed: int) -> list[PlannedRequest]:
    """``count`` self-referrals, each from a different member of staff who is not a peer,
    hospitals weighted by their size; a quarter urgent."""
    rng = random.Random(seed)
    peers = {p.staff_ref for p in network.peers}
    askers: Sequence[StaffMember] = [s for s in network.staff if s.staff_ref not in peers]
    if count > len(askers):
        raise ValueError(f"{count} requests but only {len(askers)} staff who are not peers")
    return [
        PlannedRequest(
            hospital_id=s.hospital_id,
            staff_ref=s.staff_ref,
            unit_id=s.unit_id,
            discipline=s.discipline,
            urgency=Urgency.URGENT if rng.random() < URGENT_SHARE else Urgency.ROUTINE,
        )
        for s in rng.sample(list(askers), count)
    ]
