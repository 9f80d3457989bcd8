"""Training's own settings, beside the shared ServiceSettings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from huddle_training.domain.certification import DEFAULT_VALIDITY_MONTHS
from huddle_training.domain.peer_care import DEFAULT_DEBRIEF_AFTER_SESSIONS


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUDDLE_TRAINING_", extra="ignore")

    # No recertification interval is standard (DOMAIN.md): the validity period of a network
    # without a certification rule of its own, and the default of a rule that names none.
    certification_validity_months: int = Field(default=DEFAULT_VALIDITY_MONTHS, ge=1, le=120)
    # Peer care: how many sessions a peer leads after their last debrief before being prompted.
    debrief_after_sessions: int = Field(default=DEFAULT_DEBRIEF_AFTER_SESSIONS, ge=1, le=100)
    # How often the lapse scheduler looks for certifications that have ended: one is lapsed
    # within this long of its `valid_until` (the first round runs when the service starts).
    lapse_poll_seconds: float = Field(default=60.0, gt=0)
