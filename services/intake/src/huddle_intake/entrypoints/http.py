"""HTTP: translate requests into commands; the schemas here are the API's public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, HospitalId, Mode, Origin, UnitId, Urgency
from huddle_runtime.auth import Forbidden, Principal, Role, require_roles
from huddle_runtime.problems import NotFound, Problem
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.service import Runtime
from huddle_runtime.settings import ServiceSettings
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.application.support_requests import (
    SubmitSupportRequest,
    get_support_request,
    submit_support_request,
)
from huddle_intake.domain.support_request import (
    PHONE_PATTERN,
    ContactDetails,
    RequestRefused,
    SupportRequest,
)

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


class SupportRequestRead(BaseModel):
    case_id: UUID
    status: str
    hospital_id: str
    unit_id: str
    origin: Origin
    urgency: Urgency
    preferred_mode: Mode | None
    requested_at: datetime

    @classmethod
    def of(cls, request: SupportRequest) -> SupportRequestRead:
        return cls(
            case_id=request.case_id,
            status=request.status,
            hospital_id=request.hospital_id,
            unit_id=request.unit_id,
            origin=request.origin,
            urgency=request.urgency,
            preferred_mode=request.preferred_mode,
            requested_at=request.requested_at,
        )


class RefusedRequest(Problem):
    status = 422
    title = "Request refused by programme rules"
    type_suffix = "programme-rule"


Requester = Annotated[
    Principal, Depends(require_roles(Role.WORKER, Role.PEER, Role.COORDINATOR, Role.NETWORK_ADMIN))
]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _caller_pseudonym(request: Request, principal: Principal) -> str:
    settings: ServiceSettings = request.app.state.settings
    return pseudonym_for(settings.pseudonym_key, principal.network_id, principal.subject)


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
        raise RefusedRequest("hospital_id is required when your token names no hospital")
    if principal.hospital_id is not None and hospital != principal.hospital_id:
        raise Forbidden(f"your token is for hospital {principal.hospital_id!r}, not {hospital!r}")
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
        submitted_by=_caller_pseudonym(request, principal),
        preferred_mode=body.preferred_mode,
        preferences=body.preferences,
        contact=ContactDetails(phone=contact.phone, email=contact.email),
    )
    vault: ContactVault = request.app.state.contact_vault
    try:
        created = await submit_support_request(
            runtime=_runtime(request), vault=vault, principal=principal, command=command
        )
    except RequestRefused as exc:
        raise RefusedRequest(str(exc)) from exc
    response.headers["Location"] = f"/v1/support-requests/{created.case_id}"
    return SupportRequestRead.of(created)


@router.get(
    "/{case_id}",
    response_model=SupportRequestRead,
    summary="Your own support request (made by you or about you)",
)
async def read_support_request(
    case_id: UUID, request: Request, principal: Requester
) -> SupportRequestRead:
    found = await get_support_request(
        runtime=_runtime(request),
        principal=principal,
        caller=_caller_pseudonym(request, principal),
        case_id=case_id,
    )
    if found is None:
        raise NotFound(f"no support request {case_id} of yours")
    return SupportRequestRead.of(found)
