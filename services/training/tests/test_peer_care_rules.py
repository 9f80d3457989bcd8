"""Peer care's rules (domain/peer_care.py) and settings, without servers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from huddle_contracts.vocabulary import Tier
from huddle_training.domain.peer_care import (
    DEFAULT_DEBRIEF_AFTER_SESSIONS,
    Meeting,
    MeetingKind,
    PeerCare,
    PeerCareRuleBroken,
    PromptReason,
    a_debrief_resets_the_count_and_clears_open_prompts,
    any_tier_3_referral_prompts_a_debrief,
    attendance_is_recorded_once_the_meeting_has_begun,
    debrief_prompted_after_configured_number_of_sessions,
)
from huddle_training.settings import TrainingSettings

PEER = "p_" + "a" * 32
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def care() -> PeerCare:
    return PeerCare(network_id="north", peer=PEER, hospital_id="st-mary")


def sessions(
    start: PeerCare,
    count: int,
    *,
    after: int = 5,
    tier: Tier = Tier.PEER,
    referral: bool = False,
    at: datetime = NOW,
) -> tuple[PeerCare, list[tuple[PromptReason, ...]]]:
    """``count`` sessions in a row; the reasons each one prompted."""
    prompted = []
    current = start
    for i in range(count):
        current, reasons = current.session_completed(
            tier=tier,
            referral_made=referral,
            completed_at=at + timedelta(hours=i),
            debrief_after=after,
        )
        prompted.append(reasons)
    return current, prompted


def test_debrief_prompted_after_configured_number_of_sessions() -> None:
    counted, prompted = sessions(care(), 3, after=3)
    assert prompted == [(), (), (PromptReason.SESSIONS,)]
    assert counted.sessions_since_debrief == 3
    assert debrief_prompted_after_configured_number_of_sessions(5, 5)
    assert not debrief_prompted_after_configured_number_of_sessions(4, 5)
    with pytest.raises(PeerCareRuleBroken):
        debrief_prompted_after_configured_number_of_sessions(1, 0)


def test_the_count_prompts_once_until_the_peer_debriefs() -> None:
    counted, prompted = sessions(care(), 8, after=3)
    assert prompted.count((PromptReason.SESSIONS,)) == 1
    assert counted.sessions_since_debrief == 8


def test_any_tier_3_referral_prompts_a_debrief() -> None:
    assert any_tier_3_referral_prompts_a_debrief(Tier.PROFESSIONAL, referral_made=False)
    assert any_tier_3_referral_prompts_a_debrief(Tier.PEER, referral_made=True)
    assert not any_tier_3_referral_prompts_a_debrief(Tier.PEER, referral_made=False)
    assert not any_tier_3_referral_prompts_a_debrief(Tier.LOCAL, referral_made=False)
    _, prompted = sessions(care(), 2, tier=Tier.PROFESSIONAL)
    assert prompted == [(PromptReason.REFERRAL,), (PromptReason.REFERRAL,)]  # each one


def test_a_session_both_referred_and_over_the_count_prompts_once_with_both_reasons() -> None:
    counted, _ = sessions(care(), 4, after=5)
    _, prompted = sessions(counted, 1, after=5, referral=True)
    assert prompted == [(PromptReason.REFERRAL, PromptReason.SESSIONS)]


def test_a_debrief_resets_the_count() -> None:
    counted, _ = sessions(care(), 5, after=5)
    debriefed = counted.debriefed(NOW + timedelta(days=1))
    assert debriefed.sessions_since_debrief == 0 and not debriefed.prompted_for_sessions
    _, prompted = sessions(debriefed, 5, after=5, at=NOW + timedelta(days=2))
    assert prompted[-1] == (PromptReason.SESSIONS,)  # prompted again after five more


def test_a_debrief_covers_the_sessions_before_it() -> None:
    debriefed = care().debriefed(NOW)
    late, prompted = sessions(debriefed, 1, referral=True, at=NOW - timedelta(hours=1))
    assert late == debriefed and prompted == [()]


def test_an_older_debrief_recorded_later_changes_nothing() -> None:
    debriefed = care().debriefed(NOW)
    counted, _ = sessions(debriefed, 2, at=NOW + timedelta(hours=1))
    assert counted.debriefed(NOW - timedelta(days=3)) == counted


def test_only_a_debrief_resets_the_count_and_clears_prompts() -> None:
    def meeting(kind: MeetingKind) -> Meeting:
        return Meeting(uuid.uuid4(), "north", "st-mary", kind, NOW, NOW - timedelta(days=1))

    assert a_debrief_resets_the_count_and_clears_open_prompts(meeting(MeetingKind.DEBRIEF))
    assert not a_debrief_resets_the_count_and_clears_open_prompts(meeting(MeetingKind.SUPERVISION))


def test_attendance_is_recorded_once_the_meeting_has_begun() -> None:
    meeting = Meeting(uuid.uuid4(), "north", "st-mary", MeetingKind.DEBRIEF, NOW, NOW)
    attendance_is_recorded_once_the_meeting_has_begun(meeting, NOW)
    with pytest.raises(PeerCareRuleBroken, match="once the meeting has begun"):
        attendance_is_recorded_once_the_meeting_has_begun(meeting, NOW - timedelta(hours=1))


def test_the_debrief_threshold_defaults_to_five_sessions_and_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert DEFAULT_DEBRIEF_AFTER_SESSIONS == 5
    monkeypatch.delenv("HUDDLE_TRAINING_DEBRIEF_AFTER_SESSIONS", raising=False)
    assert TrainingSettings().debrief_after_sessions == 5
    monkeypatch.setenv("HUDDLE_TRAINING_DEBRIEF_AFTER_SESSIONS", "3")
    assert TrainingSettings().debrief_after_sessions == 3
    monkeypatch.setenv("HUDDLE_TRAINING_DEBRIEF_AFTER_SESSIONS", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        TrainingSettings()
