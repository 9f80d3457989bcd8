"""What a notification may say: a kind, a link and a deadline, rendered from fixed words.

No field is free text, so no caller can put a name, a diagnosis or a sentence about an event into
a page, an e-mail or an inbox item: the text is chosen by ``kind`` and only the link (a path of
letters, digits, ``/``, ``_`` and ``-``) and the deadline are filled in.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from huddle_contracts.vocabulary import PSEUDONYM_PATTERN, HospitalId, NetworkId
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

NotificationKind = Literal["offer", "offer_reminder", "escalation", "check_in_prompt"]
KINDS: tuple[str, ...] = get_args(NotificationKind)

LINK_PATTERN = r"^/[A-Za-z0-9/_-]*$"
# fullmatch: Python's ``$`` would also accept a trailing newline.
_LINK = re.compile(r"/[A-Za-z0-9/_-]*")
_MAX_LINK = 512

# A pseudonym, or a role address such as ``coordinators:st-mary`` (role, then a slug).
ROLE_ADDRESS_PATTERN = r"^[a-z][a-z_]{0,31}:[a-z0-9][a-z0-9-]{0,62}$"
_RECIPIENT = re.compile(f"(?:{PSEUDONYM_PATTERN[1:-1]})|(?:{ROLE_ADDRESS_PATTERN[1:-1]})")

# (subject, opening sentence) per kind: the only words a notification can carry.
_WORDING: dict[str, tuple[str, str]] = {
    "offer": ("Huddle: new peer-support request", "You have a new peer-support request."),
    "offer_reminder": (
        "Huddle: a peer-support request is waiting",
        "A peer-support request is still waiting for your answer.",
    ),
    "escalation": (
        "Huddle: a peer-support request needs attention",
        "A peer-support request needs a coordinator's attention.",
    ),
    "check_in_prompt": (
        "Huddle: a colleague may welcome a check-in",
        "A colleague in your team may welcome a check-in.",
    ),
}
assert set(_WORDING) == set(KINDS), "every kind needs its fixed wording"

DeliveryMode = Literal["fallback", "all"]
"""``fallback``: try the channels in order and stop at the first that delivers.
``all``: try every channel; a failed one does not stop the next."""


class Notification(BaseModel):
    """One message to one recipient; nothing in it is free text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: NotificationKind
    recipient: Annotated[str, Field(max_length=100)]
    network_id: NetworkId
    hospital_id: HospitalId | None = None
    link: Annotated[str, Field(max_length=_MAX_LINK)]
    respond_by: AwareDatetime | None = None

    @field_validator("link")
    @classmethod
    def _link_is_a_plain_path(cls, value: str) -> str:
        if not _LINK.fullmatch(value):
            raise ValueError(f"link must be a relative app path matching {LINK_PATTERN}")
        return value

    @field_validator("recipient")
    @classmethod
    def _recipient_is_a_pseudonym_or_role(cls, value: str) -> str:
        if not _RECIPIENT.fullmatch(value):
            raise ValueError("recipient must be a pseudonym or a role address like 'role:slug'")
        return value


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    url: str


def render(notification: Notification, *, base_url: str) -> Rendered:
    """The fixed words for the kind, the absolute link and (if any) the deadline in UTC."""
    subject, opening = _WORDING[notification.kind]
    url = base_url.rstrip("/") + notification.link
    text = f"{opening} Open: {url}"
    if notification.respond_by is not None:
        text += f" Please respond by {format_deadline(notification.respond_by)}."
    return Rendered(subject=subject, text=text, url=url)


def format_deadline(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Message:
    """A notification ready to send: its id (the receivers' de-duplication key) and words."""

    id: uuid.UUID
    notification: Notification
    rendered: Rendered

    @property
    def subject(self) -> str:
        return self.rendered.subject

    @property
    def text(self) -> str:
        return self.rendered.text

    def webhook_body(self) -> bytes:
        """``{id, kind, link, respond_by, text}``; ``link`` is the absolute URL to open."""
        respond_by = self.notification.respond_by
        payload = {
            "id": str(self.id),
            "kind": self.notification.kind,
            "link": self.rendered.url,
            "respond_by": respond_by.astimezone(UTC).isoformat() if respond_by else None,
            "text": self.rendered.text,
        }
        return json.dumps(payload, separators=(",", ":")).encode()


def message_for(
    notification_id: uuid.UUID, notification: Notification, *, base_url: str
) -> Message:
    return Message(notification_id, notification, render(notification, base_url=base_url))
