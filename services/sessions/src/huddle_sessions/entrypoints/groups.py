"""HTTP for group sessions: coordinators schedule and count; anyone invited gets an .ics."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from huddle_contracts.vocabulary import HospitalId, Pseudonym, UnitId
from huddle_runtime.auth import Principal, Role, require_roles
from huddle_runtime.edge import RuleRefused, ensure_hospital, runtime_of
from huddle_runtime.problems import NotFound
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from huddle_sessions.adapters.invitation import invitation
from huddle_sessions.application import group_sessions as groups
from huddle_sessions.domain.group_session import GroupFormat, GroupRefused, Recurrence

router = APIRouter(prefix="/v1/group-sessions", tags=["group sessions"])
_STRICT = ConfigDict(extra="forbid")
Coordinator = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.NETWORK_ADMIN))]
Invited = Annotated[
    Principal,
    Depends(require_roles(Role.WORKER, Role.PEER, Role.COORDINATOR, Role.NETWORK_ADMIN)),
]


class GroupCreate(BaseModel):
    model_config = _STRICT
    format: GroupFormat
    hospital_id: HospitalId | None = None
    unit_id: UnitId | None = None
    starts_at: AwareDatetime
    duration_minutes: int | None = Field(default=None, ge=15, le=240)
    recurrence: Recurrence | None = None
    facilitator: Pseudonym | None = None


class GroupTime(BaseModel):
    model_config = _STRICT
    starts_at: AwareDatetime
    facilitator: Pseudonym | None = None


class Attendance(BaseModel):
    model_config = _STRICT
    participants: int = Field(ge=2, le=500, description="How many came; never who.")
    held_at: AwareDatetime


def _hospital(principal: Principal, hospital_id: str | None) -> str:
    hospital = hospital_id or principal.hospital_id
    if hospital is None:
        raise RuleRefused("hospital_id is required when your token names no hospital")
    ensure_hospital(principal, hospital)
    return hospital


@router.post("", status_code=status.HTTP_201_CREATED, summary="Schedule a group session")
async def create(body: GroupCreate, request: Request, principal: Coordinator) -> dict[str, Any]:
    hospital = _hospital(principal, body.hospital_id)
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        session_id = await groups.schedule(
            uow,
            network_id=principal.network_id,
            hospital_id=hospital,
            group_format=body.format,
            starts_at=body.starts_at,
            duration=timedelta(minutes=body.duration_minutes) if body.duration_minutes else None,
            recurrence=body.recurrence,
            facilitator=body.facilitator,
            unit_id=body.unit_id,
        )
    return {
        "session_id": session_id,
        "invitation": f"/v1/group-sessions/{session_id}/invitation.ics",
    }


@router.get("", summary="Group sessions: to schedule (debriefs called by events), scheduled, held")
async def list_sessions(
    request: Request, principal: Invited, status_: str | None = None
) -> list[dict[str, Any]]:
    hospital = None if Role.NETWORK_ADMIN in principal.roles else principal.hospital_id
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        return await groups.listing(uow, hospital_id=hospital, status=status_)


@router.put(
    "/{session_id}/time",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set the time (and facilitator) of a debrief or session",
)
async def put_time(
    session_id: UUID, body: GroupTime, request: Request, principal: Coordinator
) -> Response:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        found = await groups.get(uow, session_id)
        if found is None:
            raise NotFound(f"no group session {session_id}")
        _hospital(principal, found["hospital_id"])
        if not await groups.set_time(
            uow, session_id, starts_at=body.starts_at, facilitator=body.facilitator
        ):
            raise RuleRefused(f"the session is {found['status']}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{session_id}/attendance",
    summary="Count who came (emits SessionCompleted with mode group)",
)
async def attendance(
    session_id: UUID, body: Attendance, request: Request, principal: Coordinator
) -> dict[str, Any]:
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            found = await groups.get(uow, session_id)
            if found is None:
                raise NotFound(f"no group session {session_id}")
            _hospital(principal, found["hospital_id"])
            completed = await groups.record_attendance(
                uow, session_id, participants=body.participants, held_at=body.held_at
            )
    except GroupRefused as exc:
        raise RuleRefused(str(exc)) from exc
    return {"session_id": session_id, "participants": completed.participants}


@router.get(
    "/{session_id}/invitation.ics",
    summary="The calendar invitation (iCalendar)",
    response_class=Response,
)
async def ics(session_id: UUID, request: Request, principal: Invited) -> Response:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        found = await groups.get(uow, session_id)
    if found is None or found["starts_at"] is None:
        raise NotFound(f"no scheduled group session {session_id}")
    body = invitation(
        session_id=session_id,
        group_format=GroupFormat(found["format"]),
        starts_at=found["starts_at"],
        duration=timedelta(minutes=found["duration_minutes"]),
        recurrence=Recurrence(found["recurrence"]),
        link=f"/v1/group-sessions/{session_id}",
    )
    return Response(
        body,
        media_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="huddle-{session_id}.ics"'},
    )
