"""Notification settings (``HUDDLE_NOTIFY_*``), beside the shared ServiceSettings."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, MultiFernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_CHANNEL_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"huddle-local-notification-channel-key").digest()
).decode()


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUDDLE_NOTIFY_", extra="ignore", validate_by_name=True
    )

    # Where the links in texts point: the app's origin (and path prefix), no trailing slash.
    base_url: str = "http://127.0.0.1:8000"
    # No host: the e-mail channel fails at once and the next channel is tried.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = "huddle@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    # Tries per channel and notification (5xx, timeouts, refused connections, SMTP 4xx).
    max_attempts: int = Field(default=3, ge=1, le=10)
    # First pause between tries; doubles each time.
    retry_backoff_seconds: float = Field(default=0.5, ge=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=1000)
    # Notifications delivered at once; each holds a pool connection while it is sent.
    concurrency: int = Field(default=4, ge=1, le=32)
    # Fernet key(s) sealing channel addresses; comma-separated to rotate (the first one seals).
    channel_key: SecretStr = SecretStr(_DEV_CHANNEL_KEY)

    @field_validator("base_url")
    @classmethod
    def _absolute_origin(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
            raise ValueError("HUDDLE_NOTIFY_BASE_URL must be an http(s) URL without query")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _keys_are_fernet(self) -> NotificationSettings:
        for part in self.channel_key.get_secret_value().split(","):
            try:
                Fernet(part.strip().encode())
            except ValueError as exc:
                raise ValueError(
                    "HUDDLE_NOTIFY_CHANNEL_KEY must be Fernet keys (32 url-safe base64 bytes)"
                ) from exc
        if self.smtp_username and self.smtp_password is None:
            raise ValueError("HUDDLE_NOTIFY_SMTP_USERNAME needs HUDDLE_NOTIFY_SMTP_PASSWORD")
        return self

    def refuse_development_defaults(self) -> NotificationSettings:
        """Called in production: a known key or a plain-http link is refused."""
        if _DEV_CHANNEL_KEY in self.channel_key.get_secret_value():
            raise ValueError("HUDDLE_NOTIFY_CHANNEL_KEY must be set to a real key in production")
        if not self.base_url.startswith("https://"):
            raise ValueError("HUDDLE_NOTIFY_BASE_URL must be https in production")
        return self

    def channel_fernet(self) -> MultiFernet:
        keys = self.channel_key.get_secret_value().split(",")
        return MultiFernet([Fernet(k.strip().encode()) for k in keys])
