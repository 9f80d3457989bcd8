"""Proactive outreach ("reach in"): which adverse events offer support to everyone involved.

Defaults from DOMAIN.md (Brigham CPPS, UCSF, Children's Colorado, YOU Matter). A network sets its
own policy and a hospital may override it; outreach is an offer the worker may decline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from huddle_contracts.vocabulary import EventClass, HarmCategory, HarmLevel, Urgency

from huddle_intake.domain.adverse_event_report import AdverseEventReport

DEFAULT_HARM_LEVELS = frozenset({HarmLevel.DEATH, HarmLevel.SEVERE})
DEFAULT_CATEGORIES = frozenset(
    {
        HarmCategory.UNEXPECTED_DEATH,
        HarmCategory.SERIOUS_INJURY,
        HarmCategory.SERIOUS_SAFETY_EVENT,
        HarmCategory.ROOT_CAUSE_ANALYSIS,
        HarmCategory.PAEDIATRIC_DEATH,
        HarmCategory.VIOLENCE_AGAINST_STAFF,
        HarmCategory.LAWSUIT,
        HarmCategory.UNPLANNED_TRANSFER,
        HarmCategory.TROUBLING_CASE,
    }
)

# YOU Matter (Nationwide Children's): more than 5 staff or more than one unit calls a team.
GROUP_DEBRIEF_MORE_THAN_STAFF = 5
GROUP_DEBRIEF_MORE_THAN_UNITS = 1

URGENT_HARM_LEVELS = frozenset({HarmLevel.DEATH, HarmLevel.SEVERE})
URGENT_CATEGORIES = frozenset({HarmCategory.VIOLENCE_AGAINST_STAFF})


class PolicyRefused(ValueError):
    """The policy is not coherent; the message says why."""


class PolicySource(StrEnum):
    """Where the policy in force for a hospital comes from."""

    DEFAULT = "default"
    NETWORK = "network"
    HOSPITAL = "hospital"


@dataclass(frozen=True)
class OutreachPolicy:
    """The harm levels and categories that offer support to everyone involved in an event."""

    harm_levels: frozenset[HarmLevel] = DEFAULT_HARM_LEVELS
    categories: frozenset[HarmCategory] = DEFAULT_CATEGORIES
    near_misses: bool = False
    """Whether near misses (the event class or the category) offer support too."""

    def __post_init__(self) -> None:
        if HarmCategory.NEAR_MISS in self.categories:
            # One switch for near misses, so the category and the event class never disagree.
            raise PolicyRefused("near misses are switched on with near_misses, not as a category")
        if HarmLevel.NONE in self.harm_levels:
            raise PolicyRefused("harm level 'none' cannot trigger outreach; use categories")

    @classmethod
    def of(
        cls,
        *,
        harm_levels: Iterable[HarmLevel],
        categories: Iterable[HarmCategory],
        near_misses: bool,
    ) -> OutreachPolicy:
        return cls(frozenset(harm_levels), frozenset(categories), near_misses)


DEFAULT_POLICY = OutreachPolicy()


def policy_in_force(
    *, network: OutreachPolicy | None, hospital: OutreachPolicy | None
) -> tuple[OutreachPolicy, PolicySource]:
    """A hospital's own policy replaces the network's whole; without either, the defaults."""
    if hospital is not None:
        return hospital, PolicySource.HOSPITAL
    if network is not None:
        return network, PolicySource.NETWORK
    return DEFAULT_POLICY, PolicySource.DEFAULT


def is_near_miss(report: AdverseEventReport) -> bool:
    return report.event_class is EventClass.NEAR_MISS or HarmCategory.NEAR_MISS in report.categories


def qualifies(report: AdverseEventReport, policy: OutreachPolicy) -> bool:
    """Whether everyone involved is offered support, as a matter of routine."""
    if report.harm_level in policy.harm_levels:
        return True
    if any(category in policy.categories for category in report.categories):
        return True
    return policy.near_misses and is_near_miss(report)


def group_debrief_needed(involved_count: int, unit_count: int) -> bool:
    """More than 5 staff or several units call a critical-response team and a group debrief."""
    return (
        involved_count > GROUP_DEBRIEF_MORE_THAN_STAFF or unit_count > GROUP_DEBRIEF_MORE_THAN_UNITS
    )


def outreach_urgency(report: AdverseEventReport) -> Urgency:
    """Death, severe harm or violence: first contact within 30 minutes; otherwise routine."""
    if report.harm_level in URGENT_HARM_LEVELS or any(
        category in URGENT_CATEGORIES for category in report.categories
    ):
        return Urgency.URGENT
    return Urgency.ROUTINE
