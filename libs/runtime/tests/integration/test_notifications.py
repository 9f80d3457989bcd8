"""Notifications end to end: the real PostgreSQL, a real local HTTP server and SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cryptography.fernet import Fernet
from huddle_e2e.receivers import (
    Smtp,
    WebhookReceiver,
    free_port,
    smtp_receiver,
    webhook_receiver,
)
from huddle_runtime import database
from huddle_runtime.migrations import migrate, runtime_migrations, tenant_tables_without_forced_rls
from huddle_runtime.notifications import (
    DELIVERY_HEADER,
    EmailAddress,
    InboxAddress,
    Notification,
    NotificationDispatcher,
    NotificationSettings,
    WebhookAddress,
    delivery_log,
    inbox,
    mark_read,
    notification_dispatcher,
    notification_status,
    notify,
)
from huddle_runtime.settings import DatabaseSettings, ServiceSettings
from huddle_runtime.tenancy import Tenant, apply_system_scope
from huddle_runtime.unit_of_work import UnitOfWork, unit_of_work

pytestmark = pytest.mark.integration

SECRET = "whsec-local-0123456789abcdef"
PEER = "p_" + "c0" * 16
PEER_EMAIL = "jane.doe@st-mary.example"
BASE = "https://huddle.example"


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookReceiver]:
    async with webhook_receiver(SECRET) as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with smtp_receiver() as receiver:
        yield receiver


@dataclass
class Service:
    settings: ServiceSettings
    pool: asyncpg.Pool
    key: Fernet

    def uow(self, network: str) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self.pool, Tenant(network), source="/huddle/test")


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    """A fresh schema with only the runtime's tables, used through the RLS-bound service role."""
    settings = ServiceSettings(
        service=f"notify_{uuid.uuid4().hex[:8]}",
        environment="test",
        database=DatabaseSettings(url=database_url, pool_max_size=8),
    )
    conn = await database.connect(settings)
    try:
        await migrate(
            conn,
            schema=settings.schema_name,
            role=settings.db_role,
            migrations=runtime_migrations(),
        )
    finally:
        await conn.close()
    pool = await database.create_pool(settings)
    yield Service(settings, pool, Fernet(NotificationSettings().channel_key.get_secret_value()))
    await pool.close()


@pytest.fixture
def notify_settings(smtp: Smtp) -> NotificationSettings:
    return NotificationSettings(
        base_url=BASE,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_sender="huddle@huddle.example",
        webhook_timeout_seconds=2,
        smtp_timeout_seconds=2,
        retry_backoff_seconds=0.01,
        poll_seconds=0.05,
    )


def an_offer(network: str = "north-coast", recipient: str = PEER) -> Notification:
    return Notification(
        kind="offer",
        recipient=recipient,
        network_id=network,
        hospital_id="st-mary",
        link=f"/offers/{uuid.uuid4()}",
        respond_by=datetime.now(UTC) + timedelta(minutes=30),
    )


async def test_a_notification_goes_out_by_webhook_email_and_inbox(
    service: Service, webhook: WebhookReceiver, smtp: Smtp, notify_settings: NotificationSettings
) -> None:
    offer = an_offer()
    channels = [
        WebhookAddress(url=webhook.url, secret=SECRET),
        EmailAddress(to=PEER_EMAIL),
        InboxAddress(),
    ]
    async with service.uow("north-coast") as uow:
        nid = await notify(uow, offer, channels, key=service.key, mode="all")

    assert await NotificationDispatcher(service.pool, notify_settings).run_once() == 1

    [hook] = webhook.received
    assert hook["verified"] and hook["delivery"] == str(nid)
    assert hook["body"]["id"] == str(nid) and hook["body"]["kind"] == "offer"
    assert hook["body"]["link"] == BASE + offer.link
    assert hook["body"]["text"].startswith(
        f"You have a new peer-support request. Open: {BASE}{offer.link} Please respond by "
    )
    [(rcpt, mail)] = smtp.mailbox.messages
    assert rcpt == [PEER_EMAIL]
    assert mail["Subject"] == "Huddle: new peer-support request"
    assert mail[DELIVERY_HEADER] == str(nid)
    assert mail.get_payload(decode=True).decode().strip() == hook["body"]["text"]

    async with service.uow("north-coast") as uow:
        [item] = await inbox(uow, PEER)
        assert (item.notification_id, item.kind, item.link) == (nid, "offer", offer.link)
        assert item.read_at is None
        assert not await mark_read(uow, "p_" + "ff" * 16, nid)
        assert await mark_read(uow, PEER, nid)
        assert await inbox(uow, PEER, unread_only=True) == []
        log = await delivery_log(uow, nid)
        assert await notification_status(uow, nid) == "delivered"
    assert [(r.attempt, r.channel, r.outcome) for r in log] == [
        (1, "webhook", "delivered"),
        (2, "email", "delivered"),
        (3, "inbox", "delivered"),
    ]


