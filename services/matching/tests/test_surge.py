"""A surge is matched as one optimal assignment, never over any peer's capacity."""

from __future__ import annotations

from collections import Counter

from huddle_contracts.vocabulary import Discipline
from huddle_e2e.factories import NOW, make_need, make_peer
from huddle_matching.domain.surge import assign_batch


def test_surge_assignment_never_puts_a_peer_over_capacity() -> None:
    peers = [make_peer(f"peer{i}", capacity=2, active_cases=i % 2) for i in range(10)]
    needs = [make_need(requester=f"p_staff{i}") for i in range(40)]
    assigned = assign_batch(needs, peers, NOW)
    load = Counter(p.pseudonym for p in assigned.values() if p is not None)
    for peer in peers:
        assert load[peer.pseudonym] <= peer.free_slots
    assert sum(load.values()) == sum(p.free_slots for p in peers)  # 15 slots, all used


def test_surge_assignment_keeps_the_hard_rules() -> None:
    involved = frozenset({"p_a", "p_b"})
    peers = [make_peer("a"), make_peer("b"), make_peer("c", capacity=5)]
    needs = [make_need(requester=f"p_s{i}", involved=involved) for i in range(3)]
    assigned = assign_batch(needs, peers, NOW)
    assert {p.pseudonym for p in assigned.values() if p} == {"p_c"}


def test_surge_assignment_prefers_the_same_discipline_overall() -> None:
    nurse, doctor = make_peer("nurse"), make_peer("doctor", discipline=Discipline.PHYSICIAN)
    needs = [make_need(discipline=Discipline.PHYSICIAN), make_need(discipline=Discipline.NURSE)]
    assigned = assign_batch(needs, [nurse, doctor], NOW)
    assert assigned[needs[0].case_id] is doctor and assigned[needs[1].case_id] is nurse
