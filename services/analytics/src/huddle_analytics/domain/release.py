"""Releasing programme records to analysts: groups of people coarsened until each holds at least
k units (cases, peers or adverse events), and what still cannot reach k waits for a later release.

The quasi-identifiers are what describes a person (hospital, discipline, clinical area); they are
coarsened from the finest (clinical area) to the coarsest (hospital); every record of one unit
shares its unit's coarsening, so linking records through a surrogate reveals nothing finer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

# Coarsening order: which quasi-identifiers each level still shows.
LEVELS: tuple[tuple[str, ...], ...] = (
    ("hospital", "discipline", "clinical_area"),
    ("hospital", "discipline"),
    ("hospital",),
    (),
)
QUASI_IDENTIFIERS = LEVELS[0]


@dataclass(frozen=True)
class Unit:
    """A case, a peer or an adverse event: its records are released together, alike."""

    key: Hashable
    kind: str
    """Units of different kinds are grouped separately (a case is not a peer)."""
    quasi: Mapping[str, str | None]


@dataclass(frozen=True)
class Decision:
    shown: tuple[str, ...]
    """The quasi-identifiers this unit's records show; the rest are published as null."""

    @property
    def coarsened(self) -> tuple[str, ...]:
        return tuple(q for q in QUASI_IDENTIFIERS if q not in self.shown)


def release(units: Sequence[Unit], k: int) -> dict[Hashable, Decision]:
    """Which units may be released now, and how coarsely; units left out wait.

    Each level groups only the units that could not be shown at the finer levels, so every
    published group (kind, shown values) holds at least ``k`` units.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    decided: dict[Hashable, Decision] = {}
    remaining = list(units)
    for shown in LEVELS:
        groups: dict[tuple[object, ...], list[Unit]] = defaultdict(list)
        for unit in remaining:
            groups[(unit.kind, *(unit.quasi.get(q) for q in shown))].append(unit)
        remaining = []
        for members in groups.values():
            if len(members) >= k:
                decided.update((u.key, Decision(shown)) for u in members)
            else:
                remaining.extend(members)
    return decided
