"""HTTP: translate requests into commands; the schemas here are the API's public contract."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, HospitalId, Mode, Origin, UnitId, Urgency
from huddle_runtime.auth import Forbidden, Principal, Role, require_roles
from huddle_runtime.edge import RuleRefused, caller_pseudonym, ensure_hospital, runtime_of
from huddle_runtime.notifications import inbox, mark_read
from huddle_runtime.problems import NotFound
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.unit_of_work import UnitOfWork
from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from huddle_intake.adapters import journey_repository as journey
from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.application import tier_one
from huddle_intake.application.paging import Pager, put_gateway
from huddle_intake.application.request_journey import NotAllowed, release_contact, withdraw
from huddle_intake.application.support_requests import (
    SubmitSupportRequest,
    get_support_request,
    submit_support_request,
)
from huddle_intake.domain.request_journey import a_crisis_never_waits_for_a_peer
from huddle_intake.domain.support_request import (
    PHONE_PATTERN,
    ContactDetails,
    RequestRefused,
    SupportRequest,
)
from huddle_intake.settings import IntakeSettings

router = APIRouter(prefix="/v1/support-requests", tags=["support requests"])

_STRICT = ConfigDict(extra="forbid")
PhoneNumber = Annotated[str, Field(pattern=PHONE_PATTERN)]


class ContactIn(BaseModel):
    """How the assigned peer may reach you; stays in intake, encrypted, never on the bus."""

    model_config = _STRICT
    phone: PhoneNumber | None = None
    email: EmailStr | None = None


class SupportRequestCreate(BaseModel):
    model_config = _STRICT

    hospital_id: HospitalId | None = Field(
        default=None, description="Defaults to the hospital in your token."
    )
    unit_id: UnitId
    discipline: Discipline
    origin: Origin = Origin.SELF
    urgency: Urgency = Urgency.ROUTINE
    person_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Staff identifier of the person referred (colleague or manager referral); "
        "it is turned into a pseudonym at once and never stored.",
    )
    preferred_mode: Mode | None = None
    preferences: MatchPreferences = MatchPreferences()
    contact: ContactIn | None = None


class CrisisResource(BaseModel):
    label: str = Field(min_length=1, max_length=120)
    how_to_reach: str = Field(min_length=1, max_length=200)


class SupportRequestRead(BaseModel):
    case_id: UUID
    status: str
    hospital_id: str
    unit_id: str
    origin: Origin
    urgency: Urgency
    preferred_mode: Mode | None
    requested_at: datetime
    timeline: list[dict[str, Any]] = Field(
        default=[], description="Each step: requested, offered, matched, contact, referred, closed."
    )
    crisis_resources: list[CrisisResource] | None = Field(
        default=None, description="For a crisis request: who to reach now, at once."
    )

    @classmethod
    def of(
        cls,
        request: SupportRequest,
        *,
        timeline: list[dict[str, Any]],
        crisis_resources: list[CrisisResource] | None = None,
    ) -> SupportRequestRead:
        return cls(
            case_id=request.case_id,
            status=request.status,
            hospital_id=request.hospital_id,
            unit_id=request.unit_id,
            origin=request.origin,
            urgency=request.urgency,
            preferred_mode=request.preferred_mode,
            requested_at=request.requested_at,
            # The peer's pseudonym is kept for the contact release, never shown to the requester.
            timeline=[
                {k: v for k, v in step.items() if k not in ("peer", "offer_id")}
                for step in timeline
            ],
            crisis_resources=crisis_resources,
        )


Requester = Annotated[
    Principal, Depends(require_roles(Role.WORKER, Role.PEER, Role.COORDINATOR, Role.NETWORK_ADMIN))
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SupportRequestRead,
    summary="Ask for peer support for yourself, or refer a colleague",
)
async def create_support_request(
    body: SupportRequestCreate, request: Request, response: Response, principal: Requester
) -> SupportRequestRead:
    hospital = body.hospital_id or principal.hospital_id
    if hospital is None:
        raise RuleRefused("hospital_id is required when your token names no hospital")
    ensure_hospital(principal, hospital)
    settings: ServiceSettings = request.app.state.settings
    contact = body.contact or ContactIn()
    command = SubmitSupportRequest(
        hospital_id=hospital,
        unit_id=body.unit_id,
        discipline=body.discipline,
        origin=body.origin,
        urgency=body.urgency,
        referred=(
            pseudonym_for(settings.pseudonym_key, principal.network_id, body.person_ref)
            if body.person_ref
            else None
        ),
        submitted_by=caller_pseudonym(request, principal),
        preferred_mode=body.preferred_mode,
        preferences=body.preferences,
        contact=ContactDetails(phone=contact.phone, email=contact.email),
    )
    vault: ContactVault = request.app.state.contact_vault
    try:
        submitted = await submit_support_request(
            runtime=runtime_of(request), vault=vault, principal=principal, command=command
        )
    except RequestRefused as exc:
        raise RuleRefused(str(exc)) from exc
    created = submitted.request
    response.headers["Location"] = f"/v1/support-requests/{created.case_id}"
    resources = (
        _or_the_fallback(request, submitted.crisis_resources)
        if submitted.crisis_resources is not None
        else None
    )
    return SupportRequestRead.of(created, timeline=submitted.timeline, crisis_resources=resources)


@router.get(
    "/{case_id}",
    response_model=SupportRequestRead,
    summary="Your own support request (made by you or about you)",
)
async def read_support_request(
    case_id: UUID, request: Request, principal: Requester
) -> SupportRequestRead:
    found = await get_support_request(
        runtime=runtime_of(request),
        principal=principal,
        caller=caller_pseudonym(request, principal),
        case_id=case_id,
    )
    if found is None:
        raise NotFound(f"no support request {case_id} of yours")
    if caller_pseudonym(request, principal) != found.requester:
        # Whoever referred a colleague learns it was received; the journey is the worker's own.
        return SupportRequestRead.of(replace(found, status="received"), timeline=[])
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        steps = await journey.steps(uow.conn, case_id)
        resources = (
            await _crisis_resources(request, uow, found.hospital_id)
            if a_crisis_never_waits_for_a_peer(found.urgency)
            else None
        )
    return SupportRequestRead.of(found, timeline=steps, crisis_resources=resources)


async def _crisis_resources(
    request: Request, uow: UnitOfWork, hospital_id: str
) -> list[CrisisResource]:
    return _or_the_fallback(request, await journey.crisis_resources(uow.conn, hospital_id))


def _or_the_fallback(request: Request, configured: list[dict[str, str]]) -> list[CrisisResource]:
    """The hospital's crisis resources, or the service's crisis line if it configured none."""
    if configured:
        return [CrisisResource(**r) for r in configured]
    fallback: IntakeSettings = request.app.state.intake_settings
    return [CrisisResource(label=fallback.crisis_line_label, how_to_reach=fallback.crisis_line)]


@router.post(
    "/{case_id}/withdrawal",
    summary="Decline an outreach offer or withdraw your request, at any time, no questions asked",
)
async def withdraw_request(case_id: UUID, request: Request, principal: Requester) -> dict[str, Any]:
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            now_status = await withdraw(
                uow, case_id=case_id, caller=caller_pseudonym(request, principal)
            )
    except NotAllowed as exc:
        raise NotFound(str(exc)) from exc
    return {"case_id": case_id, "status": now_status}


@router.get(
    "/{case_id}/contact-details",
    summary="The requester's phone and e-mail, for the assigned peer only (every release audited)",
)
async def contact_details(
    case_id: UUID,
    request: Request,
    principal: Annotated[Principal, Depends(require_roles(Role.PEER))],
) -> dict[str, str | None]:
    vault: ContactVault = request.app.state.contact_vault
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            contact = await release_contact(
                uow, vault, case_id=case_id, peer=caller_pseudonym(request, principal)
            )
    except NotAllowed as exc:
        raise NotFound(str(exc)) from exc
    return contact.as_dict()


crisis_router = APIRouter(prefix="/v1/hospitals", tags=["crisis resources"])


@crisis_router.put(
    "/{hospital_id}/crisis-resources",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Who a worker in crisis is told to reach at once (crisis line, on-call psychiatry …)",
)
async def put_crisis_resources(
    hospital_id: HospitalId,
    body: Annotated[list[CrisisResource], Field(min_length=1, max_length=10)],
    request: Request,
    principal: Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.NETWORK_ADMIN))],
) -> Response:
    if Role.NETWORK_ADMIN not in principal.roles and principal.hospital_id not in (
        None,
        hospital_id,
    ):
        raise Forbidden(f"your token is for hospital {principal.hospital_id!r}")
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        await journey.put_crisis_resources(
            uow.conn, principal.network_id, hospital_id, [r.model_dump() for r in body]
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class PagingGateway(BaseModel):
    model_config = _STRICT
    url: str = Field(description="The hospital's paging or SMS gateway (https).", max_length=500)
    secret: str = Field(min_length=16, max_length=200, description="Shared secret for signatures.")


@crisis_router.put(
    "/{hospital_id}/paging-gateway",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Where offers and escalations are paged: a signed webhook (X-Huddle-Signature)",
)
async def put_paging_gateway(
    hospital_id: HospitalId,
    body: PagingGateway,
    request: Request,
    principal: Annotated[Principal, Depends(require_roles(Role.NETWORK_ADMIN))],
) -> Response:
    pager: Pager = request.app.state.pager
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            await put_gateway(
                uow,
                pager,
                network_id=principal.network_id,
                hospital_id=hospital_id,
                url=body.url,
                secret=body.secret,
            )
    except ValidationError as exc:
        raise RuleRefused("; ".join(e["msg"] for e in exc.errors(include_input=False))) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


check_in_router = APIRouter(prefix="/v1/check-ins", tags=["tier 1 check-ins"])
Manager = Annotated[
    Principal, Depends(require_roles(Role.WORKER, Role.COORDINATOR, Role.NETWORK_ADMIN))
]


class CheckIn(BaseModel):
    """When and how the manager checked in; nothing about what was said."""

    model_config = _STRICT
    at: AwareDatetime
    mode: Mode


@check_in_router.get("", summary="Your prompts to check in on staff involved in an event")
async def my_check_ins(request: Request, principal: Manager) -> list[dict[str, Any]]:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        return await tier_one.prompts_for(uow, caller_pseudonym(request, principal))


@check_in_router.post(
    "/{check_in_id}",
    summary="Record a tier-1 check-in (it shows on the worker's timeline)",
)
async def record_check_in(
    check_in_id: UUID, body: CheckIn, request: Request, principal: Manager
) -> dict[str, Any]:
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            recorded = await tier_one.record_check_in(
                uow,
                check_in_id=check_in_id,
                manager=caller_pseudonym(request, principal),
                at=body.at,
                mode=body.mode,
            )
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    return {"check_in_id": check_in_id, "recorded": recorded}


notification_router = APIRouter(prefix="/v1/notifications", tags=["notifications"])
Anyone = Annotated[
    Principal,
    Depends(require_roles(Role.WORKER, Role.PEER, Role.COORDINATOR, Role.NETWORK_ADMIN)),
]


def _addresses(request: Request, principal: Principal) -> list[str]:
    """Whom the caller reads for: themselves, and their hospital's coordinators' address."""
    mine = [caller_pseudonym(request, principal)]
    if Role.COORDINATOR in principal.roles and principal.hospital_id:
        mine.append(f"coordinators:{principal.hospital_id}")
    return mine


@notification_router.get(
    "", summary="Your inbox: offers, prompts and escalations to answer (a link, never details)"
)
async def my_notifications(
    request: Request, principal: Anyone, unread_only: bool = False
) -> list[dict[str, Any]]:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        items = [
            item
            for address in _addresses(request, principal)
            for item in await inbox(uow, address, unread_only=unread_only)
        ]
    return [
        {
            "notification_id": i.notification_id,
            "kind": i.kind,
            "link": i.link,
            "respond_by": i.respond_by,
            "created_at": i.created_at,
            "read_at": i.read_at,
        }
        for i in sorted(items, key=lambda i: i.created_at, reverse=True)
    ]


@notification_router.post(
    "/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT, summary="Mark it read"
)
async def read_notification(notification_id: UUID, request: Request, principal: Anyone) -> Response:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        for address in _addresses(request, principal):
            if await mark_read(uow, address, notification_id):
                return Response(status_code=status.HTTP_204_NO_CONTENT)
    raise NotFound(f"no notification {notification_id} for you")
