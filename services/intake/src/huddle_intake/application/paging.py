"""Reaching people who are not looking at a screen: the on-call peer is paged for each offer,
the hospital's coordinators for each escalation. Intake does it because it alone holds contact
details; the messages carry a link and a deadline, never anything clinical or identifying."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from cryptography.fernet import Fernet, MultiFernet
from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import Event, MatchEscalated, OfferMade
from huddle_runtime.consumer import Handler
from huddle_runtime.notifications import (
    ChannelAddress,
    EmailAddress,
    InboxAddress,
    Notification,
    WebhookAddress,
    notify,
)
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.application import request_journey as journey


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
    if row is None:
        return None
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


async def page_peer(uow: UnitOfWork, pager: Pager, offer: OfferMade) -> UUID:
    """Every channel at once (a page is urgent): the hospital's gateway, e-mail, the app inbox."""
    row = await uow.conn.fetchrow(
        "SELECT hospital_id, sealed_contact FROM staff WHERE pseudonym = $1", offer.peer
    )
    channels: list[ChannelAddress] = []
    hook = await gateway(uow, pager, row["hospital_id"] if row else offer.hospital_id)
    if hook is not None:
        channels.append(hook)
    if row is not None and row["sealed_contact"] is not None:
        contact = pager.vault.open(row["sealed_contact"])
        if contact.email:
            channels.append(EmailAddress(to=contact.email))
    channels.append(InboxAddress())
    return await notify(
        uow,
        Notification(
            kind="offer",
            recipient=offer.peer,
            network_id=offer.network_id,
            hospital_id=offer.hospital_id,
            link=f"/offers/{offer.offer_id}",
            respond_by=offer.respond_by,
        ),
        channels,
        key=pager.channel_key,
        mode="all",
        notification_id=uuid.uuid5(offer.offer_id, "offer"),  # a redelivered event pages once
    )


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
