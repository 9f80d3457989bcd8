"""Real local receivers for notifications, on 127.0.0.1 only: an HTTP server that verifies every
webhook signature, and an SMTP server (aiosmtpd) that keeps every message."""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from huddle_runtime.notifications import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class WebhookReceiver:
    """An ASGI endpoint that checks every signature and answers with scripted statuses."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = 0
        self.statuses: list[int] = []
        self.received: list[dict[str, Any]] = []
        # While set, requests wait for it: a receiver that has the message but has not answered.
        self.hold: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/paging"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        verified = verify_signature(self.secret, headers.get(SIGNATURE_HEADER.lower(), ""), body)
        status = (self.statuses.pop(0) if self.statuses else 200) if verified else 401
        self.received.append(
            {
                "delivery": headers.get(DELIVERY_HEADER.lower()),
                "verified": verified,
                "status": status,
                "body": json.loads(body),
            }
        )
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def webhook_receiver(secret: str) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    receiver.port = sock.getsockname()[1]
    config = uvicorn.Config(
        receiver, lifespan="off", log_config=None, access_log=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()


class Mailbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@dataclass
class Smtp:
    mailbox: Mailbox
    port: int
    controller: Any = field(repr=False, default=None)


@contextlib.contextmanager
def smtp_receiver() -> Iterator[Smtp]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp(mailbox, port, controller)
    finally:
        controller.stop()
