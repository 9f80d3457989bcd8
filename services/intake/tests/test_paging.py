"""Offers and escalations reach people who are not looking at a screen: a signed webhook to the
hospital's paging gateway (a real HTTP server on 127.0.0.1), an e-mail (a real SMTP server on
127.0.0.1) and the app inbox; no clinical or identifying content in any of them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from huddle_contracts.events import MatchEscalated, OfferMade
from huddle_e2e.harness import eventually, held_service_settings, running_app
from huddle_e2e.receivers import smtp_receiver, webhook_receiver
from huddle_intake.application import paging
from huddle_intake.application.paging import remind_due
from huddle_intake.service import DEFINITION
from huddle_local.issuer import LocalIssuer
from huddle_runtime.notifications import inbox
from huddle_runtime.notifications.addresses import WebhookAddress, open_channels
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration

SECRET = "pager-shared-secret-0123456789"


async def test_an_offer_pages_the_peer_and_an_escalation_pages_coordinators(
    database_url: str,
    kafka_bootstrap: str,
    local_issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": "Bearer " + local_issuer.mint(role="network_admin", network=network)}
    with smtp_receiver() as smtp:
        monkeypatch.setenv("HUDDLE_NOTIFY_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("HUDDLE_NOTIFY_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("HUDDLE_NOTIFY_BASE_URL", "https://huddle.example")
        monkeypatch.setenv("HUDDLE_NOTIFY_POLL_SECONDS", "0.2")
        settings = await held_service_settings(
            DEFINITION,
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            jwks_file=local_issuer.jwks_path,
        )
        async with (
            webhook_receiver(SECRET) as hook,
            running_app(DEFINITION, settings) as (app, client),
        ):
            csv = (
                "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name\n"
                "PEER-7,st-mary,surgery,nurse,,robin.peer@st-mary.example,+44 7700 900555,Robin Peer\n"
            )
            imported = await client.post(
                "/v1/directory/import", content=csv, headers={**admin, "Content-Type": "text/csv"}
            )
            assert imported.status_code == 200, imported.text
            put = await client.put(
                "/v1/hospitals/st-mary/paging-gateway",
                headers=admin,
                json={"url": hook.url, "secret": SECRET},
            )
            assert put.status_code == 204, put.text
            insecure = await client.put(
                "/v1/hospitals/st-mary/paging-gateway",
                headers=admin,
                json={"url": "http://pager.example/hook", "secret": SECRET},
            )
            assert insecure.status_code == 422

            worker = {
                "Authorization": "Bearer "
                + local_issuer.mint(
                    role="worker", network=network, hospital="st-mary", subject="E55"
                )
            }
            case = await client.post(
                "/v1/support-requests",
                headers=worker,
                json={"unit_id": "icu", "discipline": "nurse", "urgency": "urgent"},
            )
            case_id = uuid.UUID(case.json()["case_id"])
            peer = pseudonym_for(settings.pseudonym_key, network, "PEER-7")
            now = datetime.now(UTC)
            offer = OfferMade(
                network_id=network,
                hospital_id="st-mary",
                case_id=case_id,
                offer_id=uuid.uuid4(),
                peer=peer,
                urgency="urgent",
                offered_at=now,
                respond_by=now + timedelta(minutes=10),
            )
            handlers = paging.handlers(app.state.pager)
            for _ in range(2):  # a redelivered OfferMade pages once
                async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
                    await handlers[OfferMade.event_type](uow, offer, None)

            async def delivered() -> bool:
                return len(hook.received) >= 1 and len(smtp.mailbox.messages) >= 1

            await eventually(delivered, what="the offer reaches the pager and the mailbox")
            [page] = hook.received
            assert page["verified"] and page["body"]["kind"] == "offer"
            assert page["body"]["link"].endswith(f"/offers/{offer.offer_id}")
            [(to, message)] = smtp.mailbox.messages
            assert to == ["robin.peer@st-mary.example"]
            async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
                assert len(await inbox(uow, peer)) == 1
            as_peer = {
                "Authorization": "Bearer "
                + local_issuer.mint(role="peer", network=network, subject="PEER-7")
            }
            [item] = (await client.get("/v1/notifications", headers=as_peer)).json()
            assert (item["kind"], item["link"]) == ("offer", f"/offers/{offer.offer_id}")
            read = await client.post(
                f"/v1/notifications/{item['notification_id']}/read", headers=as_peer
            )
            assert read.status_code == 204
            assert (
                await client.get("/v1/notifications?unread_only=true", headers=as_peer)
            ).json() == []
            everything = repr(page) + message.as_string()
            for private in ("Robin", "7700", "E55", "icu", "nurse"):
                assert private not in everything, private

            async def reminders_at(at: datetime) -> int:
                """Reminder rounds at ``at`` (other tests' reminders in the shared schema are
                due too, so a few); then this network's reminders so far."""
                for _ in range(5):
                    if not await remind_due(app.state.runtime, at):
                        break
                async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
                    count: int = await uow.conn.fetchval(
                        "SELECT count(*) FROM notification WHERE kind = 'offer_reminder'"
                    )
                return count

            # Halfway to its deadline, the still-unanswered offer reminds the peer, once.
            assert await reminders_at(now + timedelta(minutes=6)) == 1
            assert await reminders_at(now + timedelta(minutes=7)) == 1

            async def reminded() -> bool:
                return any(r["body"]["kind"] == "offer_reminder" for r in hook.received)

            await eventually(reminded, what="the offer reminder")

            second = offer.model_copy(update={"offer_id": uuid.uuid4()})
            async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
                await handlers[OfferMade.event_type](uow, second, None)

            escalation = MatchEscalated(
                network_id=network,
                hospital_id="st-mary",
                case_id=case_id,
                reason="offers_exhausted",
                urgency="urgent",
                offers_made=2,
                respond_by=now + timedelta(minutes=30),
                widened_to_network=True,
                escalated_at=now,
            )
            async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
                await handlers[MatchEscalated.event_type](uow, escalation, None)

            async def alerted() -> bool:
                return any(r["body"]["kind"] == "escalation" for r in hook.received)

            await eventually(alerted, what="the escalation reaches the pager")
            [alert] = [r for r in hook.received if r["body"]["kind"] == "escalation"]
            assert str(case_id) in alert["body"]["link"]
            # The second offer's reminder is due, but the case has moved on (escalated): none.
            assert await reminders_at(now + timedelta(minutes=6)) == 1
            await asyncio.sleep(0.5)
            kinds = sorted(r["body"]["kind"] for r in hook.received)
            assert kinds == ["escalation", "offer", "offer", "offer_reminder"]
            assert len(smtp.mailbox.messages) == 3