async def test_a_webhook_answering_500_is_retried_and_then_nothing_else_is_tried(
    service: Service, webhook: WebhookReceiver, smtp: Smtp, notify_settings: NotificationSettings
) -> None:
    webhook.statuses = [500]
    channels = [WebhookAddress(url=webhook.url, secret=SECRET), EmailAddress(to=PEER_EMAIL)]
    async with service.uow("north-coast") as uow:
        nid = await notify(uow, an_offer(), channels, key=service.key)

    await NotificationDispatcher(service.pool, notify_settings).run_once()

    assert [(r["status"], r["verified"], r["delivery"]) for r in webhook.received] == [
        (500, True, str(nid)),
        (200, True, str(nid)),
    ]
    assert smtp.mailbox.messages == []
    async with service.uow("north-coast") as uow:
        log = await delivery_log(uow, nid)
    assert [(r.channel, r.outcome, r.error) for r in log] == [
        ("webhook", "failed", "HTTP 500"),
        ("webhook", "delivered", None),
    ]


async def test_a_webhook_that_is_down_falls_back_to_email(
    service: Service, smtp: Smtp, notify_settings: NotificationSettings
) -> None:
    down = f"http://127.0.0.1:{free_port()}/hooks/paging"
    channels = [
        WebhookAddress(url=down, secret=SECRET),
        EmailAddress(to=PEER_EMAIL),
        InboxAddress(),
    ]
    async with service.uow("north-coast") as uow:
        nid = await notify(uow, an_offer(), channels, key=service.key)

    await NotificationDispatcher(service.pool, notify_settings).run_once()

    assert [rcpt for rcpt, _ in smtp.mailbox.messages] == [[PEER_EMAIL]]
    async with service.uow("north-coast") as uow:
        log = await delivery_log(uow, nid)
        assert await inbox(uow, PEER) == []  # fallback stops at the first channel that delivers
        assert await notification_status(uow, nid) == "delivered"
    assert [(r.channel, r.outcome, r.error) for r in log] == [
        ("webhook", "failed", "unreachable (ConnectError)"),
    ] * 3 + [("email", "delivered", None)]


async def test_a_4xx_is_final_and_every_channel_failing_fails_the_notification(
    service: Service, webhook: WebhookReceiver, notify_settings: NotificationSettings
) -> None:
    webhook.statuses = [410, 200]
    no_smtp = notify_settings.model_copy(update={"smtp_host": None})
    channels = [WebhookAddress(url=webhook.url, secret=SECRET), EmailAddress(to=PEER_EMAIL)]
    async with service.uow("north-coast") as uow:
        nid = await notify(uow, an_offer(), channels, key=service.key)

    dispatcher = NotificationDispatcher(service.pool, no_smtp)
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0

    assert [r["status"] for r in webhook.received] == [410]
    async with service.uow("north-coast") as uow:
        log = await delivery_log(uow, nid)
        assert await notification_status(uow, nid) == "failed"
    assert [(r.channel, r.error) for r in log] == [
        ("webhook", "HTTP 410"),
        ("email", "e-mail is not configured (HUDDLE_NOTIFY_SMTP_HOST)"),
    ]


async def test_nothing_is_sent_twice_across_rounds_replicas_and_restarts(
    service: Service, webhook: WebhookReceiver, smtp: Smtp, notify_settings: NotificationSettings
) -> None:
    channels = [WebhookAddress(url=webhook.url, secret=SECRET), EmailAddress(to=PEER_EMAIL)]
    ids = []
    for network in ("north-coast", "south-bay"):
        async with service.uow(network) as uow:
            ids.append(await notify(uow, an_offer(network), channels, key=service.key, mode="all"))
    # The same intent recorded again (a retried handler) is one notification.
    async with service.uow("north-coast") as uow:
        again = await notify(
            uow, an_offer(), channels, key=service.key, mode="all", notification_id=ids[0]
        )
    assert again == ids[0]

    replicas = [NotificationDispatcher(service.pool, notify_settings) for _ in range(3)]
    handled = await asyncio.gather(*(r.run_once() for r in replicas))
    assert sum(handled) == 2
    for _ in range(2):
        assert await NotificationDispatcher(service.pool, notify_settings).run_once() == 0

    assert sorted(r["delivery"] for r in webhook.received) == sorted(str(i) for i in ids)
    assert len(smtp.mailbox.messages) == 2


