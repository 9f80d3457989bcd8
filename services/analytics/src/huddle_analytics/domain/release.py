"""Releasing programme records to analysts without publishing a small group.

Everything an analyst can count on the stream is a group of records that share every published
value: the record's kind and month, the person-describing values of its unit (hospital,
discipline, clinical area of a case, a peer or an event) and the record's own values (mode, tier,
urgency…). Every such group must hold 0 or at least k records. A group that is too small first
loses its records' own values, then its units are coarsened (clinical area, then discipline,
then hospital); what cannot reach k even then waits for a later release.

Records linked to their unit (by its random surrogate) all show the unit's person-describing
values, so linking them reveals nothing finer; a record that would otherwise be in too small a
group is detached from its unit instead.
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
    """A case, a peer, an adverse event or a group session: its records are coarsened alike."""

    key: Hashable
    kind: str
    quasi: Mapping[str, str | None]


@dataclass(frozen=True)
class Item:
    """One record to release: its unit, its kind and month, and its own published values."""

    unit: Hashable
    group: tuple[str, str]
    values: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Decision:
    shown: tuple[str, ...]
    """The quasi-identifiers this unit's records show; the rest are published as null."""

    @property
    def coarsened(self) -> tuple[str, ...]:
        return tuple(q for q in QUASI_IDENTIFIERS if q not in self.shown)


@dataclass(frozen=True)
class Release:
    units: dict[Hashable, Decision]
    """Units released, and how coarsely; a unit missing here waits with all its records."""
    keeps_values: list[bool]
    """Per item: whether it keeps its own values (False: they are published as null)."""
    detached: list[bool]
    """Per item: published without its unit's surrogate and with no person-describing value."""
    waiting: set[int]
    """Items held back for a later release."""

    def released(self, items: Sequence[Item]) -> list[int]:
        return [
            i
            for i, item in enumerate(items)
            if i not in self.waiting and (self.detached[i] or item.unit in self.units)
        ]


def release(
    units: Sequence[Unit], items: Sequence[Item], k: int, anchors: Sequence[bool] | None = None
) -> Release:
    """Coarsen until every published group of records holds at least ``k`` of them.

    Each unit's ``anchors`` (its request, its certification, the event itself) decide how coarsely
    the unit is shown. Its other records show the same, or, when that would leave them in a group
    smaller than k, are detached: published without the unit's surrogate and with nothing that
    describes a person, so they cannot be linked back to the unit. What cannot reach k waits.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    anchored = list(anchors) if anchors is not None else [True] * len(items)
    by_key = {u.key: u for u in units}
    level = {u.key: 0 for u in units}
    keeps = [bool(item.values) for item in items]
    detached = [item.unit not in by_key for item in items]
    waiting: set[int] = set()
    # Units without an anchor (their first record never arrived) are detached whole.
    has_anchor = {items[i].unit for i in range(len(items)) if anchored[i]}
    for i, item in enumerate(items):
        if item.unit not in has_anchor:
            detached[i] = True

    def key(i: int) -> tuple[object, ...]:
        item = items[i]
        values = item.values if keeps[i] else ()
        if detached[i]:
            return (item.group, "detached", values)
        described = by_key[item.unit]
        at = level[item.unit]
        shown = tuple(described.quasi.get(q) for q in LEVELS[at])
        return (item.group, described.kind, at, shown, values)

    def small_groups(members: Sequence[int]) -> list[list[int]]:
        groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for i in members:
            groups[key(i)].append(i)
        return [g for g in groups.values() if len(g) < k]

    # The anchors decide each unit's coarsening.
    while True:
        live = [
            i
            for i in range(len(items))
            if anchored[i] and not detached[i] and level[items[i].unit] < len(LEVELS)
        ]
        small = small_groups(live)
        for group in small:
            with_values = [i for i in group if keeps[i]]
            for i in with_values:
                keeps[i] = False
            if not with_values:
                for unit_key in {items[i].unit for i in group}:
                    level[unit_key] += 1
        if not small:
            break
    decided = {key_: Decision(LEVELS[at]) for key_, at in level.items() if at < len(LEVELS)}
    # The other records follow their unit, lose their values, detach, or wait.
    while True:
        live = [
            i
            for i in range(len(items))
            if i not in waiting and (detached[i] or (not anchored[i] and items[i].unit in decided))
        ]
        small = small_groups(live)
        for group in small:
            with_values = [i for i in group if keeps[i]]
            for i in with_values:
                keeps[i] = False
            if with_values:
                continue
            for i in group:
                if detached[i]:
                    waiting.add(i)
                else:
                    detached[i] = True
        if not small:
            break
    for i, item in enumerate(items):
        if not detached[i] and item.unit not in decided:
            waiting.add(i)
    return Release(units=decided, keeps_values=keeps, detached=detached, waiting=waiting)
