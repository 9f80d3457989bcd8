"""Commitment to follow-up (DOMAIN.md: urgent contact then repeated check-ins over 72 hours;
RISE: staff value follow-up): check-ins on a schedule counted from the first contact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(hours=24),
    timedelta(hours=72),
    timedelta(weeks=1),
)


@dataclass(frozen=True)
class FollowUpSchedule:
    """Configurable per network; default 24 hours, 72 hours and one week after first contact."""

    offsets: Sequence[timedelta] = DEFAULT_SCHEDULE

    def due_dates(self, first_contact_at: datetime) -> list[datetime]:
        return [first_contact_at + offset for offset in sorted(self.offsets)]


def is_overdue(due_at: datetime, done_at: datetime | None, now: datetime) -> bool:
    return done_at is None and due_at < now
