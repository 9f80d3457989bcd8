"""Reading reports (adapters/report_formats.py, adapters/fhir_reports.py): what is kept, how FHIR
codes map, and what is refused, without a word of the input in any refusal."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from huddle_contracts.vocabulary import Discipline, EventClass, HarmCategory, HarmLevel
from huddle_intake.adapters.fhir_reports import FhirRelease, fhir_release
from huddle_intake.adapters.report_formats import read_report
from huddle_intake.domain.adverse_event_report import (
    AdverseEventReport,
    ReportRefused,
    UnsupportedFormat,
)

FHIR = "application/fhir+json"
HL7 = "http://terminology.hl7.org/CodeSystem/"


def read(document: dict[str, Any], content_type: str = FHIR) -> AdverseEventReport:
    return read_report(json.dumps(document).encode(), content_type)


def refusal(document: Any, content_type: str = FHIR) -> str:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(ReportRefused) as refused:
        read_report(body, content_type)
    return str(refused.value)


def everything_kept(report: AdverseEventReport) -> str:
    return json.dumps(dataclasses.asdict(report), default=str)


def test_an_r4_adverse_event_keeps_only_what_peer_support_needs(documents) -> None:
    document = documents.r4(event_id="INC-7", staff=["E1", "E2", "E3"])
    report = read(document)
    assert report.reporter_event_id == "INC-7"
    assert (report.hospital_id, report.unit_ids) == ("st-mary", ("icu",))
    assert (report.event_class, report.harm_level) == (EventClass.INCIDENT, HarmLevel.DEATH)
    assert report.occurred_at.isoformat() == "2025-03-02T03:15:00+00:00"
    assert [person.staff_refs for person in report.involved] == [("E1",), ("E2",), ("E3",)]
    assert report.involved[2].discipline_hint is Discipline.NURSE  # PractitionerRole.code
    kept = everything_kept(report)
    for dropped in ("Jane Roe", "unresponsive", "MRN-55501", "Avery Quill", "bed 4"):
        assert dropped not in kept


def test_an_r5_adverse_event_reads_its_participants_and_code(documents) -> None:
    report = read(documents.r5(event_id="INC-8", staff=["E1", "E2", "E3"]))
    assert [person.staff_refs for person in report.involved] == [("E1",), ("E2",), ("E3",)]
    assert report.harm_level is HarmLevel.DEATH
    assert report.categories == (HarmCategory.UNEXPECTED_DEATH,)
    kept = everything_kept(report)
    assert "Jane Roe" not in kept and "unresponsive" not in kept


@pytest.mark.parametrize(
    ("system", "code", "harm"),
    [
        ("adverse-event-seriousness", "Serious", HarmLevel.SEVERE),
        ("adverse-event-seriousness", "SeriousResultsInDeath", HarmLevel.DEATH),
        ("adverse-event-seriousness", "SeriousResultsInHospitalization", HarmLevel.MODERATE),
        ("adverse-event-seriousness", "Non-serious", HarmLevel.NONE),
        ("adverse-event-seriousness", "non-serious", HarmLevel.NONE),
    ],
)
def test_r4_seriousness_maps_to_the_harm_scale(
    documents, system: str, code: str, harm: HarmLevel
) -> None:
    document = documents.r4(event_id="INC-9", staff=["E1"], seriousness=code)
    document["outcome"] = {"text": "n/a"}
    assert read(document).harm_level is harm


def test_the_gravest_harm_any_element_states_wins(documents) -> None:
    document = documents.r4(event_id="INC-9", staff=["E1"], seriousness="Non-serious")
    document["severity"] = {"coding": [{"system": HL7 + "adverse-event-severity", "code": "mild"}]}
    document["outcome"] = {"coding": [{"system": HL7 + "adverse-event-outcome", "code": "fatal"}]}
    assert read(document).harm_level is HarmLevel.DEATH


def test_hl7_categories_map_to_harm_categories(documents) -> None:
    document = documents.r4(event_id="INC-9", staff=["E1"], seriousness="Non-serious")
    document["category"] = [
        {"coding": [{"system": HL7 + "adverse-event-category", "code": "wrong-dose"}]},
        {"coding": [{"system": HL7 + "adverse-event-category", "code": "product-quality"}]},
    ]
    assert read(document).categories == (HarmCategory.MEDICATION_ERROR,)


def test_a_potential_event_is_a_near_miss_that_harmed_no_one(documents) -> None:
    report = read(documents.r4(event_id="INC-9", staff=["E1"], actuality="potential"))
    assert (report.event_class, report.harm_level) == (EventClass.NEAR_MISS, HarmLevel.NONE)


def test_the_fhir_version_parameter_decides_else_the_shape(documents) -> None:
    r4 = documents.r4(event_id="A", staff=["E1"])
    r5 = documents.r5(event_id="B", staff=["E1"])
    assert fhir_release(r4, None) is FhirRelease.R4
    assert fhir_release(r5, None) is FhirRelease.R5
    assert fhir_release(r4, "4.0.1") is FhirRelease.R4
    assert fhir_release(r4, "4.3") is FhirRelease.R4
    assert fhir_release(r5, "5.0") is FhirRelease.R5
    with pytest.raises(UnsupportedFormat):
        fhir_release(r4, "3.0")
    # Declared R5, shaped R4: the R5 model refuses it.
    assert "not a valid FHIR R5 AdverseEvent" in refusal(r4, f"{FHIR}; fhirVersion=5.0")


def test_another_fhir_resource_type_is_refused_without_echoing_it(documents) -> None:
    patient = {"resourceType": "Patient", "name": [{"text": "Jane Roe-Patient"}]}
    message = refusal(patient)
    assert "AdverseEvent" in message and "Patient" not in message and "Jane" not in message


def test_an_invalid_resource_is_refused_naming_the_element_never_the_value(documents) -> None:
    document = documents.r4(event_id="INC-9", staff=["E1"])
    document["date"] = "Jane Roe-Patient"
    message = refusal(document)
    assert "date" in message and "Jane" not in message


def test_an_unknown_contained_resource_type_is_refused(documents) -> None:
    document = documents.r4(event_id="INC-9", staff=["E1"])
    document["contained"].append({"resourceType": "JaneRoeRecord", "id": "x"})
    message = refusal(document)
    assert "cannot be read" in message and "JaneRoe" not in message


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"location": None}, "location is required"),
        ({"contributor": [{"display": "Dr Avery Quill"}]}, "identify the practitioner"),
        ({"actuality": "maybe"}, "actuality"),
        ({"date": None}, "when it happened"),
    ],
)
def test_a_report_missing_what_outreach_needs_is_refused(
    documents, change: dict[str, Any], fragment: str
) -> None:
    document = {**documents.r4(event_id="INC-9", staff=["E1"]), **change}
    document = {k: v for k, v in document.items() if v is not None}
    message = refusal(document)
    assert fragment in message and "Avery" not in message


def test_an_r5_event_entered_in_error_reports_nothing(documents) -> None:
    document = {**documents.r5(event_id="INC-9", staff=["E1"]), "status": "entered-in-error"}
    assert "entered in error" in refusal(document)
    document.pop("status")
    assert "status" in refusal(document)


def test_devices_and_patients_among_the_participants_are_not_staff(documents) -> None:
    document = documents.r5(event_id="INC-9", staff=["E1"])
    document["participant"] += [
        {"actor": {"reference": "Device/pump-1"}},
        {"actor": {"reference": "#patient"}},
        {"actor": {"type": "RelatedPerson", "identifier": {"value": "R1"}}},
        {"actor": {"reference": "Practitioner/P77"}},
    ]
    assert [p.staff_refs for p in read(document).involved] == [("E1",), ("P77",)]


def test_huddle_json_reads_as_is_and_refuses_unknown_fields(documents) -> None:
    document = documents.huddle(
        event_id="INC-10",
        staff=[{"staff_ref": "E1", "discipline": "physician", "manager_ref": "M1"}],
        unit_ids=["icu", "theatres", "icu"],
    )
    report = read(document, "application/json")
    assert report.unit_ids == ("icu", "theatres")
    assert report.involved[0].discipline_hint is Discipline.PHYSICIAN
    message = refusal({**document, "patient_name": "Jane Roe-Patient"}, "application/json")
    assert "patient_name" in message and "Jane" not in message


def test_malformed_json_is_refused_without_quoting_it() -> None:
    message = refusal(b'{"reporter_event_id": "Jane Roe-Patient",', "application/json")
    assert "not valid JSON" in message and "Jane" not in message


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml"])
def test_only_json_and_fhir_json_are_read(content_type: str | None) -> None:
    with pytest.raises(UnsupportedFormat):
        read_report(b"{}", content_type)


def test_a_fhir_resource_sent_as_plain_json_is_told_to_use_fhir_json(documents) -> None:
    with pytest.raises(UnsupportedFormat, match="fhir"):
        read(documents.r4(event_id="INC-9", staff=["E1"]), "application/json")


@pytest.mark.parametrize(
    ("actor", "fragment"),
    [
        ({"reference": "CareTeam/night-shift"}, "not their team"),
        ({"type": "CareTeam", "identifier": {"value": "T1"}}, "not their team"),
        ({"reference": "urn:uuid:7f6c3f1e-7c4e-4f60-9f2c-2f1d3f0b9b11"}, "cannot be resolved"),
        ({"reference": "#nowhere"}, "points to no contained resource"),
    ],
)
def test_a_participant_who_cannot_be_told_apart_is_refused_never_dropped(
    documents, actor: dict[str, Any], fragment: str
) -> None:
    document = documents.r5(event_id="INC-9", staff=["E1"])
    document["participant"].append({"actor": actor})
    assert fragment in refusal(document)
