"""HTTP: the peer records contacts, follow-ups and referrals; coordinators see overdue lists.
The request models refuse any field they do not name: no narrative can be recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from huddle_contracts.vocabulary import HospitalId, Mode, ReferralResource, Tier, Urgency
from huddle_runtime.auth import Principal, Role, require_roles
from huddle_runtime.edge import RuleRefused, caller_pseudonym, ensure_hospital, runtime_of
from huddle_runtime.problems import NotFound
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from huddle_sessions.adapters import repository as repo
from huddle_sessions.application.cases import (
    NotYourCase,
    Sessions,
    close,
    record_contact,
    refer,
)
from huddle_sessions.domain.contact_record import ContactRecord, RecordRefused

router = APIRouter(prefix="/v1", tags=["sessions"])
_STRICT = ConfigDict(extra="forbid")

PeerCaller = Annotated[Principal, Depends(require_roles(Role.PEER))]
Coordinator = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.NETWORK_ADMIN))]
PeerOrCoordinator = Annotated[
    Principal, Depends(require_roles(Role.PEER, Role.COORDINATOR, Role.NETWORK_ADMIN))
]


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


class ContactCreate(BaseModel):
    """When, how long, how, which tier, whether a follow-up is planned; nothing else."""

    model_config = _STRICT
    started_at: AwareDatetime
    duration_minutes: int = Field(ge=1, le=600)
    mode: Mode
    tier: Literal[Tier.LOCAL, Tier.PEER] = Tier.PEER
    follow_up_planned: bool
    participants: int = Field(default=1, ge=1, le=500)


class ReferralCreate(BaseModel):
    model_config = _STRICT
    resource: ReferralResource
    urgency: Literal[Urgency.ROUTINE, Urgency.URGENT] = Urgency.ROUTINE


class CatalogueEntry(BaseModel):
    model_config = _STRICT
    resource: ReferralResource
    label: str = Field(min_length=1, max_length=120)
    how_to_reach: str = Field(min_length=1, max_length=200, description="A service line or URL.")


@router.get("/cases", summary="Your open cases (peer) or your hospital's (coordinator)")
async def list_cases(
    request: Request, principal: PeerOrCoordinator, status_: str | None = "open"
) -> list[dict[str, Any]]:
    peer = caller_pseudonym(request, principal) if Role.PEER in principal.roles else None
    hospital = None if peer or Role.NETWORK_ADMIN in principal.roles else principal.hospital_id
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        found = await repo.cases(uow.conn, peer=peer, hospital_id=hospital, status=status_)
    return [
        {
            "case_id": c.case_id,
            "status": c.status,
            "mode": c.mode,
            "opened_at": c.opened_at,
            "first_contact_by": c.first_contact_by,
            "first_contact_at": c.first_contact_at,
        }
        for c in found
    ]


@router.get("/cases/{case_id}", summary="A case and its timeline: contacts, follow-ups, referrals")
async def read_case(
    case_id: UUID, request: Request, principal: PeerOrCoordinator
) -> dict[str, Any]:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        case = await repo.get_case(uow.conn, case_id)
        if case is None or (
            Role.PEER in principal.roles and case.peer != caller_pseudonym(request, principal)
        ):
            raise NotFound(f"no case {case_id} of yours")
        if Role.PEER not in principal.roles:
            ensure_hospital(principal, case.hospital_id)
        history = await repo.timeline(uow.conn, case_id)
    return {
        "case_id": case.case_id,
        "hospital_id": case.hospital_id,
        "status": case.status,
        "mode": case.mode,
        "opened_at": case.opened_at,
        "first_contact_by": case.first_contact_by,
        "first_contact_at": case.first_contact_at,
        "closed_at": case.closed_at,
        **history,
    }


@router.post(
    "/cases/{case_id}/contacts",
    status_code=status.HTTP_201_CREATED,
    summary="Record a contact (emits SessionCompleted)",
)
async def add_contact(
    case_id: UUID, body: ContactCreate, request: Request, principal: PeerCaller
) -> dict[str, Any]:
    record = ContactRecord(
        started_at=body.started_at,
        duration_minutes=body.duration_minutes,
        mode=body.mode,
        tier=body.tier,
        follow_up_planned=body.follow_up_planned,
        participants=body.participants,
    )
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            completed = await record_contact(
                uow,
                _sessions(request),
                case_id=case_id,
                peer=caller_pseudonym(request, principal),
                record=record,
            )
    except NotYourCase as exc:
        raise NotFound(str(exc)) from exc
    except RecordRefused as exc:
        raise RuleRefused(str(exc)) from exc
    return {"session_id": completed.session_id, "completed_at": completed.completed_at}


@router.post(
    "/cases/{case_id}/referrals",
    status_code=status.HTTP_201_CREATED,
    summary="Refer to professional help, tier 3 (emits ReferralMade)",
)
async def add_referral(
    case_id: UUID, body: ReferralCreate, request: Request, principal: PeerCaller
) -> dict[str, Any]:
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            made = await refer(
                uow,
                _sessions(request),
                case_id=case_id,
                peer=caller_pseudonym(request, principal),
                resource=body.resource,
                urgency=body.urgency,
            )
            reach = {e["resource"]: e for e in await repo.catalogue(uow.conn, made.hospital_id)}[
                made.resource.value
            ]
    except NotYourCase as exc:
        raise NotFound(str(exc)) from exc
    except RecordRefused as exc:
        raise RuleRefused(str(exc)) from exc
    return {"referral_id": made.referral_id, "resource": reach}


@router.post("/cases/{case_id}/close", summary="Close the case (emits CaseClosed)")
async def close_case(
    case_id: UUID, request: Request, principal: PeerOrCoordinator
) -> dict[str, Any]:
    peer = caller_pseudonym(request, principal) if Role.PEER in principal.roles else None
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            if peer is None:
                case = await repo.get_case(uow.conn, case_id)
                if case is not None:
                    ensure_hospital(principal, case.hospital_id)
            closed = await close(uow, _sessions(request), case_id=case_id, peer=peer)
    except NotYourCase as exc:
        raise NotFound(str(exc)) from exc
    except RecordRefused as exc:
        raise RuleRefused(str(exc)) from exc
    return {"case_id": closed.case_id, "sessions": closed.sessions, "closed_at": closed.closed_at}


@router.get(
    "/follow-ups", summary="Follow-ups due (peer: yours; coordinator: overdue in your hospital)"
)
async def due_follow_ups(
    request: Request, principal: PeerOrCoordinator, within_hours: float = 24
) -> list[dict[str, Any]]:
    now = _sessions(request).clock()
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        if Role.PEER in principal.roles:
            return await repo.follow_ups(
                uow.conn,
                peer=caller_pseudonym(request, principal),
                hospital_id=None,
                due_before=now + timedelta(hours=within_hours),
            )
        hospital = None if Role.NETWORK_ADMIN in principal.roles else principal.hospital_id
        overdue = await repo.follow_ups(uow.conn, peer=None, hospital_id=hospital, due_before=now)
    return [{**f, "overdue": True} for f in overdue]


@router.put(
    "/hospitals/{hospital_id}/referral-catalogue",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="The hospital's tier-3 services (EAP, psychologist, chaplain, crisis line …)",
)
async def put_catalogue(
    hospital_id: HospitalId,
    body: list[CatalogueEntry],
    request: Request,
    principal: Coordinator,
) -> Response:
    ensure_hospital(principal, hospital_id)
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        await repo.put_catalogue(
            uow.conn, principal.network_id, hospital_id, [e.model_dump(mode="json") for e in body]
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/hospitals/{hospital_id}/referral-catalogue", summary="The hospital's tier-3 services")
async def get_catalogue(
    hospital_id: HospitalId, request: Request, principal: PeerOrCoordinator
) -> list[dict[str, str]]:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        return await repo.catalogue(uow.conn, hospital_id)
