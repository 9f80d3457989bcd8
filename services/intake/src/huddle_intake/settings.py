"""Intake's own settings, beside the shared ServiceSettings."""

from __future__ import annotations

import base64
import hashlib

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_CONTACT_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"huddle-local-contact-key").digest())


class IntakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUDDLE_INTAKE_", extra="ignore")

    # Fernet key (32 url-safe base64 bytes) sealing contact details at rest.
    contact_key: SecretStr = SecretStr(_DEV_CONTACT_KEY.decode())
    # Contact details are purged this long after a case closes (UW Medicine: delete once done).
    contact_retention_days: float = Field(default=30, ge=0, le=3650)
    # Shown to a worker in crisis when their hospital has configured no crisis resources.
    crisis_line: str = "988"
    crisis_line_label: str = "Crisis line (call or text, 24/7)"

    def refuse_development_defaults(self) -> IntakeSettings:
        if self.contact_key.get_secret_value() == _DEV_CONTACT_KEY.decode():
            raise ValueError("HUDDLE_INTAKE_CONTACT_KEY must be set to a real key in production")
        return self

    @model_validator(mode="after")
    def _key_is_fernet(self) -> IntakeSettings:
        try:
            raw = base64.urlsafe_b64decode(self.contact_key.get_secret_value())
        except ValueError as exc:
            raise ValueError("HUDDLE_INTAKE_CONTACT_KEY is not url-safe base64") from exc
        if len(raw) != 32:
            raise ValueError("HUDDLE_INTAKE_CONTACT_KEY must encode 32 bytes (a Fernet key)")
        return self
