"""The workforce directory: who works where, in which discipline, reporting to whom.

People appear only as pseudonyms here; what identifies them stays sealed in the adapters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from huddle_contracts.vocabulary import Discipline

# Real hierarchies are a dozen levels at most; the bound keeps bad HR data from walking forever.
MAX_REPORTING_DEPTH = 16


class DirectoryRefused(ValueError):
    """A directory entry breaks a rule; the message says which, never echoing personal data."""


@dataclass(frozen=True)
class StaffMember:
    """A member of staff as the directory knows them: a pseudonym and their place."""

    network_id: str
    pseudonym: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    clinical_area: str | None = None
    manager_pseudonym: str | None = None
    active: bool = True


@dataclass(frozen=True)
class Unit:
    """A unit of a hospital; its name is not personal data."""

    network_id: str
    hospital_id: str
    unit_id: str
    display_name: str


def discipline_of(*candidates: str | None) -> Discipline:
    """The first candidate naming a discipline (case and spacing aside), else refused."""
    for candidate in candidates:
        if candidate is None:
            continue
        normalised = candidate.strip().lower().replace(" ", "_").replace("-", "_")
        if normalised in Discipline.__members__.values():
            return Discipline(normalised)
    raise DirectoryRefused(
        "the discipline must be one of: " + ", ".join(d.value for d in Discipline)
    )


def reporting_line(
    pseudonym: str, members: Iterable[StaffMember] | Mapping[str, StaffMember]
) -> tuple[str, ...]:
    """The managers above ``pseudonym``, nearest first; stops at a cycle or the depth bound.

    A manager missing from ``members`` (a list, or a mapping by pseudonym) still belongs to the
    line; the walk simply ends there.
    """
    by_pseudonym = (
        members
        if isinstance(members, Mapping)
        else {member.pseudonym: member for member in members}
    )
    line: list[str] = []
    seen = {pseudonym}
    person = by_pseudonym.get(pseudonym)
    manager = person.manager_pseudonym if person else None
    while manager is not None and manager not in seen and len(line) < MAX_REPORTING_DEPTH:
        line.append(manager)
        seen.add(manager)
        above = by_pseudonym.get(manager)
        manager = above.manager_pseudonym if above else None
    return tuple(line)


class PlacementBasis(StrEnum):
    """Why support is organised in that unit."""

    MANAGER = "manager"
    """The person is not in the directory; their manager is, so their manager's unit."""
    EVENT = "event"
    """Neither the person nor an active manager is known: the unit where the event happened."""


@dataclass(frozen=True)
class Placement:
    hospital_id: str
    unit_id: str
    basis: PlacementBasis


def unit_for_unknown_staff(
    *, manager: StaffMember | None, event_hospital_id: str, event_unit_id: str
) -> Placement:
    """Where to offer support to someone the directory does not know: never nowhere.

    Their manager's unit when the manager is known and active, otherwise the unit where the
    event happened, so that an unknown person is still offered support, never dropped silently.
    """
    if manager is not None and manager.active:
        return Placement(manager.hospital_id, manager.unit_id, PlacementBasis.MANAGER)
    return Placement(event_hospital_id, event_unit_id, PlacementBasis.EVENT)
