"""Reaching people who are not looking at a screen: the on-call peer is paged for each offer,
the hospital's coordinators for each escalation. Intake does it because it alone holds contact
details; the messages carry a link and a deadline, never anything clinical or identifying."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import structlog
from cryptography.fernet import Fernet, MultiFernet
from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import Event, MatchEscalated, OfferMade
from huddle_runtime.consumer import Handler, failure_reason
from huddle_runtime.notifications import (
    ChannelAddress,
    EmailAddress,
    InboxAddress,
    Notification,
    WebhookAddress,
    notify,
)
from huddle_runtime.notifications.model import NotificationKind
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant, apply_system_scope
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.application import request_journey as journey

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Pager:
    vault: ContactVault
    """Opens staff contact details and gateway secrets."""
    channel_key: Fernet | MultiFernet
    """Seals the resolved addresses inside each notification."""


async def gateway(uow: UnitOfWork, pager: Pager, hospital_id: str) -> WebhookAddress | None:
    row = await uow.conn.fetchrow(
        "SELECT url, sealed_secret FROM paging_gateway WHERE hospital_id = $1", hospital_id
    )
    return None if row is None else _webhook(pager, row)


def _webhook(pager: Pager, row: asyncpg.Record) -> WebhookAddress:
    return WebhookAddress(url=row["url"], secret=pager.vault.open_text(row["sealed_secret"]))


async def put_gateway(
    uow: UnitOfWork, pager: Pager, *, network_id: str, hospital_id: str, url: str, secret: str
) -> None:
    WebhookAddress(url=url, secret=secret)  # the same checks as at delivery: https, long secret
    await uow.conn.execute(
        """INSERT INTO paging_gateway (network_id, hospital_id, url, sealed_secret)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (network_id, hospital_id) DO UPDATE SET url = EXCLUDED.url,
               sealed_secret = EXCLUDED.sealed_secret, updated_at = clock_timestamp()""",
        network_id,
        hospital_id,
        url,
        pager.vault.seal_text(secret),
    )


async def page_person(
    uow: UnitOfWork,
    pager: Pager,
    *,
    kind: NotificationKind,
    recipient: str,
    network_id: str,
    hospital_id: str,
    link: str,
    respond_by: datetime | None,
    notification_id: UUID,
) -> UUID:
    """Every channel at once (a page is urgent): the gateway of the person's hospital, their
    e-mail from the directory, the app inbox. The same id never pages twice."""
    # The person's contact and their hospital's gateway (else the event's hospital's), in one read.
    row = await uow.conn.fetchrow(
        """SELECT s.sealed_contact, g.url, g.sealed_secret
             FROM (SELECT $2::text AS hospital_id) AS event
             LEFT JOIN staff s ON s.pseudonym = $1
             LEFT JOIN paging_gateway g
                    ON g.hospital_id = coalesce(s.hospital_id, event.hospital_id)""",
        recipient,
        hospital_id,
    )
    channels: list[ChannelAddress] = []
    if row["url"] is not None:
        channels.append(_webhook(pager, row))
    if row["sealed_contact"] is not None:
        contact = pager.vault.open(row["sealed_contact"])
        if contact.email:
            channels.append(EmailAddress(to=contact.email))
    channels.append(InboxAddress())
    return await notify(
        uow,
        Notification(
            kind=kind,
            recipient=recipient,
            network_id=network_id,
            hospital_id=hospital_id,
            link=link,
            respond_by=respond_by,
        ),
        channels,
        key=pager.channel_key,
        mode="all",
        notification_id=notification_id,
    )


async def page_peer(uow: UnitOfWork, pager: Pager, offer: OfferMade) -> UUID:
    await queue_reminder(uow, offer)
    return await page_person(
        uow,
        pager,
        kind="offer",
        recipient=offer.peer,
        network_id=offer.network_id,
        hospital_id=offer.hospital_id,
        link=f"/offers/{offer.offer_id}",
        respond_by=offer.respond_by,
        notification_id=uuid.uuid5(offer.offer_id, "offer"),  # a redelivered event pages once
    )


async def queue_reminder(uow: UnitOfWork, offer: OfferMade) -> None:
    """Halfway to the deadline, an unanswered offer reminds the peer once."""
    remind_at = offer.offered_at + (offer.respond_by - offer.offered_at) / 2
    await uow.conn.execute(
        """INSERT INTO offer_reminder (offer_id, network_id, hospital_id, case_id, peer,
                                       remind_at, respond_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        offer.offer_id,
        offer.network_id,
        offer.hospital_id,
        offer.case_id,
        offer.peer,
        remind_at,
        offer.respond_by,
    )


