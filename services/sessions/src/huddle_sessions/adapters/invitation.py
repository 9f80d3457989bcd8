"""Calendar invitations as iCalendar (RFC 5545), with the icalendar library: a title, a time,
the agenda; no names, no clinical detail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from icalendar import Calendar, Event

from huddle_sessions.domain.group_session import GUIDES, GroupFormat, Recurrence

_RRULE = {
    Recurrence.FORTNIGHTLY: {"FREQ": "WEEKLY", "INTERVAL": 2},
    Recurrence.MONTHLY: {"FREQ": "MONTHLY"},
    Recurrence.BIMONTHLY: {"FREQ": "MONTHLY", "INTERVAL": 2},
}


def invitation(
    *,
    session_id: UUID,
    group_format: GroupFormat,
    starts_at: datetime,
    duration: timedelta,
    recurrence: Recurrence,
    link: str,
) -> bytes:
    guide = GUIDES[group_format]
    calendar = Calendar()
    calendar.add("prodid", "-//Huddle//peer support//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{session_id}@huddle")
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", starts_at)
    event.add("dtend", starts_at + duration)
    event.add("summary", f"Huddle: {guide.title}")
    event.add("description", "Agenda: " + " / ".join(guide.agenda) + f"\nDetails: {link}")
    if recurrence in _RRULE:
        event.add("rrule", _RRULE[recurrence])
    calendar.add_component(event)
    return bytes(calendar.to_ical())
