"""Use cases of support requests, each one unit of work (state and outbox commit together)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Mode, Origin, Urgency
from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime

from huddle_intake.adapters import journey_repository as journey
from huddle_intake.adapters import repository
from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.application import workforce_directory as directory
from huddle_intake.domain.request_journey import a_crisis_never_waits_for_a_peer, crisis_referral
from huddle_intake.domain.support_request import ContactDetails, SupportRequest, requester_of


@dataclass(frozen=True)
class SubmitSupportRequest:
    hospital_id: str
    unit_id: str
    discipline: Discipline
    origin: Origin
    urgency: Urgency
    referred: str | None
    """Pseudonym of the person referred (colleague and manager referrals only)."""
    submitted_by: str
    """Pseudonym of the caller."""
    preferred_mode: Mode | None
    preferences: MatchPreferences
    contact: ContactDetails


async def submit_support_request(
    *, runtime: Runtime, vault: ContactVault, principal: Principal, command: SubmitSupportRequest
) -> SupportRequest:
    request = SupportRequest(
        case_id=uuid.uuid4(),
        network_id=principal.network_id,
        hospital_id=command.hospital_id,
        unit_id=command.unit_id,
        requester=requester_of(
            origin=command.origin, submitter=command.submitted_by, referred=command.referred
        ),
        submitted_by=command.submitted_by,
        discipline=command.discipline,
        origin=command.origin,
        urgency=command.urgency,
        preferred_mode=command.preferred_mode,
        preferences=command.preferences,
        requested_at=datetime.now(UTC),
    )
    async with runtime.unit_of_work(principal.tenant) as uow:
        await repository.add(uow.conn, request)
        if not command.contact.empty:
            await repository.add_contact(
                uow.conn, request=request, sealed=vault.seal(command.contact)
            )
        await journey.add_step(
            uow.conn,
            network_id=request.network_id,
            case_id=request.case_id,
            kind="requested",
            at=request.requested_at,
            detail={"urgency": request.urgency.value},
        )
        line = await directory.reporting_line(
            uow.conn, network_id=request.network_id, pseudonym=request.requester
        )
        uow.publish(request.to_event().model_copy(update={"reporting_line": line}))
        if a_crisis_never_waits_for_a_peer(request.urgency):
            referral = crisis_referral(request, request.requested_at)
            uow.publish(referral)
            await journey.add_step(
                uow.conn,
                network_id=request.network_id,
                case_id=request.case_id,
                kind="referred_to_crisis_support",
                at=referral.made_at,
            )
            await journey.set_status(uow.conn, request.case_id, "referred")
    return request


async def get_support_request(
    *, runtime: Runtime, principal: Principal, caller: str, case_id: UUID
) -> SupportRequest | None:
    """The request if the caller made it or it is about them; row-level security adds the tenant."""
    async with runtime.unit_of_work(principal.tenant) as uow:
        request = await repository.get(uow.conn, case_id)
    if request is None or caller not in (request.requester, request.submitted_by):
        return None
    return request
