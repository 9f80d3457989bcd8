"""The notification port: offers, reminders and escalations reach people away from a screen.

A service records the intent with ``notify`` in its unit of work; the ``notification_dispatcher``
task delivers it through the listed channels (signed webhook, SMTP e-mail, in-app inbox) and
records every try. Texts are fixed per kind and carry only a link and a deadline.
"""

from huddle_runtime.notifications.addresses import (
    ChannelAddress,
    ChannelKey,
    EmailAddress,
    InboxAddress,
    SealingError,
    WebhookAddress,
    open_channels,
    seal_channels,
)
from huddle_runtime.notifications.channels import (
    Attempt,
    InboxChannel,
    SmtpChannel,
    WebhookChannel,
)
from huddle_runtime.notifications.dispatcher import (
    SYSTEM_SCOPE,
    NotificationDispatcher,
    notification_dispatcher,
)
from huddle_runtime.notifications.model import (
    KINDS,
    LINK_PATTERN,
    DeliveryMode,
    Message,
    Notification,
    NotificationKind,
    Rendered,
    message_for,
    render,
)
from huddle_runtime.notifications.settings import NotificationSettings
from huddle_runtime.notifications.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    signature_header,
    verify_signature,
)
from huddle_runtime.notifications.store import (
    DeliveryRecord,
    InboxItem,
    delivery_log,
    inbox,
    mark_read,
    notification_status,
    notify,
)

__all__ = [
    "DELIVERY_HEADER",
    "KINDS",
    "LINK_PATTERN",
    "SIGNATURE_HEADER",
    "SYSTEM_SCOPE",
    "Attempt",
    "ChannelAddress",
    "ChannelKey",
    "DeliveryMode",
    "DeliveryRecord",
    "EmailAddress",
    "InboxAddress",
    "InboxChannel",
    "InboxItem",
    "Message",
    "Notification",
    "NotificationDispatcher",
    "NotificationKind",
    "NotificationSettings",
    "Rendered",
    "SealingError",
    "SmtpChannel",
    "WebhookAddress",
    "WebhookChannel",
    "delivery_log",
    "inbox",
    "mark_read",
    "message_for",
    "notification_dispatcher",
    "notification_status",
    "notify",
    "open_channels",
    "render",
    "seal_channels",
    "signature_header",
    "verify_signature",
]
