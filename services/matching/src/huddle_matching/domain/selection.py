"""Choosing the peer: hard rules first, then preferences; explainable to a coordinator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from huddle_matching.domain.eligibility import exclusions
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
    candidates.sort(
        key=lambda c: (
            -c.score.total,
            c.peer.last_matched_at.timestamp() if c.peer.last_matched_at else float("-inf"),
            c.peer.pseudonym,
        )
    )
    return Ranking(tuple(candidates), tuple(excluded))
