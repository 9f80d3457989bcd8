"""A surge: many involved staff matched at once, as one optimal assignment under the same hard
rules and every peer's remaining capacity (a rectangular assignment problem)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import numpy as np
from scipy.optimize import linear_sum_assignment

from huddle_matching.domain.eligibility import exclusions
from huddle_matching.domain.preferences import PreferenceWeights, score
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed

_FORBIDDEN = 1e9


def assign_batch(
    needs: Sequence[SupportNeed],
    peers: Sequence[Peer],
    now: datetime,
    weights: PreferenceWeights | None = None,
) -> dict[UUID, Peer | None]:
    """Each need's peer (None when no eligible peer is left), maximising the total score."""
    slots = [peer for peer in peers for _ in range(peer.free_slots)]
    result: dict[UUID, Peer | None] = {need.case_id: None for need in needs}
    if not needs or not slots:
        return result
    cost = np.full((len(needs), len(slots)), _FORBIDDEN)
    for j, peer in enumerate(slots):
        # A peer's k-th slot costs a little more than its (k-1)-th: spread load before stacking it.
        k = sum(1 for earlier in slots[:j] if earlier is peer)
        for i, need in enumerate(needs):
            if not exclusions(peer, need, now):
                cost[i, j] = -score(peer, need, now, weights).total + 5 * k
    rows, cols = linear_sum_assignment(cost)
    for i, j in zip(rows, cols, strict=True):
        if cost[i, j] < _FORBIDDEN:
            result[needs[i].case_id] = slots[j]
    return result
