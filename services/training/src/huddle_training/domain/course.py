"""The course catalogue and its cohorts (DOMAIN.md, Training: "Curriculum" and "Lengths seen").

Each network keeps its own catalogue of modules (hours, in person or online). A cohort runs some
of them at one hospital between two dates; its peers are enrolled, attendance is taken per module,
and a peer completes the cohort once they attended every one of its modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from huddle_training.domain.certification import CLOCK_SKEW
from huddle_training.domain.roster import Peer, PeerStatus

MIN_MODULE_HOURS = 0.5
MAX_MODULE_HOURS = 40.0
"""RAPID psychological first aid takes two days; no single module needs more than a week."""


class Delivery(StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"


class CourseRuleBroken(ValueError):
    """The change breaks a rule of the catalogue or of a cohort; the message says which."""


@dataclass(frozen=True)
class Module:
    code: str
    """A slug, e.g. ``psychological-first-aid``."""
    title: str
    hours: float
    delivery: Delivery

    def __post_init__(self) -> None:
        a_module_takes_between_half_an_hour_and_a_working_week(self.hours)


def a_module_takes_between_half_an_hour_and_a_working_week(hours: float) -> None:
    if not MIN_MODULE_HOURS <= hours <= MAX_MODULE_HOURS:
        raise CourseRuleBroken(
            f"a module takes between {MIN_MODULE_HOURS:g} and {MAX_MODULE_HOURS:g} hours"
        )


SUGGESTED_CURRICULUM: tuple[Module, ...] = (
    Module(
        "peer-support-concepts",
        "Peer-support concepts and the second-victim phenomenon",
        3,
        Delivery.IN_PERSON,
    ),
    Module("psychological-first-aid", "Psychological first aid (RAPID)", 12, Delivery.IN_PERSON),
    Module("active-listening", "Active and empathic listening", 2, Delivery.IN_PERSON),
    Module("warning-signs-and-referral", "Warning signs, limits and referral", 2, Delivery.ONLINE),
    Module("crisis-management", "Crisis management", 2, Delivery.IN_PERSON),
    Module("self-care", "Self-care for peer supporters", 1, Delivery.ONLINE),
)
"""The curriculum DOMAIN.md describes, for a network to start from."""


@dataclass(frozen=True)
class Cohort:
    cohort_id: UUID
    network_id: str
    hospital_id: str
    label: str
    starts_at: datetime
    ends_at: datetime
    modules: tuple[str, ...]
    """The catalogue modules it teaches, each once, in teaching order."""
    created_at: datetime

    def __post_init__(self) -> None:
        a_cohort_ends_after_it_starts(self.starts_at, self.ends_at)
        a_cohort_teaches_at_least_one_module(self.modules)
        if len(set(self.modules)) != len(self.modules):
            raise CourseRuleBroken("a cohort lists each module once")

    def hours(self, catalogue: Mapping[str, Module]) -> float:
        return sum(catalogue[code].hours for code in self.modules if code in catalogue)


def plan_cohort(
    *,
    cohort_id: UUID,
    network_id: str,
    hospital_id: str,
    label: str,
    starts_at: datetime,
    ends_at: datetime,
    modules: Iterable[str],
    catalogue: Mapping[str, Module],
    created_at: datetime,
) -> Cohort:
    """A new cohort, teaching modules of the network's own catalogue only."""
    codes = tuple(dict.fromkeys(modules))
    a_cohort_teaches_only_modules_of_the_catalogue(codes, catalogue)
    return Cohort(
        cohort_id=cohort_id,
        network_id=network_id,
        hospital_id=hospital_id,
        label=label,
        starts_at=starts_at,
        ends_at=ends_at,
        modules=codes,
        created_at=created_at,
    )


def a_cohort_ends_after_it_starts(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise CourseRuleBroken("ends_at must be after starts_at")


def a_cohort_teaches_at_least_one_module(modules: tuple[str, ...]) -> None:
    if not modules:
        raise CourseRuleBroken("a cohort teaches at least one module")


def a_cohort_teaches_only_modules_of_the_catalogue(
    modules: Iterable[str], catalogue: Mapping[str, Module]
) -> None:
    unknown = sorted(set(modules) - set(catalogue))
    if unknown:
        raise CourseRuleBroken("not in your network's course catalogue: " + ", ".join(unknown))


def attendance_is_taken_for_a_module_the_cohort_teaches(cohort: Cohort, module: str) -> None:
    if module not in cohort.modules:
        raise CourseRuleBroken(f"the cohort does not teach {module!r}")


def attendance_falls_within_the_cohort_dates(
    cohort: Cohort, attended_at: datetime, now: datetime
) -> None:
    if attended_at > now + CLOCK_SKEW:
        raise CourseRuleBroken("attended_at cannot be in the future")
    if not cohort.starts_at <= attended_at <= cohort.ends_at:
        raise CourseRuleBroken("attended_at must fall within the cohort's dates")


def a_withdrawn_peer_is_not_enrolled(peer: Peer) -> None:
    if peer.status is PeerStatus.WITHDRAWN:
        raise CourseRuleBroken(f"peer {peer.pseudonym} has withdrawn and cannot be enrolled")


def only_enrolled_peers_attend(enrolled: Iterable[str], peers: Iterable[str]) -> None:
    missing = sorted(set(peers) - set(enrolled))
    if missing:
        raise CourseRuleBroken("not enrolled in this cohort: " + ", ".join(missing))


def a_peer_completes_the_cohort_by_attending_every_module(
    cohort: Cohort, attended: Mapping[str, datetime]
) -> datetime | None:
    """When the peer completed the cohort (their last module), or None while modules remain."""
    if not all(code in attended for code in cohort.modules):
        return None
    return max(attended[code] for code in cohort.modules)
