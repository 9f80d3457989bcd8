"""The outreach policy's rules (domain/outreach_policy.py), from DOMAIN.md's triggers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from huddle_contracts.vocabulary import EventClass, HarmCategory, HarmLevel, Urgency
from huddle_intake.domain.adverse_event_report import (
    AdverseEventReport,
    InvolvedStaffRef,
    ReportOutOfScope,
    ReportRefused,
    reporting_hospital,
)
from huddle_intake.domain.outreach_policy import (
    DEFAULT_POLICY,
    OutreachPolicy,
    PolicyRefused,
    PolicySource,
    group_debrief_needed,
    outreach_urgency,
    policy_in_force,
    qualifies,
)

DOMAIN_TRIGGERS = [
    HarmCategory.UNEXPECTED_DEATH,
    HarmCategory.SERIOUS_INJURY,
    HarmCategory.SERIOUS_SAFETY_EVENT,
    HarmCategory.ROOT_CAUSE_ANALYSIS,
    HarmCategory.PAEDIATRIC_DEATH,
    HarmCategory.VIOLENCE_AGAINST_STAFF,
    HarmCategory.LAWSUIT,
    HarmCategory.UNPLANNED_TRANSFER,
    HarmCategory.TROUBLING_CASE,
]


def event(
    *categories: HarmCategory,
    harm: HarmLevel = HarmLevel.NONE,
    event_class: EventClass = EventClass.INCIDENT,
    staff: int = 3,
) -> AdverseEventReport:
    return AdverseEventReport(
        reporter_event_id="INC-1",
        hospital_id="st-mary",
        unit_ids=("icu",),
        event_class=event_class,
        harm_level=harm,
        categories=categories,
        occurred_at=datetime(2025, 3, 2, 3, 15, tzinfo=UTC),
        involved=tuple(InvolvedStaffRef(staff_refs=(f"E{i}",)) for i in range(staff)),
    )


def test_an_unexpected_death_triggers_outreach_to_everyone_involved() -> None:
    assert qualifies(event(HarmCategory.UNEXPECTED_DEATH), DEFAULT_POLICY)


@pytest.mark.parametrize("category", DOMAIN_TRIGGERS)
def test_each_trigger_seen_in_practice_offers_support_by_default(category: HarmCategory) -> None:
    assert qualifies(event(category), DEFAULT_POLICY)


@pytest.mark.parametrize("harm", [HarmLevel.DEATH, HarmLevel.SEVERE])
def test_death_or_severe_harm_triggers_outreach_whatever_the_category(harm: HarmLevel) -> None:
    assert qualifies(event(HarmCategory.FALL, harm=harm), DEFAULT_POLICY)


def test_a_moderate_medication_error_does_not_trigger_outreach_by_default() -> None:
    assert not qualifies(
        event(HarmCategory.MEDICATION_ERROR, harm=HarmLevel.MODERATE), DEFAULT_POLICY
    )


def test_near_misses_trigger_outreach_only_when_the_policy_says_so() -> None:
    near_miss_class = event(event_class=EventClass.NEAR_MISS)
    near_miss_category = event(HarmCategory.NEAR_MISS)
    assert not qualifies(near_miss_class, DEFAULT_POLICY)
    assert not qualifies(near_miss_category, DEFAULT_POLICY)
    with_near_misses = replace(DEFAULT_POLICY, near_misses=True)
    assert qualifies(near_miss_class, with_near_misses)
    assert qualifies(near_miss_category, with_near_misses)


def test_near_misses_are_switched_on_by_their_own_setting_not_as_a_category() -> None:
    with pytest.raises(PolicyRefused, match="near_misses"):
        OutreachPolicy(categories=frozenset({HarmCategory.NEAR_MISS}))


def test_no_harm_at_all_cannot_be_a_harm_level_that_triggers_outreach() -> None:
    with pytest.raises(PolicyRefused, match="none"):
        OutreachPolicy(harm_levels=frozenset({HarmLevel.NONE}))


def test_a_network_may_narrow_its_triggers() -> None:
    deaths_only = OutreachPolicy.of(harm_levels=[HarmLevel.DEATH], categories=[], near_misses=False)
    assert qualifies(event(harm=HarmLevel.DEATH), deaths_only)
    assert not qualifies(event(HarmCategory.LAWSUIT, harm=HarmLevel.SEVERE), deaths_only)


def test_a_hospital_policy_replaces_the_networks_and_defaults_apply_without_either() -> None:
    network = OutreachPolicy.of(harm_levels=[HarmLevel.DEATH], categories=[], near_misses=False)
    hospital = OutreachPolicy.of(harm_levels=[], categories=[HarmCategory.FALL], near_misses=True)
    assert policy_in_force(network=None, hospital=None) == (DEFAULT_POLICY, PolicySource.DEFAULT)
    assert policy_in_force(network=network, hospital=None) == (network, PolicySource.NETWORK)
    assert policy_in_force(network=network, hospital=hospital) == (
        hospital,
        PolicySource.HOSPITAL,
    )


def test_more_than_five_staff_or_several_units_call_a_group_debrief() -> None:
    assert not group_debrief_needed(involved_count=5, unit_count=1)
    assert group_debrief_needed(involved_count=6, unit_count=1)
    assert group_debrief_needed(involved_count=2, unit_count=2)
    assert not group_debrief_needed(involved_count=0, unit_count=1)


@pytest.mark.parametrize(
    ("report", "urgency"),
    [
        (event(harm=HarmLevel.DEATH), Urgency.URGENT),
        (event(harm=HarmLevel.SEVERE), Urgency.URGENT),
        (event(HarmCategory.VIOLENCE_AGAINST_STAFF), Urgency.URGENT),
        (event(HarmCategory.LAWSUIT, harm=HarmLevel.MODERATE), Urgency.ROUTINE),
        (event(HarmCategory.TROUBLING_CASE), Urgency.ROUTINE),
    ],
)
def test_death_severe_harm_or_violence_call_for_urgent_outreach_else_routine(
    report: AdverseEventReport, urgency: Urgency
) -> None:
    assert outreach_urgency(report) is urgency


def test_a_report_is_for_the_reporters_hospital_unless_it_names_one() -> None:
    assert reporting_hospital(declared=None, reporter_hospital="st-mary") == "st-mary"
    assert reporting_hospital(declared="st-luke", reporter_hospital=None) == "st-luke"
    with pytest.raises(ReportOutOfScope):
        reporting_hospital(declared="st-luke", reporter_hospital="st-mary")
    with pytest.raises(ReportRefused, match="must name its hospital"):
        reporting_hospital(declared=None, reporter_hospital=None)


def test_a_report_never_shows_staff_identifiers_when_printed() -> None:
    shown = repr(event(HarmCategory.LAWSUIT))
    assert "E0" not in shown and "INC-1" not in shown
