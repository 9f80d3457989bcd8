"""The fast paths keep the rules: `selection.best` picks what `rank` ranks first, and the surge's
whole-array `pair_table` agrees with `eligibility.exclusions` and `preferences.score` on every
pair (DOMAIN.md, "Matching a peer")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Gender, Urgency
from huddle_e2e.factories import NOW, make_need, make_peer
from huddle_matching.domain.eligibility import eligible, exclusions
from huddle_matching.domain.preferences import PreferenceWeights, score
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.selection import (
    Scope,
    best,
    better,
    in_tier,
    leaders,
    longest_wait_first,
    rank,
    standing,
    tiers,
)
from huddle_matching.domain.support_need import SupportNeed
from huddle_matching.domain.surge import pair_table
from hypothesis import given, settings
from hypothesis import strategies as st

NAMES = [f"p_{i}" for i in range(8)]
few = st.sampled_from


def maybe(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.none() | st.sampled_from(values)


@st.composite
def peers(draw: st.DrawFn) -> Peer:
    capacity = draw(st.integers(0, 3))
    return make_peer(
        draw(few(NAMES)).removeprefix("p_"),
        network_id=draw(few(["north", "south"])),
        hospital_id=draw(few(["st-mary", "st-luke"])),
        unit_id=draw(few(["icu", "surgery"])),
        discipline=draw(few([Discipline.NURSE, Discipline.PHYSICIAN])),
        certified_until=NOW + timedelta(days=draw(st.integers(-2, 2))),
        languages=frozenset(draw(st.sets(few(["en", "es", "pl"])))),
        clinical_area=draw(maybe(["icu", "emergency", ""])),
        gender=draw(maybe(list(Gender))),
        active_cases=draw(st.integers(0, capacity)),
        pending_offers=draw(st.integers(0, 1)),
        capacity=capacity,
        on_call=draw(st.booleans()),
        paused=draw(st.booleans()),
        last_matched_at=draw(st.none() | st.just(NOW - timedelta(days=draw(st.integers(0, 40))))),
    )


@st.composite
def needs(draw: st.DrawFn) -> SupportNeed:
    return make_need(
        hospital_id=draw(few(["st-mary", "st-luke"])),
        unit_id=draw(few(["icu", "surgery"])),
        requester=draw(few(NAMES)),
        discipline=draw(few([Discipline.NURSE, Discipline.PHYSICIAN])),
        urgency=draw(few(list(Urgency))),
        clinical_area=draw(maybe(["icu", "emergency", ""])),
        preferences=MatchPreferences(
            own_unit=draw(st.none() | st.booleans()),
            language=draw(maybe(["es", "pl"])),
            gender=draw(maybe(list(Gender))),
        ),
        involved=frozenset(draw(st.sets(few(NAMES), max_size=3))),
        reporting_line=frozenset(draw(st.sets(few(NAMES), max_size=2))),
    )


@settings(max_examples=300)
@given(
    need=needs(),
    roster=st.lists(peers(), max_size=12, unique_by=lambda p: p.pseudonym),
    scope=few(list(Scope)),
    skip=st.frozensets(few(NAMES), max_size=2),
)
def test_best_is_the_peer_the_ranking_puts_first(
    need: SupportNeed, roster: list[Peer], scope: Scope, skip: frozenset[str]
) -> None:
    ranked = rank(need, roster, NOW, scope=scope, skip=skip).best
    chosen = best(need, roster, NOW, scope=scope, skip=skip)
    assert chosen == ranked


@settings(max_examples=200)
@given(
    batch=st.lists(needs(), min_size=1, max_size=5),
    roster=st.lists(peers(), min_size=1, max_size=8, unique_by=lambda p: p.pseudonym),
)
def test_the_surge_table_keeps_every_hard_rule_and_scores_as_the_preferences_do(
    batch: list[SupportNeed], roster: list[Peer]
) -> None:
    weights = PreferenceWeights(language=7, gender=3, own_unit_when_asked=11)
    allowed, points = pair_table(batch, roster, NOW, weights)
    for i, need in enumerate(batch):
        for j, peer in enumerate(roster):
            assert allowed[i, j] == (not exclusions(peer, need, NOW)) == eligible(peer, need, NOW)
            assert points[i, j] == pytest.approx(score(peer, need, NOW, weights).total)


@settings(max_examples=300)
@given(
    need=needs(),
    roster=st.lists(peers(), max_size=12, unique_by=lambda p: p.pseudonym),
    scope=few(list(Scope)),
    rotation=st.floats(0, 20),
)
def test_a_search_by_tiers_that_stops_early_finds_the_peer_the_ranking_puts_first(
    need: SupportNeed, roster: list[Peer], scope: Scope, rotation: float
) -> None:
    weights = PreferenceWeights(rotation_cap=rotation, language=12, gender=4)
    split = tiers(need, weights)
    for peer in roster:  # every peer in exactly one tier, never scoring above its bound
        [home] = [t for t in split if in_tier(peer, need, t)]
        assert score(peer, need, NOW, weights).total <= home.bound + 1e-9
    top = None
    for tier in split:  # as application.search.offer_next walks them
        if top is not None and top.score.total > tier.bound:
            break
        members = [p for p in roster if in_tier(p, need, tier)]
        top = better(top, best(need, members, NOW, scope=scope, weights=weights))
    assert top == rank(need, roster, NOW, scope=scope, weights=weights).best


def offerable(peer: Peer, need: SupportNeed, scope: Scope) -> bool:
    """What repository.candidates lets through: every hard rule, and the hospital's own peers."""
    here = scope is Scope.NETWORK or peer.hospital_id == need.hospital_id
    return here and eligible(peer, need, NOW)


