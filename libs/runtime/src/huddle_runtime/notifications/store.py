"""The notification tables: ``notify`` (the intent), the inbox API and the delivery log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from huddle_runtime.notifications.addresses import (
    ChannelKey,
    EmailAddress,
    InboxAddress,
    WebhookAddress,
    seal_channels,
)
from huddle_runtime.notifications.model import DeliveryMode, Notification
from huddle_runtime.unit_of_work import UnitOfWork


def _connection(uow_or_conn: UnitOfWork | asyncpg.Connection) -> asyncpg.Connection:
    if isinstance(uow_or_conn, UnitOfWork):
        return uow_or_conn.conn
    return uow_or_conn


async def notify(
    uow_or_conn: UnitOfWork | asyncpg.Connection,
    notification: Notification,
    channels: Sequence[WebhookAddress | EmailAddress | InboxAddress],
    *,
    key: ChannelKey,
    mode: DeliveryMode = "fallback",
    notification_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record the intent to notify, in the caller's transaction: it exists iff that commits.

    ``channels`` are tried in order by the dispatcher; in ``fallback`` mode it stops at the first
    that delivers, in ``all`` mode it tries each. Addresses are sealed with ``key``. Pass a
    deterministic ``notification_id`` (e.g. ``uuid5`` of the offer and kind) to make a repeated
    call a no-op; the id is returned either way.
    """
    if not channels:
        raise ValueError("a notification needs at least one channel")
    if sum(isinstance(c, InboxAddress) for c in channels) > 1:
        raise ValueError("the inbox channel may be listed once")
    tenant = uow_or_conn.tenant if isinstance(uow_or_conn, UnitOfWork) else None
    if tenant is not None and tenant.network_id != notification.network_id:
        raise PermissionError("a notification must belong to the unit of work's network")
    nid = notification_id or uuid.uuid4()
    sealed = seal_channels(channels, key=key, notification_id=nid)
    await _connection(uow_or_conn).execute(
        """
        INSERT INTO notification
            (id, network_id, hospital_id, kind, recipient, link, respond_by, channels, mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)
        ON CONFLICT (id) DO NOTHING
        """,
        nid,
        notification.network_id,
        notification.hospital_id,
        notification.kind,
        notification.recipient,
        notification.link,
        notification.respond_by,
        json.dumps(sealed),
        mode,
    )
    return nid


@dataclass(frozen=True)
class InboxItem:
    notification_id: uuid.UUID
    kind: str
    link: str
    respond_by: datetime | None
    created_at: datetime
    read_at: datetime | None


async def inbox(
    uow_or_conn: UnitOfWork | asyncpg.Connection,
    recipient: str,
    *,
    unread_only: bool = False,
    limit: int = 100,
) -> list[InboxItem]:
    """The recipient's inbox, newest first (within the connection's tenant scope)."""
    rows = await _connection(uow_or_conn).fetch(
        """
        SELECT i.notification_id, n.kind, n.link, n.respond_by, i.created_at, i.read_at
          FROM notification_inbox i
          JOIN notification n ON n.id = i.notification_id
         WHERE i.recipient = $1 AND (NOT $2 OR i.read_at IS NULL)
         ORDER BY i.created_at DESC, i.notification_id
         LIMIT $3
        """,
        recipient,
        unread_only,
        limit,
    )
    return [InboxItem(**dict(row)) for row in rows]


async def mark_read(
    uow_or_conn: UnitOfWork | asyncpg.Connection, recipient: str, notification_id: uuid.UUID
) -> bool:
    """Mark the recipient's item read; False if it is not theirs (or does not exist)."""
    found = await _connection(uow_or_conn).fetchval(
        """
        UPDATE notification_inbox SET read_at = coalesce(read_at, clock_timestamp())
         WHERE notification_id = $1 AND recipient = $2
        RETURNING true
        """,
        notification_id,
        recipient,
    )
    return bool(found)


@dataclass(frozen=True)
class DeliveryRecord:
    attempt: int
    channel: str
    position: int
    at: datetime
    outcome: str
    error: str | None


async def delivery_log(
    uow_or_conn: UnitOfWork | asyncpg.Connection, notification_id: uuid.UUID
) -> list[DeliveryRecord]:
    """Every try the dispatcher recorded for a notification, in order."""
    rows = await _connection(uow_or_conn).fetch(
        "SELECT attempt, channel, position, at, outcome, error FROM notification_delivery"
        " WHERE notification_id = $1 ORDER BY attempt",
        notification_id,
    )
    return [DeliveryRecord(**dict(row)) for row in rows]


async def notification_status(
    uow_or_conn: UnitOfWork | asyncpg.Connection, notification_id: uuid.UUID
) -> str | None:
    """``pending``, ``delivered``, ``failed``, or None if there is no such notification."""
    status: str | None = await _connection(uow_or_conn).fetchval(
        "SELECT status FROM notification WHERE id = $1", notification_id
    )
    return status
