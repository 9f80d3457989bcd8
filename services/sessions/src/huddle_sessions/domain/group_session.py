"""Group formats (DOMAIN.md, "Modes"): team debriefs after an event and recurring rounds.
Records hold aggregates only: when, how long, how many came. Never who said what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class GroupFormat(StrEnum):
    TEAM_DEBRIEF = "team_debrief"
    SCHWARTZ_ROUNDS = "schwartz_rounds"
    ICE_CREAM_ROUNDS = "ice_cream_rounds"
    DEPARTMENT_GROUP = "department_group"
    TOWN_HALL = "town_hall"


class Recurrence(StrEnum):
    NONE = "none"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"
    BIMONTHLY = "bimonthly"


@dataclass(frozen=True)
class FormatGuide:
    """What the programmes describe for each format: a usual length and an agenda."""

    title: str
    usual_length: timedelta
    agenda: tuple[str, ...]
    usual_recurrence: Recurrence


GUIDES: dict[GroupFormat, FormatGuide] = {
    GroupFormat.TEAM_DEBRIEF: FormatGuide(
        "Team debrief",
        timedelta(minutes=77),
        ("What happened", "Reactions", "Support available"),
        Recurrence.NONE,
    ),
    GroupFormat.SCHWARTZ_ROUNDS: FormatGuide(
        "Schwartz Rounds",
        timedelta(hours=1),
        ("Panel", "Facilitated discussion"),
        Recurrence.MONTHLY,
    ),
    GroupFormat.ICE_CREAM_ROUNDS: FormatGuide(
        "Ice Cream Rounds",
        timedelta(hours=1),
        ("Introduction", "Check-in", "Discussion", "Check-out"),
        Recurrence.MONTHLY,
    ),
    GroupFormat.DEPARTMENT_GROUP: FormatGuide(
        "Department group",
        timedelta(minutes=30),
        ("Check-in", "Discussion"),
        Recurrence.FORTNIGHTLY,
    ),
    GroupFormat.TOWN_HALL: FormatGuide(
        "Town hall",
        timedelta(minutes=45),
        ("Update", "Questions", "Support available"),
        Recurrence.NONE,
    ),
}


class GroupRefused(ValueError):
    pass


def attendance_counts_only(participants: int) -> int:
    """A group session records how many came (at least 2), nothing about who."""
    if participants < 2:
        raise GroupRefused("a group session has at least 2 participants")
    if participants > 500:
        raise GroupRefused("more than 500 participants is not a group session")
    return participants