@settings(max_examples=400)
@given(
    need=needs(),
    roster=st.lists(peers(), max_size=12, unique_by=lambda p: p.pseudonym),
    scope=few(list(Scope)),
    rotation=st.floats(0, 20),
    per_day=st.sampled_from([0, 0.25, 0.5, 3]),
    per_case=st.sampled_from([-5, 0, 2]),
)
def test_a_search_reading_only_the_first_of_each_standing_finds_the_peer_the_ranking_puts_first(
    need: SupportNeed,
    roster: list[Peer],
    scope: Scope,
    rotation: float,
    per_day: float,
    per_case: float,
) -> None:
    weights = PreferenceWeights(
        rotation_cap=rotation,
        rotation_per_day_since_last_match=per_day,
        per_active_case=per_case,
        language=12,
        gender=4,
    )
    assert longest_wait_first(weights)
    top = None
    for tier in tiers(need, weights):  # as application.search.choose walks them
        if top is not None and top.score.total > tier.bound:
            break
        members = [p for p in roster if in_tier(p, need, tier) and offerable(p, need, scope)]
        first = leaders(need, members)
        assert len(first) == len({standing(p, need) for p in members})
        top = better(top, best(need, first, NOW, scope=scope, weights=weights))
    assert top == rank(need, roster, NOW, scope=scope, weights=weights).best


@settings(max_examples=300)
@given(
    need=needs(),
    one=peers(),
    other=peers(),
    rotation=st.floats(0, 20),
    per_day=st.sampled_from([0, 0.5, 3]),
)
def test_peers_of_one_standing_rank_by_fair_rotation_alone(
    need: SupportNeed, one: Peer, other: Peer, rotation: float, per_day: float
) -> None:
    weights = PreferenceWeights(rotation_cap=rotation, rotation_per_day_since_last_match=per_day)
    if standing(one, need) != standing(other, need) or one.pseudonym == other.pseudonym:
        return
    first = leaders(need, [one, other])
    assert len(first) == 1
    [rest] = [p for p in (one, other) if p is not first[0]]
    assert score(first[0], need, NOW, weights).total >= score(rest, need, NOW, weights).total
