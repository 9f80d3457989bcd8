"""HTTP for nominations: any member of staff nominates a colleague; the colleague consents or
refuses; a coordinator approves (enrolling them on the roster) or declines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from huddle_contracts.vocabulary import (
    ClinicalArea,
    Discipline,
    Gender,
    HospitalId,
    LanguageTag,
    UnitId,
)
from huddle_runtime.auth import Forbidden, Principal
from huddle_runtime.edge import RuleRefused, caller_pseudonym, runtime_of
from huddle_runtime.problems import Conflict, NotFound
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.settings import ServiceSettings
from pydantic import BaseModel, Field

from huddle_training.application import nominations
from huddle_training.application.roster import AlreadyOnRoster
from huddle_training.domain.nomination import Nomination, NominationRuleBroken, NominationStatus
from huddle_training.domain.roster import RosterRuleBroken
from huddle_training.entrypoints.access import (
    STRICT,
    Coordinator,
    Staff,
    hospital_scope,
    keeps_roster,
    within_scope,
)
from huddle_training.entrypoints.http import PeerRead

router = APIRouter(prefix="/v1/nominations", tags=["nominations"])


class NominationRequest(BaseModel):
    model_config = STRICT

    staff_ref: str = Field(
        min_length=1,
        max_length=64,
        description="Staff identifier of the colleague you nominate; it is turned into a "
        "pseudonym at once and never stored.",
    )
    hospital_id: HospitalId | None = Field(
        default=None, description="The colleague's hospital; defaults to the one in your token."
    )
    unit_id: UnitId
    discipline: Discipline
    clinical_area: ClinicalArea | None = None


class ConsentRequest(BaseModel):
    model_config = STRICT

    languages: list[LanguageTag] = Field(
        min_length=1, max_length=20, description="Languages you can offer support in."
    )
    gender: Gender | None = Field(
        default=None, description="Opt-in, only to meet requesters' preferences."
    )


class NominationRead(BaseModel):
    nomination_id: UUID
    nominee: str | None = Field(
        description="The nominee's pseudonym: shown to coordinators only (a nominator must not "
        "learn it)."
    )
    nominated_by: str | None = Field(
        description="Who nominated: shown to coordinators only (the nominee does not learn it)."
    )
    hospital_id: str
    unit_id: str
    discipline: Discipline
    clinical_area: str | None
    status: NominationStatus
    languages: list[str]
    gender: Gender | None
    nominated_at: datetime
    answered_at: datetime | None
    decided_at: datetime | None

    @classmethod
    def of(cls, nomination: Nomination, principal: Principal) -> NominationRead:
        coordinator = keeps_roster(principal)
        return cls(
            nomination_id=nomination.nomination_id,
            nominee=nomination.nominee if coordinator else None,
            nominated_by=nomination.nominated_by if coordinator else None,
            hospital_id=nomination.hospital_id,
            unit_id=nomination.unit_id,
            discipline=nomination.discipline,
            clinical_area=nomination.clinical_area,
            status=nomination.status,
            languages=list(nomination.languages),
            gender=nomination.gender,
            nominated_at=nomination.nominated_at,
            answered_at=nomination.answered_at,
            decided_at=nomination.decided_at,
        )


class ApprovalRead(BaseModel):
    nomination: NominationRead
    peer: PeerRead
    """The nominee as now on the roster: registered, not yet certified."""


@contextmanager
def _as_problems() -> Iterator[None]:
    """The nomination rules' refusals, as the API's problems (one mapping for every endpoint)."""
    try:
        yield
    except nominations.UnknownNomination as exc:
        raise NotFound(str(exc)) from exc
    except nominations.NotTheNominee as exc:
        raise Forbidden(str(exc)) from exc
    except (AlreadyOnRoster, nominations.AlreadyNominated) as exc:
        raise Conflict(str(exc)) from exc
    except (NominationRuleBroken, RosterRuleBroken) as exc:
        raise RuleRefused(str(exc)) from exc


def _viewer(request: Request, principal: Principal) -> nominations.Viewer:
    return nominations.Viewer(
        pseudonym=caller_pseudonym(request, principal),
        keeps_roster=keeps_roster(principal),
        hospital=hospital_scope(principal),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NominationRead,
    summary="Nominate a colleague as a peer supporter (they are asked for their consent)",
)
async def nominate(
    body: NominationRequest, request: Request, response: Response, principal: Staff
) -> NominationRead:
    hospital = body.hospital_id or principal.hospital_id
    if hospital is None:
        raise RuleRefused("hospital_id is required when your token names no hospital")
    settings: ServiceSettings = request.app.state.settings
    command = nominations.Nominate(
        nominee=pseudonym_for(settings.pseudonym_key, principal.network_id, body.staff_ref),
        hospital_id=hospital,
        unit_id=body.unit_id,
        discipline=body.discipline,
        clinical_area=body.clinical_area,
    )
    with _as_problems():
        nomination = await nominations.nominate_colleague(
            runtime=runtime_of(request),
            principal=principal,
            nominated_by=caller_pseudonym(request, principal),
            command=command,
        )
    response.headers["Location"] = f"/v1/nominations/{nomination.nomination_id}"
    return NominationRead.of(nomination, principal)


@router.get(
    "",
    response_model=list[NominationRead],
    summary="Nominations of your hospital (a coordinator) or network (network_admin), newest first",
)
async def list_nominations(
    request: Request,
    principal: Coordinator,
    hospital_id: Annotated[HospitalId | None, Query()] = None,
    nomination_status: Annotated[NominationStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NominationRead]:
    found = await nominations.listing(
        runtime=runtime_of(request),
        principal=principal,
        hospital=within_scope(principal, hospital_id),
        status=nomination_status,
        limit=limit,
    )
    return [NominationRead.of(n, principal) for n in found]


@router.get(
    "/mine",
    response_model=list[NominationRead],
    summary="Nominations of you, newest first: consent to or refuse the open ones",
)
async def my_nominations(request: Request, principal: Staff) -> list[NominationRead]:
    found = await nominations.listing(
        runtime=runtime_of(request),
        principal=principal,
        nominee=caller_pseudonym(request, principal),
    )
    return [NominationRead.of(n, principal) for n in found]


@router.get(
    "/{nomination_id}",
    response_model=NominationRead,
    summary="One nomination (its nominee, or a coordinator of its hospital)",
)
async def read_nomination(
    nomination_id: UUID, request: Request, principal: Staff
) -> NominationRead:
    with _as_problems():
        found = await nominations.find(
            runtime=runtime_of(request),
            principal=principal,
            viewer=_viewer(request, principal),
            nomination_id=nomination_id,
        )
    return NominationRead.of(found, principal)


@router.post(
    "/{nomination_id}/consent",
    response_model=NominationRead,
    summary="The nominee consents, giving the languages they can offer support in",
)
async def consent(
    nomination_id: UUID, body: ConsentRequest, request: Request, principal: Staff
) -> NominationRead:
    with _as_problems():
        answered = await nominations.consent(
            runtime=runtime_of(request),
            principal=principal,
            viewer=_viewer(request, principal),
            nomination_id=nomination_id,
            languages=tuple(body.languages),
            gender=body.gender,
        )
    return NominationRead.of(answered, principal)


@router.post(
    "/{nomination_id}/refusal",
    response_model=NominationRead,
    summary="The nominee refuses (also after consenting, until a coordinator decides)",
)
async def refuse(nomination_id: UUID, request: Request, principal: Staff) -> NominationRead:
    with _as_problems():
        answered = await nominations.refuse(
            runtime=runtime_of(request),
            principal=principal,
            viewer=_viewer(request, principal),
            nomination_id=nomination_id,
        )
    return NominationRead.of(answered, principal)


@router.post(
    "/{nomination_id}/approval",
    response_model=ApprovalRead,
    summary="Approve a nomination the nominee consented to: they join the roster (registered)",
)
async def approve(
    nomination_id: UUID, request: Request, response: Response, principal: Coordinator
) -> ApprovalRead:
    with _as_problems():
        approved, peer = await nominations.approve(
            runtime=runtime_of(request),
            principal=principal,
            viewer=_viewer(request, principal),
            nomination_id=nomination_id,
        )
    response.headers["Location"] = f"/v1/peers/{peer.pseudonym}"
    return ApprovalRead(nomination=NominationRead.of(approved, principal), peer=PeerRead.of(peer))


@router.post(
    "/{nomination_id}/decline",
    response_model=NominationRead,
    summary="Decline a nomination (waiting for the nominee, or consented)",
)
async def decline(nomination_id: UUID, request: Request, principal: Coordinator) -> NominationRead:
    with _as_problems():
        declined = await nominations.decline(
            runtime=runtime_of(request),
            principal=principal,
            viewer=_viewer(request, principal),
            nomination_id=nomination_id,
        )
    return NominationRead.of(declined, principal)
