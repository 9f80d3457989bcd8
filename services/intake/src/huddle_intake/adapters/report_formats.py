"""The formats an incident system may report in, over HTTP or the inbound topic alike.

``application/json`` is Huddle's own report (below); ``application/fhir+json`` is an HL7 FHIR
AdverseEvent, R4 or R5 (``adapters/fhir_reports.py``). Either way the result is one
``AdverseEventReport`` and nothing else of the document survives.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from huddle_contracts.vocabulary import (
    Discipline,
    EventClass,
    HarmCategory,
    HarmLevel,
    HospitalId,
    UnitId,
)
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from huddle_intake.adapters.fhir_reports import fhir_release, read_fhir_report
from huddle_intake.adapters.validation_errors import describe
from huddle_intake.domain.adverse_event_report import (
    MAX_INVOLVED_STAFF,
    MAX_REFERENCE_LENGTH,
    AdverseEventReport,
    InvolvedStaffRef,
    ReportRefused,
    UnsupportedFormat,
)

HUDDLE_JSON = "application/json"
FHIR_JSON = "application/fhir+json"
MEDIA_TYPES = (HUDDLE_JSON, FHIR_JSON)

Reference = Annotated[str, Field(min_length=1, max_length=MAX_REFERENCE_LENGTH)]
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InvolvedStaffIn(BaseModel):
    """A member of staff involved, by the identifier the workforce directory knows them by."""

    model_config = _STRICT

    staff_ref: Reference = Field(
        description="Employee number (or the identifier the directory was provisioned with); "
        "turned into a pseudonym at once, never stored."
    )
    discipline: Discipline | None = Field(
        default=None, description="A hint for someone the directory does not know."
    )
    manager_ref: Reference | None = Field(
        default=None,
        description="Their manager's staff identifier: someone the directory does not know is "
        "offered support through their manager's unit.",
    )


class HuddleAdverseEventReport(BaseModel):
    """An adverse event in Huddle's own JSON: no patient, no narrative, by construction."""

    model_config = _STRICT

    reporter_event_id: Reference = Field(
        description="The incident system's own id; kept only as a keyed digest, so the same "
        "report sent twice is recognised."
    )
    hospital_id: HospitalId | None = Field(
        default=None, description="Defaults to the hospital of the reporter's token."
    )
    unit_ids: Annotated[list[UnitId], Field(min_length=1, max_length=20)] = Field(
        description="Where the event happened; the first is where staff unknown to the "
        "directory are offered support."
    )
    event_class: EventClass = EventClass.INCIDENT
    harm_level: HarmLevel
    categories: Annotated[list[HarmCategory], Field(max_length=len(HarmCategory))] = []
    occurred_at: AwareDatetime
    involved: Annotated[list[InvolvedStaffIn], Field(max_length=MAX_INVOLVED_STAFF)] = []

    def report(self) -> AdverseEventReport:
        return AdverseEventReport(
            reporter_event_id=self.reporter_event_id,
            hospital_id=self.hospital_id,
            unit_ids=tuple(dict.fromkeys(self.unit_ids)),
            event_class=self.event_class,
            harm_level=self.harm_level,
            categories=tuple(dict.fromkeys(self.categories)),
            occurred_at=self.occurred_at,
            involved=tuple(
                InvolvedStaffRef(
                    staff_refs=(person.staff_ref,),
                    discipline_hint=person.discipline,
                    manager_ref=person.manager_ref,
                )
                for person in self.involved
            ),
        )


def read_report(body: bytes, content_type: str | None) -> AdverseEventReport:
    """The report in ``body``, read by its media type; ReportRefused never quotes the body."""
    media_type, parameters = media_type_of(content_type)
    if media_type not in MEDIA_TYPES:
        raise UnsupportedFormat(
            "send the report as application/json (Huddle's report) or application/fhir+json "
            "(an HL7 FHIR AdverseEvent, R4 or R5)"
        )
    document = _json_object(body)
    if media_type == FHIR_JSON:
        release = fhir_release(document, parameters.get("fhirversion"))
        return read_fhir_report(document, release)
    if "resourceType" in document:
        raise UnsupportedFormat("a FHIR resource is sent as application/fhir+json")
    try:
        return HuddleAdverseEventReport.model_validate(document).report()
    except ValidationError as exc:
        raise ReportRefused(f"not a valid report: {describe(exc, document)}") from None


def media_type_of(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``type/subtype`` in lower case and the parameters (names in lower case)."""
    if not content_type:
        return "", {}
    media_type, *raw = content_type.split(";")
    parameters = {}
    for item in raw:
        name, _, value = item.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"')
    return media_type.strip().lower(), parameters


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        # `from None`: the decoder's message quotes the document around the error.
        raise ReportRefused("the body is not valid JSON (UTF-8)") from None
    if not isinstance(document, dict):
        raise ReportRefused("the body must be a JSON object")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")