async def remind_due(runtime: Runtime, now: datetime) -> int:
    """Send the reminders that are due, for offers that are still the case's latest step."""
    pager: Pager = runtime.state["pager"]
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "reminders")
        due = await conn.fetch(
            "SELECT network_id, offer_id FROM offer_reminder WHERE NOT done AND remind_at <= $1"
            " LIMIT 200",
            now,
        )
    sent = 0
    for row in due:
        async with runtime.unit_of_work(Tenant(row["network_id"])) as uow:
            reminder = await uow.conn.fetchrow(
                "SELECT * FROM offer_reminder WHERE offer_id = $1 AND NOT done"
                " FOR UPDATE SKIP LOCKED",
                row["offer_id"],
            )
            if reminder is None:
                continue
            await uow.conn.execute(
                "UPDATE offer_reminder SET done = true WHERE offer_id = $1", reminder["offer_id"]
            )
            latest = await uow.conn.fetchrow(
                "SELECT kind, detail->>'offer_id' AS offer FROM request_event"
                " WHERE case_id = $1 ORDER BY id DESC LIMIT 1",
                reminder["case_id"],
            )
            # Declined, matched, escalated or withdrawn since: nothing to remind.
            if (
                latest is None
                or latest["offer"] != str(reminder["offer_id"])
                or now >= reminder["respond_by"]
            ):
                continue
            await page_person(
                uow,
                pager,
                kind="offer_reminder",
                recipient=reminder["peer"],
                network_id=row["network_id"],
                hospital_id=reminder["hospital_id"],
                link=f"/offers/{reminder['offer_id']}",
                respond_by=reminder["respond_by"],
                notification_id=uuid.uuid5(reminder["offer_id"], "offer-reminder"),
            )
            sent += 1
    return sent


async def send_reminders(runtime: Runtime) -> None:
    while not runtime.stopping.is_set():
        try:
            await remind_due(runtime, datetime.now(UTC))
        except Exception as exc:  # a bad round must not stop later ones
            log.warning("offer reminder round failed", error=failure_reason(exc))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), 1)


async def alert_coordinators(uow: UnitOfWork, pager: Pager, escalation: MatchEscalated) -> UUID:
    channels: list[ChannelAddress] = []
    hook = await gateway(uow, pager, escalation.hospital_id)
    if hook is not None:
        channels.append(hook)
    channels.append(InboxAddress())
    return await notify(
        uow,
        Notification(
            kind="escalation",
            recipient=f"coordinators:{escalation.hospital_id}",
            network_id=escalation.network_id,
            hospital_id=escalation.hospital_id,
            link=f"/cases/{escalation.case_id}",
            respond_by=escalation.respond_by,
        ),
        channels,
        key=pager.channel_key,
        mode="all",
        notification_id=uuid.uuid5(
            escalation.case_id, f"escalation:{escalation.escalated_at.isoformat()}"
        ),
    )


def handlers(pager: Pager) -> dict[str, Handler]:
    """The journey's handlers, with paging added to the steps that must reach a person."""

    async def offered(uow: UnitOfWork, event: Event, ce: CloudEvent) -> None:
        await journey.SUBSCRIPTIONS[OfferMade.event_type](uow, event, ce)
        assert isinstance(event, OfferMade)
        await page_peer(uow, pager, event)

    async def escalated(uow: UnitOfWork, event: Event, ce: CloudEvent) -> None:
        await journey.SUBSCRIPTIONS[MatchEscalated.event_type](uow, event, ce)
        assert isinstance(event, MatchEscalated)
        await alert_coordinators(uow, pager, event)

    return {
        **journey.SUBSCRIPTIONS,
        OfferMade.event_type: offered,
        MatchEscalated.event_type: escalated,
    }
