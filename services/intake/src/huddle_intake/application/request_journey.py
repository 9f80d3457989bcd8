"""The journey after the request: what matching and sessions report back, the requester's
withdrawal, the audited release of contact details to the assigned peer, and their purge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import (
    CaseClosed,
    Event,
    MatchEscalated,
    OfferMade,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportWithdrawn,
)
from huddle_contracts.vocabulary import Mode, Origin, Withdrawal
from huddle_runtime.consumer import Handler, PermanentFailure
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant, apply_system_scope
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_intake.adapters import journey_repository as journey
from huddle_intake.adapters import repository
from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.domain.request_journey import statuses_after
from huddle_intake.domain.support_request import ContactDetails
from huddle_intake.settings import IntakeSettings

log = structlog.get_logger(__name__)


class NotAllowed(LookupError):
    """Not yours to see, or no longer available."""


async def record_step(
    uow: UnitOfWork, *, case_id: UUID, step: str, at: datetime, **detail: Any
) -> None:
    assert uow.tenant is not None
    found = await journey.advance(
        uow.conn,
        journey.Step(uow.tenant.network_id, case_id, step, at, detail),
        statuses_after(step),
        assigned_peer=detail.get("peer") if step == "matched" else None,
        closed_at=at if step == "closed" else None,
    )
    if not found:
        raise PermanentFailure(f"no support request {case_id} in intake")


def _step(kind: str, describe: Callable[[Any], dict[str, Any]]) -> Handler:
    async def handle(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        case_id: UUID = getattr(event, "case_id")  # noqa: B009 (every journey event has a case)
        await record_step(uow, case_id=case_id, step=kind, at=event.event_time, **describe(event))

    return handle


async def _contact(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
    assert isinstance(event, SessionCompleted)
    if event.mode is Mode.GROUP:
        return  # a group session (debrief, rounds) is not one worker's request
    await record_step(
        uow,
        case_id=event.case_id,
        step="contact",
        at=event.completed_at,
        mode=event.mode.value,
        duration_minutes=event.duration_minutes,
    )


async def _referral(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
    assert isinstance(event, ReferralMade)
    if event.referred_by is None:
        return  # intake's own crisis referral, already on the journey
    await record_step(
        uow,
        case_id=event.case_id,
        step="referred",
        at=event.made_at,
        resource=event.resource.value,
    )


# What the requester sees of each step: when, and the how; never who (the peer's pseudonym is
# kept for the contact release only, not shown).
SUBSCRIPTIONS: dict[str, Handler] = {
    OfferMade.event_type: _step(
        "offered", lambda e: {"respond_by": e.respond_by, "offer_id": str(e.offer_id)}
    ),
    MatchEscalated.event_type: _step("escalated", lambda e: {"reason": e.reason.value}),
    PeerMatched.event_type: _step(
        "matched",
        lambda e: {"peer": e.peer, "mode": e.mode.value, "first_contact_by": e.respond_by},
    ),
    SessionCompleted.event_type: _contact,
    ReferralMade.event_type: _referral,
    CaseClosed.event_type: _step("closed", lambda e: {"sessions": e.sessions}),
}


async def withdraw(uow: UnitOfWork, *, case_id: UUID, caller: str) -> str:
    """The worker may decline an outreach offer or withdraw at any time, with no consequence."""
    request = await repository.get(uow.conn, case_id)
    if request is None or caller != request.requester:
        raise NotAllowed(f"no support request {case_id} of yours")
    status = await journey.lock_status(uow.conn, case_id)
    if status in ("closed", "withdrawn"):
        return status
    reason = (
        Withdrawal.DECLINED_OFFER if request.origin is Origin.OUTREACH else Withdrawal.WITHDRAWN
    )
    now = datetime.now(UTC)
    await record_step(uow, case_id=case_id, step=reason.value.replace("_offer", ""), at=now)
    await journey.set_status(uow.conn, case_id, "withdrawn", closed_at=now)
    uow.publish(
        SupportWithdrawn(
            network_id=request.network_id,
            hospital_id=request.hospital_id,
            case_id=case_id,
            reason=reason,
            withdrawn_at=now,
        )
    )
    return "withdrawn"


async def release_contact(
    uow: UnitOfWork, vault: ContactVault, *, case_id: UUID, peer: str
) -> ContactDetails:
    """Only to the assigned peer, only while the case is open; every release is recorded."""
    assignment = await journey.assigned_peer(uow.conn, case_id)
    if assignment is None or assignment[0] != peer or assignment[1] in ("closed", "withdrawn"):
        raise NotAllowed(f"no open case {case_id} assigned to you")
    # What the requester gave with the request, else what the directory holds for them.
    sealed = await journey.sealed_contact(uow.conn, case_id) or await journey.directory_contact(
        uow.conn, case_id
    )
    assert uow.tenant is not None
    await journey.record_release(
        uow.conn, network_id=uow.tenant.network_id, case_id=case_id, peer=peer
    )
    return vault.open(sealed) if sealed else ContactDetails()


async def purge_contact_details(runtime: Runtime) -> None:
    """Contact details are purged once the case has been closed for the retention period."""
    settings: IntakeSettings = runtime.state["intake_settings"]
    retention = timedelta(days=settings.contact_retention_days)
    while not runtime.stopping.is_set():
        try:
            await purge_due(runtime, datetime.now(UTC) - retention)
        except Exception as exc:  # a bad round must not stop later ones
            log.warning("retention purge round failed", error=type(exc).__name__)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), 60)


async def purge_due(runtime: Runtime, closed_before: datetime) -> int:
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "retention")
        due = await journey.closed_before(conn, closed_before)
    purged = 0
    for network_id, case_id in due:
        async with runtime.unit_of_work(Tenant(network_id)) as uow:
            purged += await journey.purge_contact(uow.conn, case_id)
    return purged
