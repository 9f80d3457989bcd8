"""Where a notification goes, resolved by the service that holds contact details, and sealed.

E-mail addresses, webhook URLs and webhook secrets are encrypted (Fernet) before they reach the
``notification.channels`` column; only the channel's name stays readable, for operations.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator

ChannelName = Literal["webhook", "email", "inbox"]

# Deliberately plain: one mailbox, no display name, no spaces or line breaks (header injection).
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class WebhookAddress(BaseModel):
    """A hospital's paging or SMS gateway: an https endpoint and the secret that signs for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Literal["webhook"] = "webhook"
    url: str
    secret: SecretStr = Field(min_length=16)

    @field_validator("url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        url = urlsplit(value)
        loopback = url.hostname in _LOOPBACK
        if not url.hostname or not (url.scheme == "https" or (url.scheme == "http" and loopback)):
            raise ValueError("a webhook URL must be https (plain http only on loopback)")
        return value


class EmailAddress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Literal["email"] = "email"
    to: str = Field(max_length=254)

    @field_validator("to")
    @classmethod
    def _one_plain_mailbox(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise ValueError("not a plain e-mail address")
        return value


class InboxAddress(BaseModel):
    """The recipient's in-app inbox (the notification's own recipient)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Literal["inbox"] = "inbox"


ChannelAddress = Annotated[
    WebhookAddress | EmailAddress | InboxAddress, Field(discriminator="channel")
]
_ADDRESS: TypeAdapter[WebhookAddress | EmailAddress | InboxAddress] = TypeAdapter(ChannelAddress)

ChannelKey = Fernet | MultiFernet


class SealingError(ValueError):
    """A stored channel list that cannot be opened with the key (or was moved between rows)."""


def seal_channels(
    channels: Sequence[WebhookAddress | EmailAddress | InboxAddress],
    *,
    key: ChannelKey,
    notification_id: uuid.UUID,
) -> list[dict[str, str]]:
    """The jsonb value to store: the channel name in clear, everything else encrypted.

    The notification id is sealed with each address, so a sealed entry copied to another row
    does not open there.
    """
    sealed: list[dict[str, str]] = []
    for address in channels:
        entry: dict[str, str] = {"channel": address.channel}
        if not isinstance(address, InboxAddress):
            plain = _plain(address)
            token = key.encrypt(
                json.dumps({"notification": str(notification_id), "address": plain}).encode()
            )
            entry["sealed"] = token.decode()
        sealed.append(entry)
    return sealed


def open_channels(
    stored: Sequence[dict[str, Any]], *, key: ChannelKey, notification_id: uuid.UUID
) -> list[WebhookAddress | EmailAddress | InboxAddress]:
    opened: list[WebhookAddress | EmailAddress | InboxAddress] = []
    for entry in stored:
        if entry.get("channel") == "inbox":
            opened.append(InboxAddress())
            continue
        try:
            content = json.loads(key.decrypt(str(entry["sealed"]).encode()))
        except (InvalidToken, KeyError, ValueError) as exc:
            raise SealingError("a sealed channel address cannot be opened with this key") from exc
        if content.get("notification") != str(notification_id):
            raise SealingError("a sealed channel address belongs to another notification")
        opened.append(_ADDRESS.validate_python(content["address"]))
    return opened


def _plain(address: WebhookAddress | EmailAddress) -> dict[str, str]:
    if isinstance(address, WebhookAddress):
        return {
            "channel": "webhook",
            "url": address.url,
            "secret": address.secret.get_secret_value(),
        }
    return {"channel": "email", "to": address.to}