async def test_a_page_goes_to_the_gateway_of_the_persons_hospital_else_the_events(
    database_url: str, kafka_bootstrap: str, local_issuer: LocalIssuer
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": "Bearer " + local_issuer.mint(role="network_admin", network=network)}
    settings = await held_service_settings(
        DEFINITION,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        jwks_file=local_issuer.jwks_path,
    )
    # No dispatcher: the pages are only recorded here, never sent.
    async with running_app(dataclasses.replace(DEFINITION, tasks=()), settings) as (app, client):
        csv = (
            "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name\n"
            "PEER-8,st-olav,surgery,nurse,,,,Sam Peer\n"
        )
        imported = await client.post(
            "/v1/directory/import", content=csv, headers={**admin, "Content-Type": "text/csv"}
        )
        assert imported.status_code == 200, imported.text
        gateways = {"st-mary": "https://127.0.0.1:9/mary", "st-olav": "https://127.0.0.1:9/olav"}
        for hospital, url in gateways.items():
            put = await client.put(
                f"/v1/hospitals/{hospital}/paging-gateway",
                headers=admin,
                json={"url": url, "secret": SECRET},
            )
            assert put.status_code == 204, put.text
        pager = app.state.pager

        async def paged(recipient: str, event_hospital: str) -> list[str]:
            """The channels of a page for an event in ``event_hospital``: gateway URLs, kinds."""
            async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
                nid = await paging.page_person(
                    uow,
                    pager,
                    kind="offer",
                    recipient=recipient,
                    network_id=network,
                    hospital_id=event_hospital,
                    link="/offers/x",
                    respond_by=None,
                    notification_id=uuid.uuid4(),
                )
                stored = await uow.conn.fetchval(
                    "SELECT channels FROM notification WHERE id = $1", nid
                )
            opened = open_channels(json.loads(stored), key=pager.channel_key, notification_id=nid)
            return [a.url if isinstance(a, WebhookAddress) else a.channel for a in opened]

        in_directory = pseudonym_for(settings.pseudonym_key, network, "PEER-8")
        unknown = pseudonym_for(settings.pseudonym_key, network, "NOT-IN-DIRECTORY")
        assert await paged(in_directory, "st-mary") == [gateways["st-olav"], "inbox"]
        assert await paged(unknown, "st-mary") == [gateways["st-mary"], "inbox"]
        assert await paged(unknown, "st-luke") == ["inbox"]  # no gateway there
