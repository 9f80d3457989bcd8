"""HTTP for the training programme: the network's course catalogue and certification rule (kept
by network admins), and cohorts (kept by coordinators): enrolment, attendance per module, and the
certifications that attendance earns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response, status
from huddle_contracts.vocabulary import HospitalId, Pseudonym
from huddle_runtime.edge import RuleRefused, runtime_of
from huddle_runtime.problems import Conflict, NotFound
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from huddle_training.application import courses
from huddle_training.application.roster import UnknownPeer
from huddle_training.domain.certification import CertificationRefused
from huddle_training.domain.certification_rule import CertificationRule, CertificationRuleBroken
from huddle_training.domain.course import Cohort, CourseRuleBroken, Delivery, Module
from huddle_training.domain.roster import RosterRuleBroken
from huddle_training.entrypoints.access import (
    STRICT,
    Coordinator,
    NetworkAdmin,
    Staff,
    hospital_scope,
    target_hospital,
    within_scope,
)
from huddle_training.settings import TrainingSettings

_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
ModuleCode = Annotated[str, StringConstraints(pattern=_SLUG)]
ModulePath = Annotated[str, Path(pattern=_SLUG, description="The module's code (a slug).")]

catalogue_router = APIRouter(prefix="/v1/catalogue", tags=["training programme"])
rule_router = APIRouter(prefix="/v1/certification-rule", tags=["training programme"])
cohort_router = APIRouter(prefix="/v1/cohorts", tags=["training programme"])

_PROGRAMME_RULES = (CourseRuleBroken, CertificationRuleBroken, CertificationRefused)


class ModuleWrite(BaseModel):
    model_config = STRICT

    title: str = Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")
    hours: float = Field(description="Between 0.5 and 40.")
    delivery: Delivery


class ModuleRead(BaseModel):
    module: str
    title: str
    hours: float
    delivery: Delivery

    @classmethod
    def of(cls, module: Module) -> ModuleRead:
        return cls(
            module=module.code, title=module.title, hours=module.hours, delivery=module.delivery
        )


class RuleWrite(BaseModel):
    model_config = STRICT

    required_modules: list[ModuleCode] = Field(
        min_length=1, max_length=50, description="Attending every one certifies a peer."
    )
    refresher_modules: list[ModuleCode] | None = Field(
        default=None,
        max_length=50,
        description="Attending every one again renews a certification; defaults to the "
        "required modules.",
    )
    validity_months: int | None = Field(
        default=None,
        description="How long a certification lasts; defaults to "
        "HUDDLE_TRAINING_CERTIFICATION_VALIDITY_MONTHS (12).",
    )


class RuleRead(BaseModel):
    configured: bool
    """False: no rule yet; peers are certified by hand only, for the default validity."""
    required_modules: list[str]
    refresher_modules: list[str]
    validity_months: int


class CohortCreate(BaseModel):
    model_config = STRICT

    label: ModuleCode = Field(description="A slug, e.g. spring-2026.")
    hospital_id: HospitalId | None = Field(
        default=None, description="Defaults to the hospital in your token."
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    modules: list[ModuleCode] = Field(
        min_length=1, max_length=50, description="Catalogue modules it teaches, in order."
    )


class CohortRead(BaseModel):
    cohort_id: UUID
    hospital_id: str
    label: str
    starts_at: datetime
    ends_at: datetime
    modules: list[str]
    created_at: datetime

    @classmethod
    def of(cls, cohort: Cohort) -> CohortRead:
        return cls(
            cohort_id=cohort.cohort_id,
            hospital_id=cohort.hospital_id,
            label=cohort.label,
            starts_at=cohort.starts_at,
            ends_at=cohort.ends_at,
            modules=list(cohort.modules),
            created_at=cohort.created_at,
        )


class EnrolmentRead(BaseModel):
    peer: str
    enrolled_at: datetime
    completed_at: datetime | None
    attended: dict[str, datetime] = Field(description="Module -> when the peer attended it.")


class CohortDetail(CohortRead):
    hours: float
    enrolments: list[EnrolmentRead]


class EnrolmentRequest(BaseModel):
    model_config = STRICT

    peer: Pseudonym


class AttendanceRequest(BaseModel):
    model_config = STRICT

    module: ModuleCode
    attended_at: AwareDatetime
    peers: list[Pseudonym] = Field(min_length=1, max_length=200, description="Who attended.")


class CertificationGranted(BaseModel):
    certification_id: UUID
    peer: str
    certified_at: datetime
    valid_until: datetime


class AttendanceRead(BaseModel):
    module: str
    recorded: list[str] = Field(description="Peers whose attendance is new.")
    completed: list[str] = Field(description="Peers who have now attended every module.")
    certified: list[CertificationGranted] = Field(
        description="Certifications or refreshers the network's rule granted (PeerCertified)."
    )


@catalogue_router.put(
    "/modules/{module}",
    response_model=ModuleRead,
    summary="Add (201) or update (200) a module of your network's course catalogue",
    responses={201: {"model": ModuleRead}},
)
async def put_module(
    module: ModulePath,
    body: ModuleWrite,
    request: Request,
    response: Response,
    principal: NetworkAdmin,
) -> ModuleRead:
    try:
        written = Module(module, body.title, body.hours, body.delivery)
    except CourseRuleBroken as exc:
        raise RuleRefused(str(exc)) from exc
    if await courses.put_module(runtime=runtime_of(request), principal=principal, module=written):
        response.status_code = status.HTTP_201_CREATED
    return ModuleRead.of(written)


@catalogue_router.get(
    "/modules", response_model=list[ModuleRead], summary="Your network's course catalogue"
)
async def list_modules(request: Request, principal: Staff) -> list[ModuleRead]:
    found = await courses.catalogue(runtime=runtime_of(request), principal=principal)
    return [ModuleRead.of(m) for m in found.values()]


@rule_router.put(
    "",
    response_model=RuleRead,
    summary="Set your network's certification rule: required and refresher modules, validity",
)
async def put_rule(body: RuleWrite, request: Request, principal: NetworkAdmin) -> RuleRead:
    training: TrainingSettings = request.app.state.training_settings
    try:
        rule = await courses.put_rule(
            runtime=runtime_of(request),
            principal=principal,
            rule=CertificationRule(
                required_modules=tuple(body.required_modules),
                refresher_modules=tuple(body.refresher_modules or ()),
                validity_months=body.validity_months or training.certification_validity_months,
            ),
        )
    except CertificationRuleBroken as exc:
        raise RuleRefused(str(exc)) from exc
    return _rule_read(rule, training)


@rule_router.get("", response_model=RuleRead, summary="Your network's certification rule")
async def read_rule(request: Request, principal: Coordinator) -> RuleRead:
    rule = await courses.certification_rule(runtime=runtime_of(request), principal=principal)
    return _rule_read(rule, request.app.state.training_settings)


def _rule_read(rule: CertificationRule | None, training: TrainingSettings) -> RuleRead:
    if rule is None:
        return RuleRead(
            configured=False,
            required_modules=[],
            refresher_modules=[],
            validity_months=training.certification_validity_months,
        )
    return RuleRead(
        configured=True,
        required_modules=list(rule.required_modules),
        refresher_modules=list(rule.refresher_modules),
        validity_months=rule.validity_months,
    )


@cohort_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CohortRead,
    summary="Plan a cohort at a hospital: its dates and the catalogue modules it teaches",
)
async def plan_cohort(
    body: CohortCreate, request: Request, response: Response, principal: Coordinator
) -> CohortRead:
    command = courses.PlanCohort(
        hospital_id=target_hospital(principal, body.hospital_id),
        label=body.label,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        modules=tuple(body.modules),
    )
    try:
        cohort = await courses.plan(
            runtime=runtime_of(request), principal=principal, command=command
        )
    except CourseRuleBroken as exc:
        raise RuleRefused(str(exc)) from exc
    response.headers["Location"] = f"/v1/cohorts/{cohort.cohort_id}"
    return CohortRead.of(cohort)


@cohort_router.get(
    "",
    response_model=list[CohortRead],
    summary="Cohorts of your hospital (a coordinator) or network (network_admin), newest first",
)
async def list_cohorts(
    request: Request,
    principal: Coordinator,
    hospital_id: Annotated[HospitalId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CohortRead]:
    found = await courses.list_cohorts(
        runtime=runtime_of(request),
        principal=principal,
        hospital=within_scope(principal, hospital_id),
        limit=limit,
    )
    return [CohortRead.of(c) for c in found]


@cohort_router.get(
    "/{cohort_id}",
    response_model=CohortDetail,
    summary="One cohort: its peers, what each attended, and who completed",
)
async def read_cohort(cohort_id: UUID, request: Request, principal: Coordinator) -> CohortDetail:
    runtime = runtime_of(request)
    try:
        cohort, enrolled = await courses.cohort_with_enrolments(
            runtime=runtime,
            principal=principal,
            hospital=hospital_scope(principal),
            cohort_id=cohort_id,
        )
    except courses.UnknownCohort as exc:
        raise NotFound(str(exc)) from exc
    catalogue = await courses.catalogue(runtime=runtime, principal=principal)
    return CohortDetail(
        **CohortRead.of(cohort).model_dump(),
        hours=cohort.hours(catalogue),
        enrolments=[EnrolmentRead.model_validate(e) for e in enrolled],
    )


@cohort_router.post(
    "/{cohort_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    summary="Enrol a peer of your roster (registered, certified or lapsed) in the cohort",
)
async def enrol(
    cohort_id: UUID, body: EnrolmentRequest, request: Request, principal: Coordinator
) -> dict[str, object]:
    try:
        enrolled_at = await courses.enrol(
            runtime=runtime_of(request),
            principal=principal,
            hospital=hospital_scope(principal),
            cohort_id=cohort_id,
            peer=body.peer,
        )
    except (courses.UnknownCohort, UnknownPeer) as exc:
        raise NotFound(str(exc)) from exc
    except courses.AlreadyEnrolled as exc:
        raise Conflict(str(exc)) from exc
    except CourseRuleBroken as exc:
        raise RuleRefused(str(exc)) from exc
    return {"cohort_id": cohort_id, "peer": body.peer, "enrolled_at": enrolled_at}


@cohort_router.post(
    "/{cohort_id}/attendance",
    response_model=AttendanceRead,
    summary="Record who attended a module; certifies (PeerCertified) whoever completed the "
    "network's required (or refresher) modules",
)
async def take_attendance(
    cohort_id: UUID, body: AttendanceRequest, request: Request, principal: Coordinator
) -> AttendanceRead:
    try:
        taken = await courses.take_attendance(
            runtime=runtime_of(request),
            principal=principal,
            hospital=hospital_scope(principal),
            cohort_id=cohort_id,
            module=body.module,
            attended_at=body.attended_at,
            peers=body.peers,
        )
    except courses.UnknownCohort as exc:
        raise NotFound(str(exc)) from exc
    except (*_PROGRAMME_RULES, RosterRuleBroken) as exc:
        raise RuleRefused(str(exc)) from exc
    return AttendanceRead(
        module=body.module,
        recorded=taken.recorded,
        completed=taken.completed,
        certified=[
            CertificationGranted(
                certification_id=c.certification_id,
                peer=c.peer,
                certified_at=c.certified_at,
                valid_until=c.valid_until,
            )
            for c in taken.certified
        ],
    )
