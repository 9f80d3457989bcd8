"""A surge: many involved staff matched at once, as one optimal assignment under the same hard
rules and every peer's remaining capacity (a rectangular assignment problem)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from datetime import datetime
from uuid import UUID

import numpy as np
from huddle_contracts.vocabulary import Urgency
from numpy.typing import NDArray

from huddle_matching.domain.preferences import PreferenceWeights, rotation_points
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed

_FORBIDDEN = 1e9
# A peer's k-th slot costs this much more than its (k-1)-th: spread load before stacking it.
_STACKING = 5.0


def assign_batch(
    needs: Sequence[SupportNeed],
    peers: Sequence[Peer],
    now: datetime,
    weights: PreferenceWeights | None = None,
) -> dict[UUID, Peer | None]:
    """Each need's peer (None when no eligible peer is left), maximising the total score."""
    result: dict[UUID, Peer | None] = {need.case_id: None for need in needs}
    free = np.array([peer.free_slots for peer in peers], dtype=np.int64)
    if not needs or not free.sum():
        return result
    allowed, points = pair_table(needs, peers, now, weights)
    # Only needs with someone eligible, and peers eligible for someone, enter the solver.
    rows_in = np.flatnonzero(allowed.any(axis=1))
    useful = np.flatnonzero(allowed.any(axis=0) & (free > 0))
    if not len(rows_in) or not len(useful):
        return result
    # One column per free slot: slot k of a peer (k = 0, 1, ...) is a column of that peer again.
    owner = np.repeat(useful, free[useful])
    k = np.arange(len(owner)) - np.repeat(np.cumsum(free[useful]) - free[useful], free[useful])
    sub = np.ix_(rows_in, owner)
    cost = np.where(allowed[sub], -points[sub] + _STACKING * k, _FORBIDDEN)
    # Imported here: SciPy's optimiser is tens of MB that only a surge needs.
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    for i, j in zip(rows, cols, strict=True):
        if cost[i, j] < _FORBIDDEN:
            result[needs[rows_in[i]].case_id] = peers[owner[j]]
    return result


def pair_table(
    needs: Sequence[SupportNeed],
    peers: Sequence[Peer],
    now: datetime,
    weights: PreferenceWeights | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """For every need x peer: whether the pair keeps every hard rule (``eligibility.HARD_RULES``)
    and the peer's score for the need (``preferences.score``), as whole arrays at once: the
    same rules as the per-pair functions, which the tests hold them to."""
    w = weights or PreferenceWeights()
    codes = _Codes()
    n_net, p_net = codes.of(n.network_id for n in needs), codes.of(p.network_id for p in peers)
    n_hosp, p_hosp = codes.of(n.hospital_id for n in needs), codes.of(p.hospital_id for p in peers)
    n_unit, p_unit = codes.of(n.unit_id for n in needs), codes.of(p.unit_id for p in peers)
    n_disc, p_disc = codes.of(n.discipline for n in needs), codes.of(p.discipline for p in peers)
    n_area = codes.of(n.clinical_area or None for n in needs)  # no area named: no points
    p_area = codes.of(p.clinical_area for p in peers)
    n_gender = codes.of(n.preferences.gender for n in needs)
    p_gender = codes.of(p.gender for p in peers)
    own_unit = np.array([n.preferences.own_unit is True for n in needs])
    routine = np.array([n.urgency is Urgency.ROUTINE for n in needs])
    active = np.array([p.active_cases for p in peers], dtype=np.float64)

    same_hospital = n_hosp[:, None] == p_hosp[None, :]
    same_unit = same_hospital & (n_unit[:, None] == p_unit[None, :])
    # Rules that look only at the peer: certification, capacity, paused; on call unless routine.
    ready = np.array([p.certified_until > now and p.free_slots > 0 and not p.paused for p in peers])
    on_call = np.array([p.on_call for p in peers])
    allowed = (
        (n_net[:, None] == p_net[None, :])
        & ready[None, :]
        & (routine[:, None] | on_call[None, :])
        & ~(same_unit & ~own_unit[:, None])
    )
    # Rules naming people: everyone involved (one set, shared by a surge's needs), then each
    # need's requester and reporting line.
    column = {peer.pseudonym: j for j, peer in enumerate(peers)}
    by_involved: dict[frozenset[str], list[int]] = defaultdict(list)
    for i, need in enumerate(needs):
        by_involved[need.involved].append(i)
        for name in (need.requester, *need.reporting_line):
            if name in column:
                allowed[i, column[name]] = False
    for involved, rows in by_involved.items():
        cols = [column[name] for name in involved if name in column]
        if cols:
            allowed[np.ix_(rows, cols)] = False

    points = np.zeros(allowed.shape)
    points += w.same_discipline * (n_disc[:, None] == p_disc[None, :])
    points += w.same_clinical_area * ((n_area[:, None] == p_area[None, :]) & (n_area >= 0)[:, None])
    points += w.same_hospital * same_hospital
    points += w.gender * ((n_gender[:, None] == p_gender[None, :]) & (n_gender >= 0)[:, None])
    points += w.own_unit_when_asked * (same_unit & own_unit[:, None])
    points += (w.per_active_case * active)[None, :]
    points += np.array([rotation_points(p, now, w) for p in peers])[None, :]
    by_language: dict[str, list[int]] = defaultdict(list)
    for i, need in enumerate(needs):
        if need.preferences.language:
            by_language[need.preferences.language].append(i)
    for language, rows in by_language.items():
        speaks = np.array([language in p.languages for p in peers])
        points[rows] += w.language * speaks
    return allowed, points


class _Codes:
    """Small integers for the values compared across needs and peers; None is always -1."""

    def __init__(self) -> None:
        self._codes: dict[Hashable, int] = {}

    def of(self, values: Iterable[Hashable | None]) -> NDArray[np.int64]:
        out = [
            -1 if value is None else self._codes.setdefault(value, len(self._codes))
            for value in values
        ]
        return np.array(out, dtype=np.int64)
