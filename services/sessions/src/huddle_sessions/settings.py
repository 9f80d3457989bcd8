"""Sessions' own settings, beside the shared ServiceSettings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from huddle_sessions.domain.follow_up import FollowUpSchedule


class SessionsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUDDLE_SESSIONS_", extra="ignore")

    # Check-ins after a contact that plans follow-up (DOMAIN.md: 24 h, 72 h, one week).
    follow_up_hours: list[float] = Field(default=[24, 72, 168], min_length=1, max_length=10)

    @property
    def follow_up_schedule(self) -> FollowUpSchedule:
        return FollowUpSchedule(offsets=tuple(timedelta(hours=h) for h in self.follow_up_hours))
