"""Peer care (DOMAIN.md, Training: "Peers need support too: supervision, debriefs, and a watch on
their own load"): every session a peer leads is counted; after a number of sessions since their
last debrief, or after any session that ended in a referral or at tier 3, the peer is prompted to
debrief. Attending a debrief resets the count and clears their open prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from huddle_contracts.vocabulary import Tier

from huddle_training.domain.certification import CLOCK_SKEW

DEFAULT_DEBRIEF_AFTER_SESSIONS = 5


class PromptReason(StrEnum):
    SESSIONS = "sessions"
    """The peer led the configured number of sessions since their last debrief."""
    REFERRAL = "referral"
    """A session ended in a referral to professional help, or was at tier 3."""


class MeetingKind(StrEnum):
    SUPERVISION = "supervision"
    DEBRIEF = "debrief"


class PeerCareRuleBroken(ValueError):
    """The change breaks a peer-care rule; the message says which."""


@dataclass(frozen=True)
class PeerCare:
    """What training watches of one peer's load: sessions since their last debrief."""

    network_id: str
    peer: str
    hospital_id: str
    sessions_since_debrief: int = 0
    prompted_for_sessions: bool = False
    """A prompt for the count was made since the last debrief (one per count, not one per
    session after it)."""
    last_debrief_at: datetime | None = None

    def session_completed(
        self, *, tier: Tier, referral_made: bool, completed_at: datetime, debrief_after: int
    ) -> tuple[PeerCare, tuple[PromptReason, ...]]:
        """The count after one more session, and why the peer should now debrief (if they should).

        A session that ended before the peer's last debrief (its event arrived late) was
        covered by that debrief: it changes nothing.
        """
        if a_debrief_covers_the_sessions_before_it(self, completed_at):
            return self, ()
        counted = replace(self, sessions_since_debrief=self.sessions_since_debrief + 1)
        reasons: list[PromptReason] = []
        if any_tier_3_referral_prompts_a_debrief(tier, referral_made):
            reasons.append(PromptReason.REFERRAL)
        due = debrief_prompted_after_configured_number_of_sessions(
            counted.sessions_since_debrief, debrief_after
        )
        if due and not counted.prompted_for_sessions:
            reasons.append(PromptReason.SESSIONS)
            counted = replace(counted, prompted_for_sessions=True)
        return counted, tuple(reasons)

    def debriefed(self, at: datetime) -> PeerCare:
        """After a debrief: the count starts again (a later debrief recorded first wins)."""
        if self.last_debrief_at is not None and at < self.last_debrief_at:
            return self
        return replace(
            self, sessions_since_debrief=0, prompted_for_sessions=False, last_debrief_at=at
        )


def a_debrief_covers_the_sessions_before_it(care: PeerCare, completed_at: datetime) -> bool:
    return care.last_debrief_at is not None and completed_at <= care.last_debrief_at


def debrief_prompted_after_configured_number_of_sessions(
    sessions_since_debrief: int, debrief_after: int
) -> bool:
    if debrief_after < 1:
        raise PeerCareRuleBroken("a debrief is prompted after at least one session")
    return sessions_since_debrief >= debrief_after


def any_tier_3_referral_prompts_a_debrief(tier: Tier, referral_made: bool) -> bool:
    return referral_made or tier is Tier.PROFESSIONAL


@dataclass(frozen=True)
class DebriefPrompt:
    """A prompt for one peer to debrief; open until they attend a debrief."""

    prompt_id: UUID
    network_id: str
    peer: str
    hospital_id: str
    reasons: tuple[PromptReason, ...]
    sessions_since_debrief: int
    prompted_at: datetime
    cleared_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


@dataclass(frozen=True)
class Meeting:
    """A supervision or debrief meeting a coordinator scheduled at one hospital."""

    meeting_id: UUID
    network_id: str
    hospital_id: str
    kind: MeetingKind
    starts_at: datetime
    created_at: datetime


def attendance_is_recorded_once_the_meeting_has_begun(meeting: Meeting, now: datetime) -> None:
    if meeting.starts_at > now + CLOCK_SKEW:
        raise PeerCareRuleBroken("attendance is recorded once the meeting has begun")


def a_debrief_resets_the_count_and_clears_open_prompts(meeting: Meeting) -> bool:
    """Only a debrief does; supervision is recorded, and changes no count."""
    return meeting.kind is MeetingKind.DEBRIEF
