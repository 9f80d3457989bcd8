"""Delivers pending notifications: the background task a service lists in its ``tasks``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import structlog
from pydantic import ValidationError

from huddle_runtime.notifications.addresses import (
    EmailAddress,
    InboxAddress,
    SealingError,
    WebhookAddress,
    open_channels,
)
from huddle_runtime.notifications.channels import (
    Attempt,
    InboxChannel,
    SmtpChannel,
    WebhookChannel,
    delivered,
)
from huddle_runtime.notifications.model import Message, Notification, message_for
from huddle_runtime.notifications.settings import NotificationSettings
from huddle_runtime.tenancy import Tenant, apply_system_scope
from huddle_runtime.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from huddle_runtime.service import Runtime

log = structlog.get_logger(__name__)

SYSTEM_SCOPE = "notifications"


class NotificationDispatcher:
    """Polls pending notifications and delivers each, in order of creation.

    Guarantees. Each notification is handled in one transaction of its own network: the row is
    taken with ``FOR UPDATE SKIP LOCKED`` (so replicas never work on the same one), the channels
    are tried, every try is inserted into ``notification_delivery`` and the status set to
    ``delivered`` or ``failed``; then it commits. All state is in PostgreSQL, so a restart picks
    up whatever is still ``pending``. Once a delivery has been recorded (committed) the
    notification is never sent again. If the process dies (or is cancelled) after a channel
    accepted the message but before that commit, the notification is still pending and is sent
    again: delivery is at-least-once in that window only. The webhook's ``X-Huddle-Delivery``
    header and the e-mail's ``Message-ID`` carry the notification id, the same on every resend,
    so receivers can de-duplicate.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationSettings,
        *,
        source: str = "/huddle/notifications",
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._key = settings.channel_fernet()
        self._source = source
        self._http_client = http_client
        self._stopping = asyncio.Event()
        self._smtp = (
            SmtpChannel(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_sender,
                settings.smtp_username,
                settings.smtp_password,
                settings.smtp_starttls,
                timeout_seconds=settings.smtp_timeout_seconds,
                max_attempts=settings.max_attempts,
                backoff_seconds=settings.retry_backoff_seconds,
            )
            if settings.smtp_host
            else None
        )
        self._inbox = InboxChannel()

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Until ``stopping`` is set: a round, then a pause unless the round was a full batch."""
        if stopping is not None:
            self._stopping = stopping
        async with self._http() as client:
            while not self._stopping.is_set():
                full = False
                try:
                    found, handled = await self._round(client)
                    full = found >= self._settings.batch_size and handled > 0
                except Exception as exc:  # a bad round (database restart) must not end the task
                    log.warning("notification round failed", error=type(exc).__name__)
                if not full:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self._settings.poll_seconds)

    async def run_once(self) -> int:
        """One round over what is pending now; returns how many notifications it closed."""
        async with self._http() as client:
            _, handled = await self._round(client)
        return handled

    async def _round(self, client: httpx.AsyncClient) -> tuple[int, int]:
        async with self._pool.acquire() as conn, conn.transaction():
            await apply_system_scope(conn, SYSTEM_SCOPE)
            pending = await conn.fetch(
                "SELECT network_id, id FROM notification WHERE status = 'pending'"
                " ORDER BY created_at, id LIMIT $1",
                self._settings.batch_size,
            )
        gate = asyncio.Semaphore(self._settings.concurrency)

        async def one(network_id: str, notification_id: uuid.UUID) -> bool:
            async with gate:
                if self._stopping.is_set():
                    return False
                try:
                    return await self.deliver(network_id, notification_id, client=client)
                except Exception as exc:  # stays pending; tried again next round
                    log.warning(
                        "notification delivery failed",
                        notification=str(notification_id),
                        error=type(exc).__name__,
                    )
                    return False

        results = await asyncio.gather(*(one(r["network_id"], r["id"]) for r in pending))
        return len(pending), sum(results)

    async def deliver(
        self,
        network_id: str,
        notification_id: uuid.UUID,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> bool:
        """Deliver one notification if it is still pending and no one else holds it."""
        async with unit_of_work(self._pool, Tenant(network_id), source=self._source) as uow:
            conn = uow.conn
            row = await conn.fetchrow(
                "SELECT * FROM notification WHERE id = $1 AND status = 'pending'"
                " FOR UPDATE SKIP LOCKED",
                notification_id,
            )
            if row is None:
                return False
            try:
                notification = _notification(row)
                addresses = open_channels(
                    json.loads(row["channels"]), key=self._key, notification_id=notification_id
                )
            except (ValidationError, SealingError) as exc:
                # Retrying cannot help (a removed key, a row edited by hand): close it as failed.
                await _close(conn, notification_id, "failed", f"unusable ({type(exc).__name__})")
                log.error("notification unusable", notification=str(notification_id))
                return True
            message = message_for(notification_id, notification, base_url=self._settings.base_url)
            tried: list[tuple[str, int, Attempt]] = []  # (channel, position, attempt), in order
            ok_channels: list[str] = []
            for position, address in enumerate(addresses):
                attempts = await self._send(conn, message, address, client)
                tried += [(address.channel, position, a) for a in attempts]
                if delivered(attempts):
                    ok_channels.append(address.channel)
                    if row["mode"] == "fallback":
                        break
            status = "delivered" if ok_channels else "failed"
            await _close(
                conn, notification_id, status, None if ok_channels else "no channel", tried=tried
            )
        log.info(
            "notification closed",
            notification=str(notification_id),
            kind=notification.kind,
            status=status,
            channels=ok_channels,
            attempts=len(tried),
        )
        return True

    async def _send(
        self,
        conn: asyncpg.Connection,
        message: Message,
        address: WebhookAddress | EmailAddress | InboxAddress,
        client: httpx.AsyncClient | None,
    ) -> list[Attempt]:
        s = self._settings
        if isinstance(address, WebhookAddress):
            return await WebhookChannel(
                address.url,
                address.secret,
                timeout_seconds=s.webhook_timeout_seconds,
                max_attempts=s.max_attempts,
                backoff_seconds=s.retry_backoff_seconds,
                client=client,
            ).deliver(message)
        if isinstance(address, EmailAddress):
            if self._smtp is None:
                return [Attempt("failed", "e-mail is not configured (HUDDLE_NOTIFY_SMTP_HOST)")]
            return await self._smtp.deliver(message, address.to)
        return await self._inbox.deliver(conn, message)

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._http_client is not None:
            yield self._http_client
            return
        async with httpx.AsyncClient(follow_redirects=False) as client:
            yield client


def _notification(row: Any) -> Notification:
    return Notification(
        kind=row["kind"],
        recipient=row["recipient"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        link=row["link"],
        respond_by=row["respond_by"],
    )


async def _close(
    conn: asyncpg.Connection,
    notification_id: uuid.UUID,
    status: str,
    failure: str | None,
    *,
    tried: Sequence[tuple[str, int, Attempt]] = (),
) -> None:
    """Set the final status and record every try (numbered in order) in one statement."""
    await conn.execute(
        """WITH tried AS (
               INSERT INTO notification_delivery
                      (network_id, notification_id, attempt, channel, position, at, outcome, error)
               SELECT n.network_id, n.id, t.attempt, t.channel, t.position, t.at, t.outcome,
                      t.error
                 FROM notification n,
                      unnest($5::text[], $6::int[], $7::timestamptz[], $8::text[], $9::text[])
                      WITH ORDINALITY AS t (channel, position, at, outcome, error, attempt)
                WHERE n.id = $1)
           UPDATE notification SET status = $2, failure = $3, finished_at = $4 WHERE id = $1""",
        notification_id,
        status,
        failure,
        datetime.now(UTC),
        [channel for channel, _, _ in tried],
        [position for _, position, _ in tried],
        [a.at for _, _, a in tried],
        [a.outcome for _, _, a in tried],
        [a.error for _, _, a in tried],
    )


def notification_dispatcher(
    settings: NotificationSettings | None = None,
) -> Callable[[Runtime], Awaitable[None]]:
    """The task for ``ServiceDefinition.tasks``; settings are read at start when not given."""

    async def notifications(runtime: Runtime) -> None:
        # Built once by the service's `configure` when it needs them too; else read here.
        s = settings or runtime.state.get("notification_settings") or NotificationSettings()
        if runtime.settings.environment == "production":
            s.refuse_development_defaults()
        assert runtime.pool is not None, "the runtime is not started"
        dispatcher = NotificationDispatcher(runtime.pool, s, source=runtime.source)
        await dispatcher.run(runtime.stopping)

    return notifications
