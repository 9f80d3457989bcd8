"""What a peer records of a contact: when, how long, how, which tier, whether a follow-up is
planned. Nothing else: peers take no notes and support stays out of clinical records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from huddle_contracts.vocabulary import Mode, Tier

MAX_MINUTES = 600


class RecordRefused(ValueError):
    """The record breaks a programme rule; the message says which."""


@dataclass(frozen=True)
class ContactRecord:
    started_at: datetime
    duration_minutes: int
    mode: Mode
    tier: Tier
    follow_up_planned: bool
    participants: int = 1

    @property
    def completed_at(self) -> datetime:
        return self.started_at + timedelta(minutes=self.duration_minutes)


def peers_record_when_how_long_and_how_never_what(
    record: ContactRecord, *, opened_at: datetime, now: datetime
) -> ContactRecord:
    """The checks on a contact record; the API itself refuses any other field (no narrative)."""
    if record.started_at < opened_at - timedelta(minutes=5):
        raise RecordRefused("a contact cannot start before the case was opened")
    if record.completed_at > now + timedelta(minutes=5):
        raise RecordRefused("a contact is recorded after it took place, not before")
    if not 1 <= record.duration_minutes <= MAX_MINUTES:
        raise RecordRefused(f"duration must be 1 to {MAX_MINUTES} minutes")
    if record.tier is Tier.PROFESSIONAL:
        raise RecordRefused("tier 3 is a referral: record it with POST .../referrals")
    if record.mode is Mode.GROUP and record.participants < 2:
        raise RecordRefused("a group session has at least 2 participants")
    if record.mode is not Mode.GROUP and record.participants != 1:
        raise RecordRefused("a one-to-one contact has exactly 1 participant")
    return record
