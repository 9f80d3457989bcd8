"""Soft preferences of matching, scored and explained: like with like, same hospital, the
requester's opt-in wishes, lower load and fair rotation (DOMAIN.md, "Matching a peer")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed


@dataclass(frozen=True)
class PreferenceWeights:
    """Points per preference met; configurable per network."""

    same_discipline: float = 40
    same_clinical_area: float = 15
    same_hospital: float = 20
    language: float = 10
    gender: float = 10
    own_unit_when_asked: float = 10
    per_active_case: float = -5
    rotation_per_day_since_last_match: float = 0.5
    rotation_cap: float = 10


@dataclass(frozen=True)
class Score:
    total: float
    reasons: tuple[str, ...]


def score(
    peer: Peer, need: SupportNeed, now: datetime, weights: PreferenceWeights | None = None
) -> Score:
    w = weights or PreferenceWeights()
    points: list[tuple[float, str]] = []
    if peer.discipline is need.discipline:
        points.append((w.same_discipline, f"same discipline ({peer.discipline.value})"))
    if need.clinical_area and peer.clinical_area == need.clinical_area:
        points.append((w.same_clinical_area, f"same clinical area ({peer.clinical_area})"))
    if peer.hospital_id == need.hospital_id:
        points.append((w.same_hospital, "same hospital"))
    wishes = need.preferences
    if wishes.language and wishes.language in peer.languages:
        points.append((w.language, f"speaks {wishes.language}"))
    if wishes.gender and peer.gender is wishes.gender:
        points.append((w.gender, "gender as requested"))
    if wishes.own_unit and peer.unit_id == need.unit_id and peer.hospital_id == need.hospital_id:
        points.append((w.own_unit_when_asked, "own unit, as requested"))
    if peer.active_cases:
        points.append((w.per_active_case * peer.active_cases, f"{peer.active_cases} active cases"))
    rotation = rotation_points(peer, now, w)
    if rotation:
        points.append((rotation, "fair rotation (longest since last match)"))
    return Score(sum(p for p, _ in points), tuple(reason for _, reason in points))


def rotation_points(peer: Peer, now: datetime, w: PreferenceWeights) -> float:
    """Fair rotation: points for the days since the peer's last match, up to a cap."""
    if peer.last_matched_at is None:
        return w.rotation_cap
    days = max(0.0, (now - peer.last_matched_at).total_seconds() / 86_400)
    return min(w.rotation_cap, days * w.rotation_per_day_since_last_match)
