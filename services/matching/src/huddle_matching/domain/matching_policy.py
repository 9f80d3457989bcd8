"""A network's matching policy: response times, how long each offer stays open, capacity."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from huddle_contracts.vocabulary import Mode, Urgency

from huddle_matching.domain.preferences import PreferenceWeights
from huddle_matching.domain.response_times import ResponsePolicy

SURGE_THRESHOLD = 5
"""An event touching more than 5 staff calls a critical response (YOU Matter)."""

REMOTE_MODES = (Mode.PHONE, Mode.VIDEO)


@dataclass(frozen=True)
class MatchingPolicy:
    """Configurable per network; the defaults follow DOMAIN.md."""

    response: ResponsePolicy = field(default_factory=ResponsePolicy)
    urgent_offer_window: timedelta = timedelta(minutes=10)
    """How long a peer has to answer an urgent offer before the next peer is asked."""
    routine_offer_window: timedelta = timedelta(hours=4)
    default_capacity: int = 3
    weights: PreferenceWeights = field(default_factory=PreferenceWeights)

    def offer_window(self, urgency: Urgency) -> timedelta:
        return self.routine_offer_window if urgency is Urgency.ROUTINE else self.urgent_offer_window


def offer_respond_by(
    now: datetime, urgency: Urgency, first_contact_by: datetime, policy: MatchingPolicy
) -> datetime:
    """An offer stays open for the policy's window, but never past the first-contact deadline
    (unless that deadline has already passed, when the peer still gets a full window)."""
    window_end = now + policy.offer_window(urgency)
    return min(window_end, first_contact_by) if first_contact_by > now else window_end


def matched_mode(preferred: Mode | None, *, remote: bool) -> Mode:
    """The mode of the first contact: the requester's wish, remote when the peer is elsewhere."""
    if remote:
        return preferred if preferred in REMOTE_MODES else Mode.PHONE
    return preferred if preferred is not None and preferred is not Mode.GROUP else Mode.PHONE


def is_surge(involved: int) -> bool:
    return involved > SURGE_THRESHOLD
