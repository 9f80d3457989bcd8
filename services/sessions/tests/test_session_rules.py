"""DOMAIN.md: peers record when, how long and how, never what; follow-up is a commitment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from huddle_contracts.vocabulary import Mode, Tier
from huddle_sessions.domain.contact_record import (
    ContactRecord,
    RecordRefused,
    peers_record_when_how_long_and_how_never_what,
)
from huddle_sessions.domain.follow_up import FollowUpSchedule, is_overdue

OPENED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
NOW = OPENED + timedelta(hours=3)


def record(**changes: object) -> ContactRecord:
    fields: dict[str, object] = {
        "started_at": OPENED + timedelta(hours=1),
        "duration_minutes": 30,
        "mode": Mode.PHONE,
        "tier": Tier.PEER,
        "follow_up_planned": True,
    }
    return ContactRecord(**{**fields, **changes})  # type: ignore[arg-type]


def check(r: ContactRecord) -> ContactRecord:
    return peers_record_when_how_long_and_how_never_what(r, opened_at=OPENED, now=NOW)


def test_peers_record_when_how_long_and_how() -> None:
    assert check(record()).completed_at == OPENED + timedelta(hours=1, minutes=30)


def test_a_contact_is_recorded_after_it_happened() -> None:
    with pytest.raises(RecordRefused, match="after it took place"):
        check(record(started_at=NOW))


def test_a_contact_cannot_predate_the_case() -> None:
    with pytest.raises(RecordRefused, match="before the case was opened"):
        check(record(started_at=OPENED - timedelta(hours=1)))


def test_tier_3_is_a_referral_not_a_contact() -> None:
    with pytest.raises(RecordRefused, match="referral"):
        check(record(tier=Tier.PROFESSIONAL))


def test_group_sessions_count_attendance_only() -> None:
    assert check(record(mode=Mode.GROUP, participants=15)).participants == 15
    with pytest.raises(RecordRefused, match="at least 2"):
        check(record(mode=Mode.GROUP, participants=1))
    with pytest.raises(RecordRefused, match="exactly 1"):
        check(record(participants=3))


def test_follow_up_check_ins_at_24_hours_72_hours_and_one_week_by_default() -> None:
    assert FollowUpSchedule().due_dates(OPENED) == [
        OPENED + timedelta(hours=24),
        OPENED + timedelta(hours=72),
        OPENED + timedelta(weeks=1),
    ]


def test_follow_up_schedule_is_configurable() -> None:
    schedule = FollowUpSchedule(offsets=(timedelta(hours=48), timedelta(hours=4)))
    assert schedule.due_dates(OPENED) == [OPENED + timedelta(hours=4), OPENED + timedelta(hours=48)]


def test_a_follow_up_is_overdue_only_when_past_due_and_not_done() -> None:
    assert is_overdue(OPENED, None, NOW)
    assert not is_overdue(OPENED, OPENED, NOW)
    assert not is_overdue(NOW + timedelta(hours=1), None, NOW)


def test_the_follow_up_schedule_is_a_setting(monkeypatch) -> None:
    from huddle_sessions.settings import SessionsSettings

    assert SessionsSettings().follow_up_schedule.due_dates(OPENED)[0] == OPENED + timedelta(
        hours=24
    )
    monkeypatch.setenv("HUDDLE_SESSIONS_FOLLOW_UP_HOURS", "[4, 48]")
    assert SessionsSettings().follow_up_schedule.due_dates(OPENED) == [
        OPENED + timedelta(hours=4),
        OPENED + timedelta(hours=48),
    ]
