"""The channel adapters: a signed webhook, e-mail over SMTP, and the in-app inbox.

Each ``deliver`` returns every try it made, in order, as ``Attempt``s; the last one tells whether
the channel delivered. Error texts are built here from status codes and exception class names
only, never from exception messages, which can quote an address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal

import aiosmtplib
import asyncpg
import httpx
from pydantic import SecretStr

from huddle_runtime.notifications.model import Message
from huddle_runtime.notifications.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

Outcome = Literal["delivered", "failed"]
Sleep = Callable[[float], Awaitable[None]]
_MAX_BACKOFF_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    error: str | None = None
    at: datetime = field(default_factory=_now)


def delivered(attempts: list[Attempt]) -> bool:
    return bool(attempts) and attempts[-1].outcome == "delivered"


def _backoff(first: float, tries_so_far: int) -> float:
    return min(first * 2.0 ** (tries_so_far - 1), _MAX_BACKOFF_SECONDS)


def _secret(value: str | SecretStr | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class WebhookChannel:
    """POSTs ``{id, kind, link, respond_by, text}`` signed with the endpoint's secret.

    5xx answers, timeouts and unreachable endpoints are tried again (``max_attempts`` in all,
    with doubling pauses); any other non-2xx answer is final. Redirects are not followed.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | SecretStr,
        *,
        timeout_seconds: float = 5.0,
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._url = url
        self._secret = _secret(secret) or ""
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._client = client
        self._sleep = sleep

    async def deliver(self, message: Message) -> list[Attempt]:
        if self._client is not None:
            return await self._deliver(self._client, message)
        async with httpx.AsyncClient(follow_redirects=False) as client:
            return await self._deliver(client, message)

    async def _deliver(self, client: httpx.AsyncClient, message: Message) -> list[Attempt]:
        body = message.webhook_body()
        attempts: list[Attempt] = []
        for n in range(1, self._max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "huddle-notifications/1",
                # Signed per try, so a retry's timestamp is fresh for the receiver's tolerance.
                SIGNATURE_HEADER: signature_header(self._secret, body),
                DELIVERY_HEADER: str(message.id),
            }
            try:
                response = await client.post(
                    self._url, content=body, headers=headers, timeout=self._timeout
                )
            except httpx.TimeoutException as exc:
                error, again = f"timeout ({type(exc).__name__})", True
            except httpx.TransportError as exc:
                error, again = f"unreachable ({type(exc).__name__})", True
            else:
                if response.is_success:
                    attempts.append(Attempt("delivered"))
                    return attempts
                error, again = f"HTTP {response.status_code}", response.status_code >= 500
            attempts.append(Attempt("failed", error))
            if not again or n == self._max_attempts:
                break
            await self._sleep(_backoff(self._backoff, n))
        return attempts


class SmtpChannel:
    """E-mail with a generic subject and the fixed text, through an SMTP relay (aiosmtplib).

    Connection failures, timeouts and 4xx replies are tried again; 5xx replies are final.
    """

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | SecretStr | None = None,
        starttls: bool = False,
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = _secret(password)
        self._starttls = starttls
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def email(self, message: Message, to: str) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = to
        email["Subject"] = message.subject
        email["Date"] = format_datetime(_now())
        # The same Message-ID on every try lets mail systems drop a duplicate.
        email["Message-ID"] = f"<{message.id}@huddle.notifications>"
        # RFC 3834: no out-of-office replies to a machine.
        email["Auto-Submitted"] = "auto-generated"
        email[DELIVERY_HEADER] = str(message.id)
        email.set_content(message.text)
        return email

    async def deliver(self, message: Message, to: str) -> list[Attempt]:
        email = self.email(message, to)
        attempts: list[Attempt] = []
        for n in range(1, self._max_attempts + 1):
            try:
                await aiosmtplib.send(
                    email,
                    hostname=self._host,
                    port=self._port,
                    username=self._username,
                    password=self._password,
                    start_tls=self._starttls,
                    timeout=self._timeout,
                )
            except aiosmtplib.SMTPRecipientsRefused:
                error, again = "SMTP recipient refused", False
            except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
                error, again = f"timeout ({type(exc).__name__})", True
            except aiosmtplib.SMTPResponseException as exc:
                error, again = f"SMTP {exc.code}", 400 <= exc.code < 500
            except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
                error, again = f"unreachable ({type(exc).__name__})", True
            except aiosmtplib.SMTPException as exc:
                error, again = f"SMTP error ({type(exc).__name__})", False
            else:
                attempts.append(Attempt("delivered"))
                return attempts
            attempts.append(Attempt("failed", error))
            if not again or n == self._max_attempts:
                break
            await self._sleep(_backoff(self._backoff, n))
        return attempts


class InboxChannel:
    """The row the recipient's app polls (``inbox``), in the dispatcher's transaction."""

    name = "inbox"

    async def deliver(self, conn: asyncpg.Connection, message: Message) -> list[Attempt]:
        n = message.notification
        await conn.execute(
            "INSERT INTO notification_inbox (network_id, recipient, notification_id)"
            " VALUES ($1, $2, $3) ON CONFLICT (notification_id) DO NOTHING",
            n.network_id,
            n.recipient,
            message.id,
        )
        return [Attempt("delivered")]
