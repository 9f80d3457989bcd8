"""HTTP: incident systems report adverse events; the network sets its outreach policy."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.responses import JSONResponse
from huddle_contracts.vocabulary import HarmCategory, HarmLevel, HospitalId
from huddle_runtime.auth import Forbidden, Principal, Role, require_roles
from huddle_runtime.edge import runtime_of
from huddle_runtime.problems import ContentTooLarge, NotFound, Problem, UnsupportedMediaType
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.settings import ServiceSettings
from pydantic import BaseModel, ConfigDict, Field

from huddle_intake.adapters.report_formats import (
    FHIR_JSON,
    HUDDLE_JSON,
    HuddleAdverseEventReport,
    read_report,
)
from huddle_intake.application import outreach_policies
from huddle_intake.application.adverse_events import (
    IdempotencyKeyReused,
    Reporter,
    submit_adverse_event,
)
from huddle_intake.domain.adverse_event_report import (
    ReportOutOfScope,
    ReportRefused,
    UnsupportedFormat,
)
from huddle_intake.domain.outreach_policy import OutreachPolicy, PolicyRefused, PolicySource

router = APIRouter(tags=["adverse events"])

# A FHIR AdverseEvent with a few contained practitioners is a few kilobytes.
MAX_REPORT_BYTES = 1024 * 1024
# RFC 9110 field value, kept short: visible ASCII only, so it cannot carry a sentence.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class AdverseEventAccepted(BaseModel):
    adverse_event_id: UUID
    outreach_triggered: bool
    group_debrief_requested: bool
    support_requests: int = Field(description="Outreach requests made, one per person involved.")
    unknown_staff: int = Field(
        description="People the workforce directory does not know: still offered support, "
        "through their manager's unit or the event's unit."
    )


class RefusedReport(Problem):
    status = 422
    title = "Adverse-event report refused"
    type_suffix = "adverse-event-report"


class ReusedIdempotencyKey(Problem):
    status = 422
    title = "Idempotency-Key reused for a different request"
    type_suffix = "idempotency-key-reused"


class RefusedPolicy(Problem):
    status = 422
    title = "Outreach policy refused"
    type_suffix = "outreach-policy"


ReportingSystem = Annotated[Principal, Depends(require_roles(Role.REPORTER))]
PolicyReader = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.NETWORK_ADMIN))]
PolicyAdmin = Annotated[Principal, Depends(require_roles(Role.NETWORK_ADMIN))]


def _settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``$defs`` written in place: OpenAPI resolves a ``$ref`` from the
    document's root, where the model's own ``$defs`` are not."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            siblings = {k: resolve(v) for k, v in node.items() if k != "$ref"}
            return {**resolve(definitions[ref.removeprefix("#/$defs/")]), **siblings}
        return {key: resolve(value) for key, value in node.items()}

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_REPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            HUDDLE_JSON: {"schema": _inlined(HuddleAdverseEventReport.model_json_schema())},
            FHIR_JSON: {
                "schema": {
                    "type": "object",
                    "description": "An HL7 FHIR AdverseEvent, R4 or R5 (fhirVersion=4.0 or 5.0 "
                    "as a media-type parameter, else told by shape: participant is R5, "
                    "contributor R4).",
                }
            },
        },
    }
}


@router.post(
    "/v1/adverse-events",
    status_code=status.HTTP_201_CREATED,
    response_model=AdverseEventAccepted,
    responses={
        200: {
            "model": AdverseEventAccepted,
            "description": "Reported before: the first result, nothing new created",
        }
    },
    summary="Report an adverse event (Huddle's JSON or a FHIR AdverseEvent, R4 or R5)",
    description="Patient data is dropped at the edge; involved staff become pseudonyms. A retry "
    "with the same `Idempotency-Key` gets the first answer.",
    openapi_extra=_REPORT_BODY,
)
async def report_adverse_event(
    request: Request,
    principal: ReportingSystem,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    body = await _body(request)
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise RefusedReport("Idempotency-Key must be 1 to 255 visible ASCII characters")
    content_type = request.headers.get("content-type")
    try:
        report = read_report(body, content_type)
    except UnsupportedFormat as exc:
        raise UnsupportedMediaType(str(exc)) from None
    except ReportRefused as exc:
        raise RefusedReport(str(exc)) from None
    key = _settings(request).pseudonym_key
    reporter = Reporter.known_as(
        key,
        network_id=principal.network_id,
        hospital_id=principal.hospital_id,
        identity=principal.subject,
    )
    try:
        answer = await submit_adverse_event(
            runtime=runtime_of(request),
            pseudonym_key=key,
            reporter=reporter,
            report=report,
            idempotency_key=idempotency_key,
            request_fingerprint=(content_type or "").encode() + b"\n" + body,
        )
    except ReportOutOfScope as exc:
        raise Forbidden(str(exc)) from None
    except IdempotencyKeyReused as exc:
        raise ReusedIdempotencyKey(str(exc)) from None
    except ReportRefused as exc:
        raise RefusedReport(str(exc)) from None
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


async def _body(request: Request) -> bytes:
    """The body, refused as soon as it is known to be too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REPORT_BYTES:
        raise ContentTooLarge(f"a report is at most {MAX_REPORT_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REPORT_BYTES:
            raise ContentTooLarge(f"a report is at most {MAX_REPORT_BYTES} bytes")
    return bytes(body)


class OutreachPolicyIn(BaseModel):
    """Which events offer support to everyone involved (a hospital's replaces the network's)."""

    model_config = ConfigDict(extra="forbid")

    harm_levels: list[HarmLevel] = Field(description="e.g. death, severe")
    categories: list[HarmCategory]
    near_misses: bool = False


class OutreachPolicyRead(BaseModel):
    harm_levels: list[HarmLevel]
    categories: list[HarmCategory]
    near_misses: bool
    source: PolicySource = Field(
        description="default (DOMAIN.md's triggers), network, or hospital (its own override)"
    )

    @classmethod
    def of(cls, policy: OutreachPolicy, source: PolicySource) -> OutreachPolicyRead:
        return cls(
            harm_levels=[level for level in HarmLevel if level in policy.harm_levels],
            categories=[c for c in HarmCategory if c in policy.categories],
            near_misses=policy.near_misses,
            source=source,
        )


def _policy(body: OutreachPolicyIn) -> OutreachPolicy:
    try:
        return OutreachPolicy.of(
            harm_levels=body.harm_levels, categories=body.categories, near_misses=body.near_misses
        )
    except PolicyRefused as exc:
        raise RefusedPolicy(str(exc)) from None


def _in_scope(principal: Principal, hospital_id: str | None) -> None:
    """A token bound to a hospital sees its own hospital's policy and sets no one else's."""
    if principal.hospital_id is None:
        return
    if hospital_id is None:
        raise Forbidden("a token bound to a hospital cannot set the network's policy")
    if hospital_id != principal.hospital_id:
        raise Forbidden("your token is for another hospital")


def _updated_by(request: Request, principal: Principal) -> str:
    return pseudonym_for(_settings(request).pseudonym_key, principal.network_id, principal.subject)


@router.get(
    "/v1/outreach-policy",
    response_model=OutreachPolicyRead,
    summary="The network's outreach policy (DOMAIN.md's triggers until it sets its own)",
)
async def read_network_policy(request: Request, principal: PolicyReader) -> OutreachPolicyRead:
    policy, source = await outreach_policies.policy_for(
        runtime=runtime_of(request), principal=principal, hospital_id=None
    )
    return OutreachPolicyRead.of(policy, source)


@router.put(
    "/v1/outreach-policy",
    response_model=OutreachPolicyRead,
    summary="Set the network's outreach policy (hospitals without their own follow it)",
)
async def put_network_policy(
    body: OutreachPolicyIn, request: Request, principal: PolicyAdmin
) -> OutreachPolicyRead:
    _in_scope(principal, None)
    policy = _policy(body)
    await outreach_policies.set_policy(
        runtime=runtime_of(request),
        principal=principal,
        hospital_id=None,
        policy=policy,
        updated_by=_updated_by(request, principal),
    )
    return OutreachPolicyRead.of(policy, PolicySource.NETWORK)


@router.get(
    "/v1/hospitals/{hospital_id}/outreach-policy",
    response_model=OutreachPolicyRead,
    summary="The outreach policy in force for a hospital, and where it comes from",
)
async def read_hospital_policy(
    hospital_id: HospitalId, request: Request, principal: PolicyReader
) -> OutreachPolicyRead:
    if principal.hospital_id is not None and hospital_id != principal.hospital_id:
        raise Forbidden("your token is for another hospital")
    policy, source = await outreach_policies.policy_for(
        runtime=runtime_of(request), principal=principal, hospital_id=hospital_id
    )
    return OutreachPolicyRead.of(policy, source)


@router.put(
    "/v1/hospitals/{hospital_id}/outreach-policy",
    response_model=OutreachPolicyRead,
    summary="Set a hospital's own outreach policy (it replaces the network's whole)",
)
async def put_hospital_policy(
    hospital_id: HospitalId, body: OutreachPolicyIn, request: Request, principal: PolicyAdmin
) -> OutreachPolicyRead:
    _in_scope(principal, hospital_id)
    policy = _policy(body)
    await outreach_policies.set_policy(
        runtime=runtime_of(request),
        principal=principal,
        hospital_id=hospital_id,
        policy=policy,
        updated_by=_updated_by(request, principal),
    )
    return OutreachPolicyRead.of(policy, PolicySource.HOSPITAL)


@router.delete(
    "/v1/hospitals/{hospital_id}/outreach-policy",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop a hospital's own outreach policy: the network's applies again",
)
async def delete_hospital_policy(
    hospital_id: HospitalId, request: Request, principal: PolicyAdmin
) -> Response:
    _in_scope(principal, hospital_id)
    removed = await outreach_policies.remove_hospital_policy(
        runtime=runtime_of(request), principal=principal, hospital_id=hospital_id
    )
    if not removed:
        raise NotFound("the hospital has no outreach policy of its own")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
