"""FHIR R4 and R5 AdverseEvents and Huddle JSON reports as incident systems send them, with the
patient data that Huddle must drop at the edge (tests look for it everywhere afterwards)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PATIENT = "Jane Roe-Patient"
NARRATIVE = "found unresponsive after the infusion"
STAFF_NAME = "Dr Avery Quill"
HUDDLE = "https://huddle.dev/fhir/CodeSystem/"
HL7 = "http://terminology.hl7.org/CodeSystem/"


def coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": NARRATIVE}]}


class Documents:
    """Reports in Huddle's JSON and as FHIR R4 and R5 AdverseEvents.

    FHIR staff alternate between the three ways a reference names a practitioner: a contained
    Practitioner, a logical reference by identifier, and a contained PractitionerRole whose
    practitioner is contained too.
    """

    PATIENT = PATIENT
    NARRATIVE = NARRATIVE
    STAFF_NAME = STAFF_NAME

    def r4(
        self,
        *,
        event_id: str,
        staff: Sequence[str],
        unit: str = "icu",
        hospital: str | None = "st-mary",
        seriousness: str = "SeriousResultsInDeath",
        categories: Sequence[str] = (),
        actuality: str = "actual",
    ) -> dict[str, Any]:
        contained, references = self._staff(staff)
        return {
            "resourceType": "AdverseEvent",
            "id": "local-1",
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{PATIENT} {NARRATIVE}</div>',
            },
            "contained": [*contained, *self._place(unit, hospital), self._patient()],
            "identifier": {"system": "urn:incidents", "value": event_id},
            "actuality": actuality,
            "category": [coding(HUDDLE + "harm-category", c) for c in categories],
            "event": {"text": NARRATIVE},
            "subject": {"reference": "#patient", "display": PATIENT},
            "date": "2025-03-02T03:15:00+00:00",
            "location": {"reference": "#unit"},
            "seriousness": coding(HL7 + "adverse-event-seriousness", seriousness),
            "outcome": coding(HL7 + "adverse-event-outcome", "fatal")
            if seriousness == "SeriousResultsInDeath"
            else {"text": NARRATIVE},
            "contributor": references,
            "resultingCondition": [{"display": f"{PATIENT}: {NARRATIVE}"}],
            "suspectEntity": [{"instance": {"display": f"infusion pump of {PATIENT}"}}],
        }

    def r5(
        self,
        *,
        event_id: str,
        staff: Sequence[str],
        unit: str = "icu",
        hospital: str | None = "st-mary",
        harm: str = "death",
        categories: Sequence[str] = ("unexpected_death",),
    ) -> dict[str, Any]:
        contained, references = self._staff(staff)
        return {
            "resourceType": "AdverseEvent",
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{PATIENT} {NARRATIVE}</div>',
            },
            "contained": [*contained, *self._place(unit, hospital), self._patient()],
            "identifier": [{"system": "urn:incidents", "value": event_id}],
            "status": "completed",
            "actuality": "actual",
            "category": [coding(HUDDLE + "harm-category", c) for c in categories],
            "code": {"text": NARRATIVE},
            "subject": {"reference": "#patient", "display": PATIENT},
            "occurrenceDateTime": "2025-03-02T03:15:00Z",
            "location": {"reference": "#unit"},
            "seriousness": coding(HUDDLE + "harm-level", harm),
            "participant": [
                {"function": {"text": "performer"}, "actor": reference} for reference in references
            ],
            "note": [{"text": f"{PATIENT}: {NARRATIVE}"}],
            "resultingEffect": [{"display": NARRATIVE}],
            "suspectEntity": [{"instanceCodeableConcept": {"text": NARRATIVE}}],
        }

    def huddle(
        self,
        *,
        event_id: str,
        staff: Sequence[str | dict[str, Any]],
        unit_ids: Sequence[str] = ("icu",),
        harm_level: str = "death",
        categories: Sequence[str] = ("unexpected_death",),
        **more: Any,
    ) -> dict[str, Any]:
        return {
            "reporter_event_id": event_id,
            "unit_ids": list(unit_ids),
            "harm_level": harm_level,
            "categories": list(categories),
            "occurred_at": "2025-03-02T03:15:00Z",
            "involved": [{"staff_ref": s} if isinstance(s, str) else s for s in staff],
            **more,
        }

    def _staff(self, refs: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        contained: list[dict[str, Any]] = []
        references: list[dict[str, Any]] = []
        for i, ref in enumerate(refs):
            person = {
                "resourceType": "Practitioner",
                "id": f"prac-{i}",
                "identifier": [{"system": "urn:employees", "value": ref}],
                "name": [{"text": STAFF_NAME}],
            }
            if i % 3 == 0:
                contained.append(person)
                references.append({"reference": f"#prac-{i}", "display": STAFF_NAME})
            elif i % 3 == 1:
                references.append(
                    {"type": "Practitioner", "identifier": {"value": ref}, "display": STAFF_NAME}
                )
            else:
                contained.append(person)
                contained.append(
                    {
                        "resourceType": "PractitionerRole",
                        "id": f"role-{i}",
                        "practitioner": {"reference": f"#prac-{i}"},
                        "code": [coding(HL7 + "practitioner-role", "nurse")],
                    }
                )
                references.append({"reference": f"#role-{i}"})
        return contained, references

    def _place(self, unit: str, hospital: str | None) -> list[dict[str, Any]]:
        location: dict[str, Any] = {
            "resourceType": "Location",
            "id": "unit",
            "identifier": [{"value": unit}],
            "name": f"bed 4, next to {PATIENT}",
        }
        if hospital is not None:
            location["managingOrganization"] = {"identifier": {"value": hospital}}
        return [location]

    def _patient(self) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "id": "patient",
            "name": [{"text": PATIENT}],
            "identifier": [{"system": "urn:mrn", "value": "MRN-55501"}],
        }
