"""DOMAIN.md, "Matching a peer": each hard rule and preference, by name."""

from __future__ import annotations

from datetime import timedelta

from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Gender, Urgency
from huddle_e2e.factories import NOW, make_need, make_peer
from huddle_matching.domain.eligibility import exclusions
from huddle_matching.domain.selection import Scope, rank


def test_only_peers_whose_training_is_current() -> None:
    lapsed = make_peer("lapsed", certified_until=NOW - timedelta(seconds=1))
    assert exclusions(lapsed, make_need(), NOW) == ["certification is not current"]
    assert exclusions(make_peer("current"), make_need(), NOW) == []


def test_never_the_requester_themselves() -> None:
    me = make_peer("me")
    assert "is the requester" in exclusions(me, make_need(requester="p_me"), NOW)


def test_never_someone_involved_in_the_same_event() -> None:
    peer = make_peer("witness")
    need = make_need(involved=frozenset({"p_witness", "p_requester"}))
    assert "was involved in the same adverse event" in exclusions(peer, need, NOW)


def test_not_from_the_requesters_own_department_by_default() -> None:
    colleague = make_peer("colleague", unit_id="icu")
    for wish in (None, False):
        need = make_need(preferences=MatchPreferences(own_unit=wish))
        assert any("requester's unit" in r for r in exclusions(colleague, need, NOW))


def test_own_unit_when_the_requester_asks_for_it() -> None:
    colleague = make_peer("colleague", unit_id="icu")
    need = make_need(preferences=MatchPreferences(own_unit=True))
    assert exclusions(colleague, need, NOW) == []
    ranking = rank(need, [make_peer("other"), colleague], NOW)
    assert ranking.best is not None and ranking.best.peer is colleague


def test_never_the_requesters_manager_or_reporting_line() -> None:
    manager = make_peer("manager")
    need = make_need(reporting_line=frozenset({"p_manager"}))
    assert "is in the requester's reporting line" in exclusions(manager, need, NOW)


def test_cap_active_cases_per_peer() -> None:
    busy = make_peer("busy", active_cases=3, capacity=3)
    assert exclusions(busy, make_need(), NOW) == ["at capacity (3 of 3 active cases)"]


def test_a_peer_may_withdraw_at_any_time() -> None:
    paused = make_peer("paused", paused=True)
    assert "has paused or withdrawn" in exclusions(paused, make_need(), NOW)


def test_urgent_requests_go_to_peers_on_call() -> None:
    off_rota = make_peer("off", on_call=False)
    assert exclusions(off_rota, make_need(urgency=Urgency.ROUTINE), NOW) == []
    assert exclusions(off_rota, make_need(urgency=Urgency.URGENT), NOW) == [
        "not on call (urgent requests go to the on-call rota)"
    ]


def test_never_a_peer_from_another_network() -> None:
    stranger = make_peer("stranger", network_id="south")
    assert "belongs to another network" in exclusions(stranger, make_need(), NOW)


def test_same_discipline_preferred_nurse_with_nurse_physician_with_physician() -> None:
    physician = make_peer("physician", discipline=Discipline.PHYSICIAN)
    nurse = make_peer("nurse", discipline=Discipline.NURSE)
    ranking = rank(make_need(discipline=Discipline.PHYSICIAN), [nurse, physician], NOW)
    assert [c.peer for c in ranking.candidates] == [physician, nurse]
    assert "same discipline (physician)" in ranking.candidates[0].score.reasons


def test_similar_clinical_background_preferred() -> None:
    ed = make_peer("ed", clinical_area="emergency")
    onc = make_peer("onc", clinical_area="oncology")
    ranking = rank(make_need(clinical_area="emergency"), [onc, ed], NOW)
    assert ranking.best is not None and ranking.best.peer is ed


def test_same_hospital_where_possible_then_the_network() -> None:
    elsewhere = make_peer("elsewhere", hospital_id="st-luke")
    need = make_need()
    local_search = rank(need, [elsewhere], NOW)
    assert local_search.best is None
    assert "another hospital" in local_search.excluded[0].reasons[0]
    widened = rank(need, [elsewhere], NOW, scope=Scope.NETWORK)
    assert widened.best is not None and widened.best.peer is elsewhere


def test_opt_in_preferences_language_and_gender() -> None:
    spanish = make_peer("es", languages=frozenset({"en", "es"}), gender=Gender.WOMAN)
    english = make_peer("en", gender=Gender.MAN)
    need = make_need(preferences=MatchPreferences(language="es", gender=Gender.WOMAN))
    ranking = rank(need, [english, spanish], NOW)
    assert ranking.best is not None and ranking.best.peer is spanish
    assert {"speaks es", "gender as requested"} <= set(ranking.best.score.reasons)


def test_lower_current_load_preferred() -> None:
    loaded = make_peer("loaded", active_cases=2)
    free = make_peer("free")
    ranking = rank(make_need(), [loaded, free], NOW)
    assert [c.peer for c in ranking.candidates] == [free, loaded]


def test_fair_rotation_prefers_the_peer_matched_longest_ago() -> None:
    recent = make_peer("recent", last_matched_at=NOW - timedelta(days=1))
    earlier = make_peer("earlier", last_matched_at=NOW - timedelta(days=15))
    ranking = rank(make_need(), [recent, earlier], NOW)
    assert [c.peer for c in ranking.candidates] == [earlier, recent]


def test_the_choice_is_explained_to_coordinators() -> None:
    ranking = rank(make_need(), [make_peer("ok"), make_peer("lapsed", certified_until=NOW)], NOW)
    assert ranking.best is not None and ranking.best.score.reasons
    [excluded] = ranking.excluded
    assert excluded.peer.pseudonym == "p_lapsed"
    assert excluded.reasons == ("certification is not current",)


def test_a_peer_already_offered_the_case_is_not_offered_again() -> None:
    ranking = rank(make_need(), [make_peer("a")], NOW, skip=frozenset({"p_a"}))
    assert ranking.best is None and "already offered this case" in ranking.excluded[0].reasons
