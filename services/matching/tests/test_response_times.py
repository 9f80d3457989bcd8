"""DOMAIN.md, "Response times", in the hospital's own calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from huddle_contracts.vocabulary import Urgency
from huddle_matching.domain.response_times import (
    HospitalCalendar,
    ResponsePolicy,
    add_working_hours,
    first_contact_deadline,
)

THURSDAY_10H = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_urgent_first_contact_within_30_minutes() -> None:
    deadline = first_contact_deadline(THURSDAY_10H, Urgency.URGENT, HospitalCalendar())
    assert deadline == THURSDAY_10H + timedelta(minutes=30)


def test_crisis_never_waits_for_a_peer() -> None:
    assert first_contact_deadline(THURSDAY_10H, Urgency.CRISIS, HospitalCalendar()) == THURSDAY_10H


def test_routine_first_contact_within_24_working_hours() -> None:
    deadline = first_contact_deadline(THURSDAY_10H, Urgency.ROUTINE, HospitalCalendar())
    assert deadline == THURSDAY_10H + timedelta(days=1)


def test_24_working_hours_skip_the_weekend_and_holidays() -> None:
    friday_10h = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert add_working_hours(friday_10h, 24, HospitalCalendar()) == datetime(
        2026, 11, 30, 10, 0, tzinfo=UTC
    )
    monday_holiday = HospitalCalendar(holidays=frozenset({date(2026, 11, 30)}))
    assert add_working_hours(friday_10h, 24, monday_holiday) == datetime(
        2026, 12, 1, 10, 0, tzinfo=UTC
    )


def test_working_hours_are_counted_in_the_hospitals_time_zone_and_office_hours() -> None:
    office = HospitalCalendar(time_zone="America/New_York", day_start=time(8), day_end=time(17))
    # Thursday 16:00 in New York (21:00 UTC): 1 hour left that day, 8 more from 08:00 Friday.
    start = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
    assert add_working_hours(start, 9, office) == datetime(2026, 11, 27, 21, 0, tzinfo=UTC)


def test_response_times_are_configurable_per_network() -> None:
    policy = ResponsePolicy(urgent_first_contact=timedelta(minutes=15), routine_working_hours=8)
    assert first_contact_deadline(
        THURSDAY_10H, Urgency.URGENT, HospitalCalendar(), policy
    ) == THURSDAY_10H + timedelta(minutes=15)
    assert first_contact_deadline(
        THURSDAY_10H, Urgency.ROUTINE, HospitalCalendar(), policy
    ) == THURSDAY_10H + timedelta(hours=8)