async def test_the_stored_channel_list_holds_no_address_or_secret_in_clear(
    service: Service, admin_conn: asyncpg.Connection, notify_settings: NotificationSettings
) -> None:
    down = f"http://127.0.0.1:{free_port()}/hooks/pager-st-mary"
    channels = [WebhookAddress(url=down, secret=SECRET), EmailAddress(to=PEER_EMAIL)]
    async with service.uow("north-coast") as uow:
        nid = await notify(uow, an_offer(), channels, key=service.key)
    await NotificationDispatcher(
        service.pool, notify_settings.model_copy(update={"smtp_port": free_port()})
    ).run_once()

    schema = service.settings.schema_name
    stored = await admin_conn.fetchval(
        f'SELECT channels::text FROM "{schema}".notification WHERE id = $1', nid
    )
    assert json.loads(stored)[0]["channel"] == "webhook"
    everything = " ".join(
        [
            await admin_conn.fetchval(
                f"SELECT string_agg(to_jsonb(n)::text, ' ') FROM \"{schema}\".notification n"
            ),
            await admin_conn.fetchval(
                f"SELECT string_agg(to_jsonb(d)::text, ' ')"
                f' FROM "{schema}".notification_delivery d'
            ),
        ]
    )
    for clear in (PEER_EMAIL, "jane.doe", SECRET, "pager-st-mary"):
        assert clear not in everything


async def test_row_level_security_keeps_notifications_to_their_network(
    service: Service, notify_settings: NotificationSettings
) -> None:
    async with service.uow("north-coast") as uow:
        nid = await notify(uow, an_offer(), [InboxAddress()], key=service.key)
    with pytest.raises(PermissionError):
        async with service.uow("south-bay") as uow:
            await notify(uow, an_offer("north-coast"), [InboxAddress()], key=service.key)
    await NotificationDispatcher(service.pool, notify_settings).run_once()

    async with service.uow("south-bay") as uow:
        assert await inbox(uow, PEER) == []
        assert await notification_status(uow, nid) is None
        assert await delivery_log(uow, nid) == []
        assert not await mark_read(uow, PEER, nid)
    # The dispatcher's scope reads pending work across networks, and can change nothing.
    async with service.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "notifications")
        assert await conn.fetchval("SELECT count(*) FROM notification") == 1
        assert await conn.fetchval("SELECT count(*) FROM notification_inbox") == 0
        assert await conn.execute("UPDATE notification SET status = 'pending'") == "UPDATE 0"
    async with service.pool.acquire() as conn:
        schema = service.settings.schema_name
        assert await tenant_tables_without_forced_rls(conn, schema) == []


async def test_a_notification_sealed_with_an_unknown_key_fails_once(
    service: Service, notify_settings: NotificationSettings
) -> None:
    stranger = Fernet(Fernet.generate_key())
    async with service.uow("north-coast") as uow:
        nid = await notify(uow, an_offer(), [EmailAddress(to=PEER_EMAIL)], key=stranger)
    dispatcher = NotificationDispatcher(service.pool, notify_settings)
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    async with service.uow("north-coast") as uow:
        assert await notification_status(uow, nid) == "failed"


async def test_a_dispatcher_stopped_mid_send_leaves_it_pending_and_the_resend_has_the_same_id(
    service: Service, webhook: WebhookReceiver, notify_settings: NotificationSettings
) -> None:
    webhook.hold = asyncio.Event()
    async with service.uow("north-coast") as uow:
        nid = await notify(
            uow, an_offer(), [WebhookAddress(url=webhook.url, secret=SECRET)], key=service.key
        )
    crashed = asyncio.create_task(NotificationDispatcher(service.pool, notify_settings).run_once())
    async with asyncio.timeout(10):
        while not webhook.received:
            await asyncio.sleep(0.02)
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed
    async with service.uow("north-coast") as uow:
        assert await notification_status(uow, nid) == "pending"
        assert await delivery_log(uow, nid) == []

    webhook.hold.set()
    assert await NotificationDispatcher(service.pool, notify_settings).run_once() == 1
    # At-least-once in that window only: the receiver de-duplicates on X-Huddle-Delivery.
    assert [r["delivery"] for r in webhook.received] == [str(nid), str(nid)]
    async with service.uow("north-coast") as uow:
        assert await notification_status(uow, nid) == "delivered"


async def test_the_dispatcher_task_delivers_while_the_service_runs_and_stops_with_it(
    service: Service, webhook: WebhookReceiver, notify_settings: NotificationSettings
) -> None:
    runtime = types.SimpleNamespace(
        pool=service.pool,
        settings=service.settings,
        source="/huddle/test",
        stopping=asyncio.Event(),
    )
    task_factory = notification_dispatcher(notify_settings)
    assert task_factory.__name__ == "notifications"
    task = asyncio.create_task(task_factory(runtime))  # type: ignore[arg-type]
    async with service.uow("north-coast") as uow:
        nid = await notify(
            uow, an_offer(), [WebhookAddress(url=webhook.url, secret=SECRET)], key=service.key
        )
    async with asyncio.timeout(10):
        while not webhook.received:
            await asyncio.sleep(0.02)
    runtime.stopping.set()
    await asyncio.wait_for(task, 5)
    assert [r["delivery"] for r in webhook.received] == [str(nid)]


@pytest.fixture
async def admin_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()
