"""A peer's certification and how long it stays current (DOMAIN.md, Training: "Upkeep").

No recertification interval is standard, so the validity period is configurable; a yearly
refresher is the common pattern, hence twelve calendar months by default.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

DEFAULT_VALIDITY_MONTHS = 12
# A "now" sent by a client may run slightly ahead of ours; that is not a future date.
CLOCK_SKEW = timedelta(minutes=5)


class CertificationRefused(ValueError):
    """The certification breaks a programme rule; the message says which."""


def add_calendar_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by whole calendar months, the day clamped to the target month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def certification_valid_until(
    certified_at: datetime, months: int = DEFAULT_VALIDITY_MONTHS
) -> datetime:
    """When a refresher is due: ``months`` calendar months on (31 Jan + 1 = 28 or 29 Feb)."""
    if months < 1:
        raise CertificationRefused("a certification is valid for at least one month")
    return add_calendar_months(certified_at, months)


@dataclass(frozen=True)
class Certification:
    """One recorded certification (a first one or a refresher) of one peer."""

    certification_id: UUID
    network_id: str
    peer: str
    certified_at: datetime
    valid_until: datetime
    recorded_at: datetime

    def __post_init__(self) -> None:
        certification_is_recorded_after_training(self)
        certification_ends_after_it_begins(self)
        certification_is_current_when_recorded(self)


def certification_is_recorded_after_training(certification: Certification) -> None:
    if certification.certified_at > certification.recorded_at + CLOCK_SKEW:
        raise CertificationRefused("certified_at cannot be in the future")


def certification_ends_after_it_begins(certification: Certification) -> None:
    if certification.valid_until <= certification.certified_at:
        raise CertificationRefused("valid_until must be after certified_at")


def certification_is_current_when_recorded(certification: Certification) -> None:
    if certification.valid_until <= certification.recorded_at:
        raise CertificationRefused(
            "valid_until has already passed: the peer needs a refresher, not this record"
        )
