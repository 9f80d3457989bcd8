"""The workforce directory's rules (domain/workforce_directory.py)."""

from __future__ import annotations

import pytest
from huddle_contracts.vocabulary import Discipline
from huddle_intake.domain.workforce_directory import (
    MAX_REPORTING_DEPTH,
    DirectoryRefused,
    PlacementBasis,
    StaffMember,
    discipline_of,
    reporting_line,
    unit_for_unknown_staff,
)


def person(pseudonym: str, manager: str | None = None, *, active: bool = True) -> StaffMember:
    return StaffMember(
        network_id="north",
        pseudonym=pseudonym,
        hospital_id="st-mary",
        unit_id=f"unit-{pseudonym}",
        discipline=Discipline.NURSE,
        manager_pseudonym=manager,
        active=active,
    )


def test_the_reporting_line_lists_managers_up_the_line_nearest_first() -> None:
    staff = [person("nurse", "charge"), person("charge", "matron"), person("matron", "director")]
    staff.append(person("director"))
    assert reporting_line("nurse", staff) == ("charge", "matron", "director")


def test_someone_with_no_manager_has_an_empty_reporting_line() -> None:
    assert reporting_line("director", [person("director")]) == ()


def test_someone_outside_the_directory_has_an_empty_reporting_line() -> None:
    assert reporting_line("stranger", [person("nurse", "charge")]) == ()


def test_a_manager_outside_the_directory_still_ends_the_reporting_line() -> None:
    assert reporting_line("nurse", [person("nurse", "agency-manager")]) == ("agency-manager",)


def test_a_reporting_cycle_ends_the_reporting_line_before_anyone_repeats() -> None:
    staff = [person("a", "b"), person("b", "c"), person("c", "a")]
    assert reporting_line("a", staff) == ("b", "c")
    assert reporting_line("b", staff) == ("c", "a")


def test_someone_recorded_as_their_own_manager_has_an_empty_reporting_line() -> None:
    assert reporting_line("ceo", [person("ceo", "ceo")]) == ()


def test_the_reporting_line_is_bounded_however_deep_the_directory_says_it_is() -> None:
    chain = [person(f"p{i}", f"p{i + 1}") for i in range(MAX_REPORTING_DEPTH * 3)]
    line = reporting_line("p0", chain)
    assert len(line) == MAX_REPORTING_DEPTH
    assert line[:3] == ("p1", "p2", "p3")


def test_unknown_staff_are_offered_support_through_their_managers_unit() -> None:
    manager = person("charge")
    placement = unit_for_unknown_staff(
        manager=manager, event_hospital_id="st-john", event_unit_id="theatres"
    )
    assert (placement.hospital_id, placement.unit_id) == ("st-mary", "unit-charge")
    assert placement.basis is PlacementBasis.MANAGER


@pytest.mark.parametrize("manager", [None, person("left", active=False)])
def test_unknown_staff_without_an_active_manager_are_still_offered_support_where_it_happened(
    manager: StaffMember | None,
) -> None:
    placement = unit_for_unknown_staff(
        manager=manager, event_hospital_id="st-john", event_unit_id="theatres"
    )
    assert (placement.hospital_id, placement.unit_id) == ("st-john", "theatres")
    assert placement.basis is PlacementBasis.EVENT


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (("nurse",), Discipline.NURSE),
        (("Allied Health",), Discipline.ALLIED_HEALTH),
        (("advanced-practice",), Discipline.ADVANCED_PRACTICE),
        (("Charge nurse", "physician"), Discipline.PHYSICIAN),
        ((None, "midwife"), Discipline.MIDWIFE),
    ],
)
def test_the_discipline_is_the_first_candidate_naming_one(
    candidates: tuple[str | None, ...], expected: Discipline
) -> None:
    assert discipline_of(*candidates) is expected


def test_a_title_naming_no_discipline_is_refused_with_the_accepted_values() -> None:
    with pytest.raises(DirectoryRefused, match="nurse, physician"):
        discipline_of("Head of Stuff", None)
