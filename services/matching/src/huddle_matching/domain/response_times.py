"""Response times (DOMAIN.md): urgent requests get first contact within 30 minutes, routine ones
within 24 working hours counted in the hospital's own calendar; a crisis never waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from huddle_contracts.vocabulary import Urgency

MONDAY_TO_FRIDAY = frozenset({0, 1, 2, 3, 4})


@dataclass(frozen=True)
class HospitalCalendar:
    """When the hospital's working hours run: its time zone, working days and holidays."""

    time_zone: str = "UTC"
    working_days: frozenset[int] = MONDAY_TO_FRIDAY
    day_start: time = time(0, 0)
    day_end: time | None = None
    """None: until midnight (the whole working day counts)."""
    holidays: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_days and day not in self.holidays


@dataclass(frozen=True)
class ResponsePolicy:
    """Configurable per network; the defaults are the programmes' own figures."""

    urgent_first_contact: timedelta = timedelta(minutes=30)
    routine_working_hours: float = 24


def add_working_hours(start: datetime, hours: float, calendar: HospitalCalendar) -> datetime:
    """``start`` plus ``hours`` of working time in the hospital's calendar (aware in, aware out)."""
    zone = ZoneInfo(calendar.time_zone)
    moment = start.astimezone(zone)
    left = timedelta(hours=hours)
    for _ in range(3 * 366):  # bounded: at most three years of calendar days
        day = moment.date()
        opens = datetime.combine(day, calendar.day_start, zone)
        closes = (
            datetime.combine(day, calendar.day_end, zone)
            if calendar.day_end is not None
            else datetime.combine(day + timedelta(days=1), time(0), zone)
        )
        if calendar.is_working_day(day) and moment < closes:
            begin = max(moment, opens)
            if begin + left <= closes:
                return (begin + left).astimezone(start.tzinfo)
            left -= closes - begin
        moment = datetime.combine(day + timedelta(days=1), time(0), zone)
    raise ValueError("the calendar has no working time in the next three years")


def first_contact_deadline(
    requested_at: datetime,
    urgency: Urgency,
    calendar: HospitalCalendar,
    policy: ResponsePolicy | None = None,
) -> datetime:
    rules = policy or ResponsePolicy()
    if urgency is Urgency.CRISIS:
        return requested_at
    if urgency is Urgency.URGENT:
        return requested_at + rules.urgent_first_contact
    return add_working_hours(requested_at, rules.routine_working_hours, calendar)
