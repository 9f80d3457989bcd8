"""Training's own settings, beside the shared ServiceSettings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from huddle_training.domain.certification import DEFAULT_VALIDITY_MONTHS


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUDDLE_TRAINING_", extra="ignore")

    # No recertification interval is standard (DOMAIN.md); per-network rules come with issue #4.
    certification_validity_months: int = Field(default=DEFAULT_VALIDITY_MONTHS, ge=1, le=120)
