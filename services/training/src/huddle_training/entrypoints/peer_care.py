"""HTTP for peer care: coordinators schedule supervision and debrief meetings and record who
attended; peers read their own debrief prompts, coordinators their hospital's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from huddle_contracts.vocabulary import HospitalId, Pseudonym
from huddle_runtime.edge import RuleRefused, caller_pseudonym, runtime_of
from huddle_runtime.problems import NotFound
from pydantic import AwareDatetime, BaseModel, Field

from huddle_training.application import peer_care
from huddle_training.application.roster import UnknownPeer
from huddle_training.domain.peer_care import (
    DebriefPrompt,
    Meeting,
    MeetingKind,
    PeerCareRuleBroken,
    PromptReason,
)
from huddle_training.entrypoints.access import (
    STRICT,
    Coordinator,
    Staff,
    hospital_scope,
    target_hospital,
    within_scope,
)

router = APIRouter(prefix="/v1/peer-care", tags=["peer care"])


class MeetingCreate(BaseModel):
    model_config = STRICT

    kind: MeetingKind
    hospital_id: HospitalId | None = Field(
        default=None, description="Defaults to the hospital in your token."
    )
    starts_at: AwareDatetime


class MeetingRead(BaseModel):
    meeting_id: UUID
    hospital_id: str
    kind: MeetingKind
    starts_at: datetime
    created_at: datetime
    attended: int = Field(description="How many peers attended (recorded so far).")

    @classmethod
    def of(cls, meeting: Meeting, attended: int = 0) -> MeetingRead:
        return cls(
            meeting_id=meeting.meeting_id,
            hospital_id=meeting.hospital_id,
            kind=meeting.kind,
            starts_at=meeting.starts_at,
            created_at=meeting.created_at,
            attended=attended,
        )


class MeetingAttendanceRequest(BaseModel):
    model_config = STRICT

    peers: list[Pseudonym] = Field(min_length=1, max_length=200, description="Who attended.")


class MeetingAttendanceRead(BaseModel):
    meeting_id: UUID
    kind: MeetingKind
    recorded: list[str] = Field(description="Peers whose attendance is new.")
    prompts_cleared: int = Field(description="Open debrief prompts a debrief cleared.")


class PromptRead(BaseModel):
    prompt_id: UUID
    peer: str
    hospital_id: str
    reasons: list[PromptReason]
    sessions_since_debrief: int = Field(description="The peer's count when prompted.")
    prompted_at: datetime
    cleared_at: datetime | None

    @classmethod
    def of(cls, prompt: DebriefPrompt) -> PromptRead:
        return cls(
            prompt_id=prompt.prompt_id,
            peer=prompt.peer,
            hospital_id=prompt.hospital_id,
            reasons=list(prompt.reasons),
            sessions_since_debrief=prompt.sessions_since_debrief,
            prompted_at=prompt.prompted_at,
            cleared_at=prompt.cleared_at,
        )


PromptStatus = Annotated[
    Literal["open", "all"], Query(alias="status", description="open (default) or all")
]


@router.post(
    "/meetings",
    status_code=status.HTTP_201_CREATED,
    response_model=MeetingRead,
    summary="Schedule a supervision or debrief meeting at a hospital",
)
async def schedule_meeting(
    body: MeetingCreate, request: Request, response: Response, principal: Coordinator
) -> MeetingRead:
    meeting = await peer_care.schedule_meeting(
        runtime=runtime_of(request),
        principal=principal,
        hospital_id=target_hospital(principal, body.hospital_id),
        kind=body.kind,
        starts_at=body.starts_at,
    )
    response.headers["Location"] = f"/v1/peer-care/meetings/{meeting.meeting_id}"
    return MeetingRead.of(meeting)


@router.get(
    "/meetings",
    response_model=list[MeetingRead],
    summary="Meetings of your hospital (a coordinator) or network (network_admin), newest first",
)
async def list_meetings(
    request: Request,
    principal: Coordinator,
    hospital_id: Annotated[HospitalId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[MeetingRead]:
    found = await peer_care.list_meetings(
        runtime=runtime_of(request),
        principal=principal,
        hospital=within_scope(principal, hospital_id),
        limit=limit,
    )
    return [MeetingRead.of(m, attended) for m, attended in found]


@router.post(
    "/meetings/{meeting_id}/attendance",
    response_model=MeetingAttendanceRead,
    summary="Record who attended; a debrief resets each peer's session count and clears their "
    "open prompts",
)
async def record_attendance(
    meeting_id: UUID, body: MeetingAttendanceRequest, request: Request, principal: Coordinator
) -> MeetingAttendanceRead:
    try:
        meeting, recorded, cleared = await peer_care.record_meeting_attendance(
            runtime=runtime_of(request),
            principal=principal,
            hospital=hospital_scope(principal),
            meeting_id=meeting_id,
            peers=list(body.peers),
        )
    except (peer_care.UnknownMeeting, UnknownPeer) as exc:
        raise NotFound(str(exc)) from exc
    except PeerCareRuleBroken as exc:
        raise RuleRefused(str(exc)) from exc
    return MeetingAttendanceRead(
        meeting_id=meeting.meeting_id, kind=meeting.kind, recorded=recorded, prompts_cleared=cleared
    )


@router.get(
    "/prompts",
    response_model=list[PromptRead],
    summary="Debrief prompts of your hospital's peers (a coordinator) or network's, newest first",
)
async def list_prompts(
    request: Request,
    principal: Coordinator,
    prompt_status: PromptStatus = "open",
    hospital_id: Annotated[HospitalId | None, Query()] = None,
    peer: Annotated[Pseudonym | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[PromptRead]:
    found = await peer_care.prompts(
        runtime=runtime_of(request),
        principal=principal,
        peer=peer,
        hospital=within_scope(principal, hospital_id),
        open_only=prompt_status == "open",
        limit=limit,
    )
    return [PromptRead.of(p) for p in found]


@router.get(
    "/prompts/mine",
    response_model=list[PromptRead],
    summary="Your own debrief prompts (the peer in your token), newest first",
)
async def my_prompts(
    request: Request, principal: Staff, prompt_status: PromptStatus = "open"
) -> list[PromptRead]:
    found = await peer_care.prompts(
        runtime=runtime_of(request),
        principal=principal,
        peer=caller_pseudonym(request, principal),
        open_only=prompt_status == "open",
    )
    return [PromptRead.of(p) for p in found]
