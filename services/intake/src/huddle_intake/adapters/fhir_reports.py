"""HL7 FHIR AdverseEvent, R4 and R5, read into an AdverseEventReport, and nothing more.

``fhir.resources`` parses and validates the resource (R4 with the R4B models, whose AdverseEvent
is R4's); the report is then read from the parsed model, element by element. Whatever is not read
here (``subject``, ``text``, ``note``, ``resultingCondition``/``resultingEffect``,
``suspectEntity``, contained patients, every display and free text…) is dropped with the model:
it never reaches a table, a log or the bus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from fhir.resources import practitioner as r5_practitioner
from fhir.resources import practitionerrole as r5_role
from fhir.resources.adverseevent import AdverseEvent as R5AdverseEvent
from fhir.resources.careteam import CareTeam as R5CareTeam
from fhir.resources.location import Location as R5Location
from fhir.resources.organization import Organization as R5Organization
from fhir.resources.R4B import practitioner as r4_practitioner
from fhir.resources.R4B import practitionerrole as r4_role
from fhir.resources.R4B.adverseevent import AdverseEvent as R4AdverseEvent
from fhir.resources.R4B.careteam import CareTeam as R4CareTeam
from fhir.resources.R4B.location import Location as R4Location
from fhir.resources.R4B.organization import Organization as R4Organization
from huddle_contracts.vocabulary import Discipline, EventClass, HarmCategory, HarmLevel
from pydantic import ValidationError

from huddle_intake.adapters.validation_errors import describe
from huddle_intake.domain.adverse_event_report import (
    AdverseEventReport,
    InvolvedStaffRef,
    ReportRefused,
    UnsupportedFormat,
)


class FhirRelease(StrEnum):
    R4 = "R4"
    R5 = "R5"


# The fhirVersion media-type parameter (FHIR §3.1.0.1.11) gives major.minor; R4B reads as R4.
_RELEASE_OF_VERSION = {"4.0": FhirRelease.R4, "4.3": FhirRelease.R4, "5.0": FhirRelease.R5}

HL7 = "http://terminology.hl7.org/CodeSystem/"
SERIOUSNESS = HL7 + "adverse-event-seriousness"
SEVERITY = HL7 + "adverse-event-severity"
OUTCOME = HL7 + "adverse-event-outcome"
CATEGORY = HL7 + "adverse-event-category"
PRACTITIONER_ROLE = HL7 + "practitioner-role"
DEGREE = HL7 + "v2-0360"
SNOMED = "http://snomed.info/sct"
HUDDLE_HARM_LEVEL = "https://huddle.dev/fhir/CodeSystem/harm-level"
HUDDLE_HARM_CATEGORY = "https://huddle.dev/fhir/CodeSystem/harm-category"
HUDDLE_DISCIPLINE = "https://huddle.dev/fhir/CodeSystem/discipline"

# Codes compare without case, hyphens or underscores: R4 writes resolvedWithSequelae and
# Non-serious, R5 resolved-with-sequelae and non-serious.
HARM_OF_CODE: Mapping[tuple[str, str], HarmLevel] = {
    (SERIOUSNESS, "serious"): HarmLevel.SEVERE,
    (SERIOUSNESS, "seriousresultsindeath"): HarmLevel.DEATH,
    (SERIOUSNESS, "seriousislifethreatening"): HarmLevel.SEVERE,
    (SERIOUSNESS, "seriousresultsinpersistentdisability"): HarmLevel.SEVERE,
    (SERIOUSNESS, "seriousisbirthdefect"): HarmLevel.SEVERE,
    (SERIOUSNESS, "seriousresultsinhospitalization"): HarmLevel.MODERATE,
    (SERIOUSNESS, "seriousrequirespreventimpairment"): HarmLevel.MODERATE,
    (SEVERITY, "mild"): HarmLevel.MILD,
    (SEVERITY, "moderate"): HarmLevel.MODERATE,
    (SEVERITY, "severe"): HarmLevel.SEVERE,
    (OUTCOME, "fatal"): HarmLevel.DEATH,
    (OUTCOME, "resolvedwithsequelae"): HarmLevel.MODERATE,
    (SNOMED, "419099009"): HarmLevel.DEATH,  # Dead
    (SNOMED, "399166001"): HarmLevel.DEATH,  # Fatal
    (SNOMED, "24484000"): HarmLevel.SEVERE,  # Severe
    (SNOMED, "6736007"): HarmLevel.MODERATE,  # Moderate
    (SNOMED, "255604002"): HarmLevel.MILD,  # Mild
    **{(HUDDLE_HARM_LEVEL, level.value.replace("_", "")): level for level in HarmLevel},
}

_MEDICATION = (
    "wrongdose",
    "incorrectprescribinginformation",
    "wrongrouteofadministration",
    "wrongrate",
    "wrongduration",
    "wrongtime",
    "expireddrug",
    "medicationmishap",
)
CATEGORY_OF_CODE: Mapping[tuple[str, str], HarmCategory] = {
    **{(CATEGORY, code): HarmCategory.MEDICATION_ERROR for code in _MEDICATION},
    # Surgery on the wrong site is a serious reportable event (NQF).
    (CATEGORY, "wrongbodysite"): HarmCategory.SERIOUS_SAFETY_EVENT,
    **{
        (HUDDLE_HARM_CATEGORY, category.value.replace("_", "")): category
        for category in HarmCategory
    },
}
UNSAFE_CONDITION_CODES = frozenset({(CATEGORY, "unsafephysicalenvironment")})

DISCIPLINE_OF_CODE: Mapping[tuple[str, str], Discipline] = {
    (PRACTITIONER_ROLE, "doctor"): Discipline.PHYSICIAN,
    (PRACTITIONER_ROLE, "nurse"): Discipline.NURSE,
    (PRACTITIONER_ROLE, "pharmacist"): Discipline.PHARMACIST,
    **{(DEGREE, code): Discipline.PHYSICIAN for code in ("md", "do")},
    **{(DEGREE, code): Discipline.NURSE for code in ("rn", "lpn", "bsn", "msn")},
    **{
        (DEGREE, code): Discipline.ADVANCED_PRACTICE
        for code in ("np", "cnp", "canp", "cpnp", "fpnp", "cns", "pa")
    },
    **{(DEGREE, code): Discipline.PHARMACIST for code in ("pharmd", "rph")},
    (DEGREE, "cnm"): Discipline.MIDWIFE,
    **{(DEGREE, code): Discipline.PARAMEDIC for code in ("emt", "emtp")},
    **{
        (HUDDLE_DISCIPLINE, discipline.value.replace("_", "")): discipline
        for discipline in Discipline
    },
}

_HARM_ORDER = tuple(HarmLevel)  # none < mild < moderate < severe < death
_STAFF_TYPES = frozenset({"Practitioner", "PractitionerRole"})
# A team is staff, but which of them were involved it does not say: each must be named.
_TEAMS = frozenset({"CareTeam"})
# A relative or absolute literal reference: [base/]Type/id[/_history/version].
_LITERAL = re.compile(
    r"^(?:.*/)?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9.-]{1,64})(?:/_history/.*)?$"
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_STAFF_HELP = (
    "identify the practitioner by reference.identifier, a contained Practitioner's identifier, "
    "or a Practitioner/<id> reference"
)


class _Coding(Protocol):
    @property
    def system(self) -> str | None: ...
    @property
    def code(self) -> str | None: ...


class _Concept(Protocol):
    @property
    def coding(self) -> Sequence[_Coding] | None: ...


class _Identifier(Protocol):
    @property
    def value(self) -> str | None: ...
    @property
    def assigner(self) -> _Reference | None: ...


class _Reference(Protocol):
    @property
    def reference(self) -> str | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def identifier(self) -> _Identifier | None: ...


def fhir_release(document: Mapping[str, Any], declared_version: str | None) -> FhirRelease:
    """The release named by the ``fhirVersion`` media-type parameter, else told by shape."""
    if declared_version is not None:
        major_minor = ".".join(declared_version.strip().split(".")[:2])
        release = _RELEASE_OF_VERSION.get(major_minor)
        if release is None:
            raise UnsupportedFormat(
                "fhirVersion must be 4.0 (R4; 4.3, R4B, reads as R4) or 5.0 (R5)"
            )
        return release
    r5_shaped, r4_shaped = "participant" in document, "contributor" in document
    if r5_shaped and r4_shaped:
        raise ReportRefused(
            "the AdverseEvent has both contributor (R4) and participant (R5); "
            "name its release with the fhirVersion media-type parameter"
        )
    if r5_shaped:
        return FhirRelease.R5
    if r4_shaped:
        return FhirRelease.R4
    # Neither names staff: R5 requires status, which R4 does not have.
    return FhirRelease.R5 if "status" in document else FhirRelease.R4


def read_fhir_report(document: Mapping[str, Any], release: FhirRelease) -> AdverseEventReport:
    """The report an AdverseEvent makes, or ReportRefused naming the problem (never a value)."""
    if document.get("resourceType") != "AdverseEvent":
        raise ReportRefused(
            "the FHIR resource must be an AdverseEvent (resourceType); no other resource is read"
        )
    if release is FhirRelease.R4:
        return _read_r4(_parse(R4AdverseEvent, document, release))
    return _read_r5(_parse(R5AdverseEvent, document, release))


_Event = TypeVar("_Event", R4AdverseEvent, R5AdverseEvent)


def _parse(model: type[_Event], document: Mapping[str, Any], release: FhirRelease) -> _Event:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        # `from None`: the library's own exception may quote the input if a traceback is logged.
        raise ReportRefused(
            f"not a valid FHIR {release} AdverseEvent: {describe(exc, document)}"
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError):
        # fhir.resources fails this way on an unknown contained resource type, for one.
        raise ReportRefused(
            f"not a valid FHIR {release} AdverseEvent: an element or contained resource "
            "cannot be read"
        ) from None


def _read_r4(event: R4AdverseEvent) -> AdverseEventReport:
    contained = _contained(event.contained)
    concepts: list[_Concept | None] = [
        event.seriousness,
        event.severity,
        event.outcome,
        event.event,
    ]
    concepts += event.category or []
    unit, hospital = _place(event.location, contained)
    return _report(
        reporter_event_id=_reporter_event_id(
            [event.identifier] if event.identifier else [], event.id
        ),
        actuality=event.actuality,
        hospital_id=hospital,
        unit_id=unit,
        concepts=concepts,
        occurred=[
            ("date", event.date),
            ("detected", event.detected),
            ("recordedDate", event.recordedDate),
        ],
        involved=_involved(
            ((f"contributor[{i}]", ref) for i, ref in enumerate(event.contributor or [])),
            contained,
        ),
    )


def _read_r5(event: R5AdverseEvent) -> AdverseEventReport:
    status = (event.status or "").strip()
    if status == "entered-in-error":
        raise ReportRefused("an AdverseEvent entered in error reports nothing (status)")
    if status not in ("in-progress", "completed", "unknown"):
        raise ReportRefused("status must be in-progress, completed or unknown")
    contained = _contained(event.contained)
    concepts: list[_Concept | None] = [event.seriousness, event.code]
    concepts += event.outcome or []
    concepts += event.category or []
    unit, hospital = _place(event.location, contained)
    timing = event.occurrenceTiming
    return _report(
        reporter_event_id=_reporter_event_id(event.identifier or [], event.id),
        actuality=event.actuality,
        hospital_id=hospital,
        unit_id=unit,
        concepts=concepts,
        occurred=[
            ("occurrenceDateTime", event.occurrenceDateTime),
            (
                "occurrencePeriod.start",
                event.occurrencePeriod.start if event.occurrencePeriod else None,
            ),
            ("occurrenceTiming.event", timing.event[0] if timing and timing.event else None),
            ("detected", event.detected),
            ("recordedDate", event.recordedDate),
        ],
        involved=_involved(
            (
                (f"participant[{i}].actor", participant.actor)
                for i, participant in enumerate(event.participant or [])
            ),
            contained,
        ),
    )


def _report(
    *,
    reporter_event_id: str,
    actuality: str | None,
    hospital_id: str | None,
    unit_id: str,
    concepts: Iterable[_Concept | None],
    occurred: Sequence[tuple[str, object]],
    involved: tuple[InvolvedStaffRef, ...],
) -> AdverseEventReport:
    if actuality not in ("actual", "potential"):
        raise ReportRefused("actuality must be actual or potential")
    codes = [
        (_system(coding.system), _code(coding.code))
        for concept in concepts
        if concept is not None
        for coding in concept.coding or []
        if coding.code
    ]
    harm = max(
        (HARM_OF_CODE[code] for code in codes if code in HARM_OF_CODE),
        key=_HARM_ORDER.index,
        default=HarmLevel.NONE,
    )
    categories = tuple(dict.fromkeys(CATEGORY_OF_CODE[c] for c in codes if c in CATEGORY_OF_CODE))
    if actuality == "actual":
        event_class = EventClass.INCIDENT
    elif any(code in UNSAFE_CONDITION_CODES for code in codes):
        event_class = EventClass.UNSAFE_CONDITION
    else:
        event_class = EventClass.NEAR_MISS
    return AdverseEventReport(
        reporter_event_id=reporter_event_id,
        hospital_id=hospital_id,
        unit_ids=(unit_id,),
        event_class=event_class,
        # A potential event harmed no one, whatever its seriousness says could have happened.
        harm_level=harm if event_class is EventClass.INCIDENT else HarmLevel.NONE,
        categories=categories,
        occurred_at=_occurred_at(occurred),
        involved=involved,
    )


def _reporter_event_id(identifiers: Sequence[_Identifier], resource_id: str | None) -> str:
    for identifier in identifiers:
        if identifier.value and identifier.value.strip():
            return identifier.value.strip()
    if resource_id:
        return resource_id
    raise ReportRefused(
        "the AdverseEvent needs an identifier (or an id) naming it for its reporter"
    )


def _occurred_at(candidates: Sequence[tuple[str, object]]) -> datetime:
    """The first time given, in UTC; a date alone (or a year, a month) is its first moment."""
    for _, value in candidates:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ReportRefused("the time of the event must carry a time zone")
            return value.astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, time(), tzinfo=UTC)
        if isinstance(value, str) and re.fullmatch(r"\d{4}(-\d{2})?", value):
            year, _, month = value.partition("-")
            return datetime(int(year), int(month or 1), 1, tzinfo=UTC)
    names = " or ".join(name for name, _ in candidates)
    raise ReportRefused(f"the AdverseEvent must say when it happened ({names})")


def _contained(resources: Sequence[object] | None) -> dict[str, object]:
    return {
        resource_id: resource
        for resource in resources or []
        if isinstance(resource_id := getattr(resource, "id", None), str)
    }


def _place(location: _Reference | None, contained: Mapping[str, object]) -> tuple[str, str | None]:
    """The unit where the event happened and, when it says, the hospital managing it."""
    if location is None:
        raise ReportRefused(
            "location is required: a reference to the unit where the event happened "
            "(by identifier, or a contained Location with an identifier)"
        )
    unit: str | None = None
    hospital: str | None = None
    target = location.reference or ""
    if target.startswith("#"):
        place = contained.get(target[1:])
        if not isinstance(place, R4Location | R5Location):
            raise ReportRefused("location points to no contained Location")
        unit = _first_value(place.identifier or [])
        hospital = _organisation_id(place.managingOrganization, contained)
    else:
        if location.identifier is not None:
            unit = location.identifier.value
            hospital = _organisation_id(location.identifier.assigner, contained)
        literal = _LITERAL.fullmatch(target)
        if unit is None and literal is not None and literal["type"] == "Location":
            unit = literal["id"]
    unit = _slug(unit, "location: the unit's identifier")
    if unit is None:
        raise ReportRefused("location: the unit must be identified (identifier value)")
    return unit, _slug(hospital, "location: the managing organisation's identifier")


def _organisation_id(reference: _Reference | None, contained: Mapping[str, object]) -> str | None:
    if reference is None:
        return None
    target = reference.reference or ""
    if target.startswith("#"):
        organisation = contained.get(target[1:])
        if isinstance(organisation, R4Organization | R5Organization):
            return _first_value(organisation.identifier or [])
        return None
    return reference.identifier.value if reference.identifier else None


def _slug(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    slug = value.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise ReportRefused(f"{what} must be a slug (a-z, 0-9, hyphens)")
    return slug


def _involved(
    references: Iterable[tuple[str, _Reference | None]], contained: Mapping[str, object]
) -> tuple[InvolvedStaffRef, ...]:
    staff = []
    for where, reference in references:
        if reference is None:
            continue
        member = _staff(where, reference, contained)
        if member is not None:
            staff.append(member)
    return tuple(staff)


def _staff(
    where: str, reference: _Reference, contained: Mapping[str, object]
) -> InvolvedStaffRef | None:
    """The member of staff a reference names; None for devices, patients and the like."""
    target = reference.reference or ""
    if target.startswith("#"):
        resource = contained.get(target[1:])
        if resource is None:
            raise ReportRefused(f"{where}: points to no contained resource")
        return _contained_staff(where, resource, contained)
    literal = _LITERAL.fullmatch(target)
    kind = reference.type or (literal["type"] if literal else None)
    if kind in _TEAMS:
        raise ReportRefused(f"{where}: name each practitioner involved, not their team")
    if kind is not None and kind not in _STAFF_TYPES:
        return None  # a patient, device or organisation is not staff
    if target and literal is None and not (reference.identifier and reference.identifier.value):
        raise ReportRefused(f"{where}: the reference cannot be resolved; {_STAFF_HELP}")
    refs = (
        [reference.identifier.value] if reference.identifier and reference.identifier.value else []
    )
    if literal is not None and literal["type"] in _STAFF_TYPES:
        refs.append(literal["id"])
    if not refs:
        raise ReportRefused(f"{where}: {_STAFF_HELP}")
    return InvolvedStaffRef(staff_refs=tuple(refs))


def _contained_staff(
    where: str, resource: object, contained: Mapping[str, object]
) -> InvolvedStaffRef | None:
    if isinstance(resource, r4_practitioner.Practitioner | r5_practitioner.Practitioner):
        refs = _values(resource.identifier or [])
        if not refs:
            raise ReportRefused(f"{where}: {_STAFF_HELP}")
        hints = [q.code for q in resource.qualification or []]
        return InvolvedStaffRef(staff_refs=refs, discipline_hint=_discipline(hints))
    if isinstance(resource, r4_role.PractitionerRole | r5_role.PractitionerRole):
        person = (
            _staff(f"{where}.practitioner", resource.practitioner, contained)
            if resource.practitioner
            else None
        )
        # The role's own identifiers name the post, so the person's come first.
        refs = (person.staff_refs if person else ()) + _values(resource.identifier or [])
        if not refs:
            raise ReportRefused(f"{where}: {_STAFF_HELP}")
        hint = _discipline(resource.code or []) or (person.discipline_hint if person else None)
        return InvolvedStaffRef(staff_refs=tuple(dict.fromkeys(refs)), discipline_hint=hint)
    if isinstance(resource, R4CareTeam | R5CareTeam):
        raise ReportRefused(f"{where}: name each practitioner involved, not their team")
    return None  # a contained patient, device or organisation is not staff


def _discipline(concepts: Iterable[_Concept | None]) -> Discipline | None:
    for concept in concepts:
        for coding in (concept.coding or []) if concept else []:
            if coding.code:
                found = DISCIPLINE_OF_CODE.get((_system(coding.system), _code(coding.code)))
                if found is not None:
                    return found
    return None


def _values(identifiers: Iterable[_Identifier]) -> tuple[str, ...]:
    return tuple(i.value.strip() for i in identifiers if i.value and i.value.strip())


def _first_value(identifiers: Iterable[_Identifier]) -> str | None:
    values = _values(identifiers)
    return values[0] if values else None


def _system(system: str | None) -> str:
    # Some senders append the version (v2-0360|2.7), which the system URI itself does not carry.
    return (system or "").split("|")[0].strip()


def _code(code: str) -> str:
    return code.strip().lower().replace("-", "").replace("_", "")
