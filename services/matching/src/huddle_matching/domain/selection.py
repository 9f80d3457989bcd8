"""Choosing the peer: hard rules first, then preferences; explainable to a coordinator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from huddle_matching.domain.eligibility import eligible, exclusions
from huddle_matching.domain.preferences import PreferenceWeights, Score, score
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed


class Scope(StrEnum):
    HOSPITAL = "hospital"
    """Same hospital or campus where possible."""
    NETWORK = "network"
    """Widened when the hospital has no eligible peer: remote support (phone or video)."""


@dataclass(frozen=True)
class Candidate:
    peer: Peer
    score: Score


@dataclass(frozen=True)
class Exclusion:
    peer: Peer
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Ranking:
    candidates: tuple[Candidate, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def rank(
    need: SupportNeed,
    peers: Iterable[Peer],
    now: datetime,
    *,
    scope: Scope = Scope.HOSPITAL,
    weights: PreferenceWeights | None = None,
    skip: frozenset[str] = frozenset(),
) -> Ranking:
    """Eligible peers best first (ties: longest since last match, then pseudonym), and why the
    others were not eligible. ``skip`` holds peers already offered this case."""
    candidates: list[Candidate] = []
    excluded: list[Exclusion] = []
    for peer in peers:
        reasons = exclusions(peer, need, now)
        if peer.pseudonym in skip:
            reasons.append("already offered this case")
        if scope is Scope.HOSPITAL and peer.hospital_id != need.hospital_id:
            reasons.append("works in another hospital (the search widens only if needed)")
        if reasons:
            excluded.append(Exclusion(peer, tuple(reasons)))
        else:
            candidates.append(Candidate(peer, score(peer, need, now, weights)))
    candidates.sort(key=_order)
    return Ranking(tuple(candidates), tuple(excluded))


def best(
    need: SupportNeed,
    peers: Iterable[Peer],
    now: datetime,
    *,
    scope: Scope = Scope.HOSPITAL,
    weights: PreferenceWeights | None = None,
    skip: frozenset[str] = frozenset(),
) -> Candidate | None:
    """``rank(...).best`` without explaining the others: all a new offer needs, and it allocates
    nothing for the peers it passes over."""
    top: Candidate | None = None
    top_order: tuple[float, float, str] | None = None
    for peer in peers:
        if peer.pseudonym in skip:
            continue
        if scope is Scope.HOSPITAL and peer.hospital_id != need.hospital_id:
            continue
        if not eligible(peer, need, now):
            continue
        candidate = Candidate(peer, score(peer, need, now, weights))
        order = _order(candidate)
        if top_order is None or order < top_order:
            top, top_order = candidate, order
    return top


def better(one: Candidate | None, other: Candidate | None) -> Candidate | None:
    """The one ``rank`` would put first."""
    if one is None or other is None:
        return one or other
    return one if _order(one) <= _order(other) else other


@dataclass(frozen=True)
class Tier:
    """The peers who share whether they match the request's discipline and clinical area
    (``None``: the request names no area). No one in the tier can score above ``bound``."""

    same_discipline: bool
    same_clinical_area: bool | None
    bound: float


def tiers(need: SupportNeed, weights: PreferenceWeights | None = None) -> tuple[Tier, ...]:
    """The roster split so that a search can stop early: highest bound first, and once a
    candidate scores above the next tier's bound, nobody further on can beat it."""
    w = weights or PreferenceWeights()
    wishes = need.preferences
    asked = (
        max(0.0, w.language if wishes.language else 0)
        + max(0.0, w.gender if wishes.gender else 0)
        + max(0.0, w.own_unit_when_asked if wishes.own_unit else 0)
    )
    # Load only lowers a score when each active case costs points; otherwise nothing bounds it.
    load = 0.0 if w.per_active_case <= 0 else float("inf")
    rest = max(0.0, w.same_hospital) + asked + max(0.0, w.rotation_cap) + load
    areas: tuple[bool | None, ...] = (True, False) if need.clinical_area else (None,)
    split = [
        Tier(d, a, rest + (w.same_discipline if d else 0) + (w.same_clinical_area if a else 0))
        for d in (True, False)
        for a in areas
    ]
    return tuple(sorted(split, key=lambda t: -t.bound))


def in_tier(peer: Peer, need: SupportNeed, tier: Tier) -> bool:
    """Whether the peer belongs to the tier (what the repository's query selects)."""
    if (peer.discipline is need.discipline) != tier.same_discipline:
        return False
    if tier.same_clinical_area is None:
        return True
    return (peer.clinical_area == need.clinical_area) == tier.same_clinical_area


def standing(peer: Peer, need: SupportNeed) -> tuple[bool, bool, bool, bool, bool, bool, int]:
    """All that a peer's score depends on but fair rotation (what ``preferences.score`` reads);
    the repository's query groups peers by the same."""
    wishes = need.preferences
    return (
        peer.discipline is need.discipline,
        bool(need.clinical_area) and peer.clinical_area == need.clinical_area,
        peer.hospital_id == need.hospital_id,
        bool(wishes.language) and wishes.language in peer.languages,
        bool(wishes.gender) and peer.gender is wishes.gender,
        bool(wishes.own_unit)
        and peer.unit_id == need.unit_id
        and peer.hospital_id == need.hospital_id,
        peer.active_cases,
    )


def longest_wait_first(weights: PreferenceWeights | None = None) -> bool:
    """Whether, among peers of one ``standing``, the one matched longest ago (then the lowest
    pseudonym) ranks first: so only that one of each standing can be a tier's best. True unless
    rotation is weighted against waiting."""
    return (weights or PreferenceWeights()).rotation_per_day_since_last_match >= 0


def leaders(need: SupportNeed, peers: Iterable[Peer]) -> list[Peer]:
    """The first of each ``standing`` by last match (never matched first), then pseudonym: when
    ``longest_wait_first``, the best of ``peers`` is one of them. ``repository.candidates``
    returns these of a tier's eligible peers (and perhaps a few more)."""
    first: dict[tuple[bool, bool, bool, bool, bool, bool, int], Peer] = {}
    for peer in peers:
        key = standing(peer, need)
        if key not in first or _waited(peer) < _waited(first[key]):
            first[key] = peer
    return list(first.values())


def _waited(peer: Peer) -> tuple[float, str]:
    last = peer.last_matched_at
    return (last.timestamp() if last else float("-inf"), peer.pseudonym)


def _order(candidate: Candidate) -> tuple[float, float, str]:
    """Best first: highest score, then longest since last match, then pseudonym."""
    return (-candidate.score.total, *_waited(candidate.peer))
