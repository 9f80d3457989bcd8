"""Use cases of support requests, each one unit of work (state and outbox commit together)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Mode, Origin, Urgency
from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime

from huddle_intake.adapters import journey_repository as journey
from huddle_intake.adapters import repository
from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.adapters.repository import FirstStep
from huddle_intake.domain import workforce_directory as directory_rules
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


@dataclass(frozen=True)
class Submitted:
    """The request as committed, with its journey so far and, for a crisis, the hospital's
    crisis resources (none configured: an empty list), all read in the same transaction."""

    request: SupportRequest
    timeline: list[dict[str, Any]]
    crisis_resources: list[dict[str, str]] | None = None


async def submit_support_request(
    *, runtime: Runtime, vault: ContactVault, principal: Principal, command: SubmitSupportRequest
) -> Submitted:
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
    steps = [FirstStep("requested", request.requested_at, {"urgency": request.urgency.value})]
    referral = None
    if a_crisis_never_waits_for_a_peer(request.urgency):
        referral = crisis_referral(request, request.requested_at)
        steps.append(FirstStep("referred_to_crisis_support", referral.made_at, {}))
        request = replace(request, status="referred")
    sealed = None if command.contact.empty else vault.seal(command.contact)
    async with runtime.unit_of_work(principal.tenant) as uow:
        members = await repository.add_with_journey(
            uow.conn,
            request,
            sealed_contact=sealed,
            steps=steps,
            reporting_depth=directory_rules.MAX_REPORTING_DEPTH,
        )
        line = directory_rules.reporting_line(request.requester, members)
        uow.publish(request.to_event().model_copy(update={"reporting_line": line}))
        resources = None
        if referral is not None:
            uow.publish(referral)
            resources = await journey.crisis_resources(uow.conn, request.hospital_id)
    # The journey is what was just written: nothing else can know of a case not yet committed.
    timeline = [{"step": step.kind, "at": step.at, **step.detail} for step in steps]
    return Submitted(request, timeline, resources)


async def get_support_request(
    *, runtime: Runtime, principal: Principal, caller: str, case_id: UUID
) -> SupportRequest | None:
    """The request if the caller made it or it is about them; row-level security adds the tenant."""
    async with runtime.unit_of_work(principal.tenant) as uow:
        request = await repository.get(uow.conn, case_id)
    if request is None or caller not in (request.requester, request.submitted_by):
        return None
    return request
