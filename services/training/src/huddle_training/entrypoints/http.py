"""HTTP: translate requests into commands; the schemas here are the API's public contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response, status
from huddle_contracts.vocabulary import (
    PSEUDONYM_PATTERN,
    ClinicalArea,
    Discipline,
    Gender,
    HospitalId,
    LanguageTag,
    UnitId,
)
from huddle_runtime.auth import Forbidden
from huddle_runtime.edge import runtime_of
from huddle_runtime.problems import Conflict, NotFound, Problem
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.settings import ServiceSettings
from pydantic import AwareDatetime, BaseModel, Field

from huddle_training.adapters import repository
from huddle_training.application import roster
from huddle_training.domain.certification import Certification, CertificationRefused
from huddle_training.domain.roster import Peer, PeerStatus, RosterRuleBroken
from huddle_training.entrypoints.access import STRICT, Coordinator, hospital_scope
from huddle_training.settings import TrainingSettings

router = APIRouter(prefix="/v1/peers", tags=["peer roster"])

PeerPath = Annotated[str, Path(pattern=PSEUDONYM_PATTERN, description="The peer's pseudonym.")]


class PeerRegistration(BaseModel):
    model_config = STRICT

    staff_ref: str = Field(
        min_length=1,
        max_length=64,
        description="Staff identifier of the new peer; it is turned into a pseudonym at once and "
        "never stored.",
    )
    hospital_id: HospitalId | None = Field(
        default=None, description="Defaults to the hospital in your token."
    )
    unit_id: UnitId
    discipline: Discipline
    clinical_area: ClinicalArea | None = Field(
        default=None, description="The peer's specialty, e.g. icu, emergency, oncology."
    )
    languages: list[LanguageTag] = Field(
        min_length=1, max_length=20, description="Languages the peer can offer support in."
    )
    gender: Gender | None = Field(
        default=None, description="Given by the peer, opt-in, only to meet requesters' preferences."
    )


class CertificationRecord(BaseModel):
    model_config = STRICT

    certified_at: AwareDatetime | None = Field(
        default=None, description="When the peer completed training; defaults to now."
    )
    valid_until: AwareDatetime | None = Field(
        default=None,
        description="When a refresher is due; defaults to the network's validity period "
        "(12 months unless configured).",
    )


class PeerRead(BaseModel):
    peer: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    clinical_area: str | None
    languages: list[str]
    gender: Gender | None
    status: PeerStatus
    registered_at: datetime
    certified_at: datetime | None
    valid_until: datetime | None

    @classmethod
    def of(cls, peer: Peer) -> PeerRead:
        return cls(
            peer=peer.pseudonym,
            hospital_id=peer.hospital_id,
            unit_id=peer.unit_id,
            discipline=peer.discipline,
            clinical_area=peer.clinical_area,
            languages=list(peer.languages),
            gender=peer.gender,
            status=peer.status,
            registered_at=peer.registered_at,
            certified_at=peer.certified_at,
            valid_until=peer.valid_until,
        )


class RosterPage(BaseModel):
    peers: list[PeerRead]
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class CertificationRead(BaseModel):
    certification_id: UUID
    peer: str
    status: PeerStatus
    certified_at: datetime
    valid_until: datetime
    recorded_at: datetime

    @classmethod
    def of(cls, peer: Peer, certification: Certification) -> CertificationRead:
        return cls(
            certification_id=certification.certification_id,
            peer=peer.pseudonym,
            status=peer.status,
            certified_at=certification.certified_at,
            valid_until=certification.valid_until,
            recorded_at=certification.recorded_at,
        )


class RosterRuleProblem(Problem):
    status = 422
    title = "Refused by programme rules"
    type_suffix = "programme-rule"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PeerRead,
    summary="Register a member of staff as a peer (not yet certified)",
)
async def register_peer(
    body: PeerRegistration, request: Request, response: Response, principal: Coordinator
) -> PeerRead:
    scope = hospital_scope(principal)
    hospital = body.hospital_id or principal.hospital_id
    if hospital is None:
        raise RosterRuleProblem("hospital_id is required when your token names no hospital")
    if scope is not None and hospital != scope:
        raise Forbidden(f"your token is for hospital {scope!r}, not {hospital!r}")
    settings: ServiceSettings = request.app.state.settings
    command = roster.RegisterPeer(
        pseudonym=pseudonym_for(settings.pseudonym_key, principal.network_id, body.staff_ref),
        hospital_id=hospital,
        unit_id=body.unit_id,
        discipline=body.discipline,
        languages=tuple(body.languages),
        clinical_area=body.clinical_area,
        gender=body.gender,
    )
    try:
        peer = await roster.register(
            runtime=runtime_of(request), principal=principal, command=command
        )
    except roster.AlreadyOnRoster as exc:
        raise Conflict(str(exc)) from exc
    except RosterRuleBroken as exc:
        raise RosterRuleProblem(str(exc)) from exc
    response.headers["Location"] = f"/v1/peers/{peer.pseudonym}"
    return PeerRead.of(peer)


@router.get(
    "",
    response_model=RosterPage,
    summary="The roster: your hospital's peers (a coordinator) or the network's (network_admin)",
)
async def list_peers(
    request: Request,
    principal: Coordinator,
    hospital_id: Annotated[HospitalId | None, Query()] = None,
    peer_status: Annotated[PeerStatus | None, Query(alias="status")] = None,
    after: Annotated[str | None, Query(pattern=PSEUDONYM_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RosterPage:
    scope = hospital_scope(principal)
    if scope is not None and hospital_id not in (None, scope):
        raise Forbidden(f"your token is for hospital {scope!r}, not {hospital_id!r}")
    peers = await roster.list_roster(
        runtime=runtime_of(request),
        principal=principal,
        hospital=scope or hospital_id,
        status=peer_status,
        after=after,
        limit=limit + 1,  # one more than shown tells whether another page follows
    )
    shown = peers[:limit]
    return RosterPage(
        peers=[PeerRead.of(p) for p in shown],
        next_after=shown[-1].pseudonym if len(peers) > limit else None,
    )


@router.get("/{peer}", response_model=PeerRead, summary="One peer on your roster")
async def read_peer(peer: PeerPath, request: Request, principal: Coordinator) -> PeerRead:
    try:
        found = await roster.find_peer(
            runtime=runtime_of(request),
            principal=principal,
            hospital=hospital_scope(principal),
            pseudonym=peer,
        )
    except roster.UnknownPeer as exc:
        raise NotFound(str(exc)) from exc
    return PeerRead.of(found)


@router.post(
    "/{peer}/certifications",
    status_code=status.HTTP_201_CREATED,
    response_model=CertificationRead,
    summary="Record a certification or refresher: the peer may be matched until it lapses",
)
async def certify_peer(
    peer: PeerPath, body: CertificationRecord, request: Request, principal: Coordinator
) -> CertificationRead:
    training: TrainingSettings = request.app.state.training_settings
    command = roster.CertifyPeer(
        pseudonym=peer,
        validity_months=training.certification_validity_months,
        certified_at=body.certified_at,
        valid_until=body.valid_until,
    )
    try:
        certified, certification = await roster.certify(
            runtime=runtime_of(request),
            principal=principal,
            hospital=hospital_scope(principal),
            command=command,
        )
    except roster.UnknownPeer as exc:
        raise NotFound(str(exc)) from exc
    except (CertificationRefused, RosterRuleBroken) as exc:
        raise RosterRuleProblem(str(exc)) from exc
    return CertificationRead.of(certified, certification)


@router.post(
    "/{peer}/withdrawal",
    response_model=PeerRead,
    summary="Withdraw a peer (at any time); matching stops offering them cases",
)
async def withdraw_peer(peer: PeerPath, request: Request, principal: Coordinator) -> PeerRead:
    try:
        withdrawn = await roster.withdraw(
            runtime=runtime_of(request),
            principal=principal,
            hospital=hospital_scope(principal),
            pseudonym=peer,
        )
    except roster.UnknownPeer as exc:
        raise NotFound(str(exc)) from exc
    return PeerRead.of(withdrawn)


coverage_router = APIRouter(prefix="/v1/coverage", tags=["peer roster"])


@coverage_router.get(
    "",
    summary="Coverage: certified peers per hospital and discipline, per discipline, and who "
    "lapses soon",
)
async def coverage(
    request: Request, principal: Coordinator, lapsing_within_days: int = Query(30, ge=1, le=365)
) -> dict[str, list[dict[str, object]]]:
    """`certified`: per hospital and discipline; `by_discipline`: per discipline over the
    caller's hospital (a coordinator) or network; `lapsing_soon`: certified peers whose
    certification ends within `lapsing_within_days`. On-call cover per shift is matching's rota."""
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        return await repository.coverage(
            uow.conn,
            hospital_id=hospital_scope(principal),
            lapsing_before=datetime.now(UTC) + timedelta(days=lapsing_within_days),
        )
