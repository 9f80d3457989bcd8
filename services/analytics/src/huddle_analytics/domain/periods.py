"""Time, coarsened: months and quarters in UTC are the finest grain anything published shows."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from huddle_contracts.vocabulary import DurationBand

MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


class Grain(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def month_of(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


def month_start(month: str) -> datetime:
    found = MONTH.match(month)
    if found is None:
        raise ValueError(f"a month is written YYYY-MM, got {month!r}")
    return datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)


def next_month(month: str) -> str:
    start = month_start(month)
    following = (start + timedelta(days=32)).replace(day=1)
    return month_of(following)


def month_end(month: str) -> datetime:
    """The first instant after the month."""
    return month_start(next_month(month))


def label(moment: datetime | date, grain: Grain) -> str:
    """The period a moment falls in, as published: ``2026-08``, ``2026-Q3`` or ``2026``."""
    year, month = moment.year, moment.month
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        utc = moment.astimezone(UTC)
        year, month = utc.year, utc.month
    if grain is Grain.MONTH:
        return f"{year:04d}-{month:02d}"
    if grain is Grain.QUARTER:
        return f"{year:04d}-Q{(month - 1) // 3 + 1}"
    return f"{year:04d}"


def year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


def periods_of(year: int, grain: Grain) -> list[str]:
    """Every period of a calendar year at a grain, in order (naive times are UTC)."""
    return list(dict.fromkeys(label(datetime(year, m, 1), grain) for m in range(1, 13)))


# Upper bounds in minutes; the 30-minute band is the urgent first-contact deadline (DOMAIN.md).
_BANDS = (
    (30, DurationBand.UNDER_30_MINUTES),
    (120, DurationBand.UNDER_2_HOURS),
    (24 * 60, DurationBand.UNDER_24_HOURS),
    (72 * 60, DurationBand.UNDER_72_HOURS),
)


def waited_band(since: datetime, until: datetime) -> DurationBand:
    """A waiting time as a band: the analysts' stream never carries exact minutes."""
    minutes = (until - since).total_seconds() / 60
    for bound, band in _BANDS:
        if minutes < bound:
            return band
    return DurationBand.LONGER
