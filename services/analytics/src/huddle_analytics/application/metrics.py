"""Programme metrics as published: counted, coarsened, then protected against small cells.

How the published numbers stay safe together:
- a table covers one calendar year; a narrower date range would let totals be differenced;
- its grain (month, quarter or year) is chosen from the data, coarsest first needed, never by the
  caller, and is the same for every breakdown of the same measure and scope;
- every breakdown of a measure shares one protected series of period totals (its column totals),
  so no breakdown reveals a total another one hides;
- statistics over people (percentiles, shares, paired change) need at least k people.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from huddle_runtime.unit_of_work import UnitOfWork

from huddle_analytics.adapters import queries as sql
from huddle_analytics.domain.load import gini, percentile
from huddle_analytics.domain.periods import Grain, label, periods_of, year_bounds
from huddle_analytics.domain.suppression import (
    ProtectedTable,
    coarsen,
    enough,
    protect_counts,
    protect_linked,
    protect_share,
    protect_table,
)
from huddle_analytics.observability import AnalyticsMetrics

# Peers by cases carried in the period: load bands, so no peer's own count is shown.
LOAD_BANDS = ((0, "0"), (1, "1"), (3, "2-3"), (5, "4-5"), (10**9, "6+"))


@dataclass(frozen=True)
class Scope:
    """What the caller may see: the network, or one hospital; one calendar year, closed months
    only (a month still open would let a caller watch each new request arrive)."""

    hospital: str | None
    year: int
    k: int
    until: datetime
    """The start of the first month not yet closed: nothing from then on is published."""

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        start, end = year_bounds(self.year)
        return start, max(start, min(end, self.until))


def fold(monthly: Iterable[tuple[str, datetime, int]], grain: Grain) -> dict[tuple[str, str], int]:
    """Sum monthly counts into the periods of a coarser grain."""
    folded: dict[tuple[str, str], int] = defaultdict(int)
    for value, month, n in monthly:
        folded[(value, label(month, grain))] += n
    return folded


def period_series(
    monthly: Sequence[tuple[str, datetime, int]], year: int, k: int
) -> tuple[Grain, ProtectedTable]:
    """The protected totals per period, at the finest grain that stays readable."""

    def build(grain: Grain) -> ProtectedTable:
        folded = fold(monthly, grain)
        periods = periods_of(year, grain)
        return protect_counts(periods, [folded.get(("all", p), 0) for p in periods], k)

    grain, table = coarsen([(g.value, lambda g=g: build(g)) for g in Grain])  # type: ignore[misc]
    return Grain(grain), table


def breakdown(
    monthly: Sequence[tuple[str, datetime, int]], grain: Grain, year: int
) -> tuple[list[str], list[list[int]]]:
    folded = fold(monthly, grain)
    rows = sorted({value for value, _ in folded})
    periods = periods_of(year, grain)
    return rows, [[folded.get((r, p), 0) for p in periods] for r in rows]


async def counts(
    uow: UnitOfWork, measure_name: str, by: str | None, scope: Scope
) -> dict[str, Any]:
    """One breakdown of a measure, protected together with every other breakdown of it: the
    analyst may ask for all of them, so none may reveal a total another one hides."""
    measure = sql.MEASURES[measure_name]
    start, end = scope.bounds
    dimensions = [
        d for d in measure.dimensions if not (d == "hospital" and scope.hospital is not None)
    ]
    monthly = await sql.monthly_breakdowns(
        uow.conn, measure, dimensions, hospital=scope.hospital, start=start, end=end
    )
    overall = monthly[None]
    grain, _ = period_series(overall, scope.year, scope.k)
    periods = periods_of(scope.year, grain)
    totals = fold(overall, grain)
    breakdowns = {d: breakdown(monthly[d], grain, scope.year) for d in dimensions}
    series, tables = protect_linked(
        periods, [totals.get(("all", p), 0) for p in periods], breakdowns, scope.k
    )
    table = series if by is None else tables[by]
    return {
        "measure": measure_name,
        "by": by,
        "hospital": scope.hospital,
        "year": scope.year,
        "grain": grain.value,
        "threshold": scope.k,
        "table": table.as_dict(),
    }


def _share(numerator: int, denominator: int, k: int) -> dict[str, Any]:
    n, d, share = protect_share(numerator, denominator, k)
    return {"count": n, "of": d, "share": None if share is None else round(share, 3)}


def _percentiles(values: list[float], k: int) -> dict[str, float | None]:
    if not enough(len(values), k):
        return {"p50": None, "p90": None}
    p50, p90 = percentile(values, 50), percentile(values, 90)
    return {
        "p50": None if p50 is None else round(p50, 1),
        "p90": None if p90 is None else round(p90, 1),
    }


async def response_times(uow: UnitOfWork, by: str | None, scope: Scope) -> dict[str, Any]:
    """Minutes to offer, to match and to first contact (p50, p90), and deadlines kept, by
    urgency: urgent within 30 minutes, routine within 24 working hours of the hospital.

    Per quarter and for the whole year; a group of fewer than k cases shows nothing. No count
    is published here (the requests measure publishes them, protected), only statistics."""
    start, end = scope.bounds
    cases = await sql.case_timings(uow.conn, by, hospital=scope.hospital, start=start, end=end)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    year = str(scope.year)
    for c in cases:
        value = str(c["value"] or "unknown")
        groups[(value, label(c["month"], Grain.QUARTER))].append(c)
        groups[(value, year)].append(c)
    cells: list[dict[str, Any]] = []
    for (group, period), members in sorted(groups.items()):
        if not enough(len(members), scope.k):
            cells.append({"group": group, "period": period, "suppressed": True})
        else:
            cells.append(_timings(group, period, members, scope.k))
    return {
        "measure": "response_times",
        "by": by,
        "hospital": scope.hospital,
        "year": scope.year,
        "grain": Grain.QUARTER.value,
        "threshold": scope.k,
        "deadlines": {"urgent": "30 minutes", "routine": "24 working hours"},
        "groups": cells,
    }


def _timings(group: str, period: str, members: list[dict[str, Any]], k: int) -> dict[str, Any]:
    return {
        "group": group,
        "period": period,
        "suppressed": False,
        "minutes_to_offer": _percentiles(_known(members, "to_offer"), k),
        "minutes_to_match": _percentiles(_known(members, "to_match"), k),
        "minutes_to_first_contact": _percentiles(_known(members, "to_contact"), k),
        "deadline_met": {u: _deadlines(members, u, k) for u in ("urgent", "routine")},
    }


def _known(members: list[dict[str, Any]], field: str) -> list[float]:
    return [float(m[field]) for m in members if m[field] is not None]


def _deadlines(members: list[dict[str, Any]], urgency: str, k: int) -> float | None:
    """The share kept, only when both those who were reached in time and those who were not
    number k or more (a share of a known group is a count)."""
    decided = [m["deadline_met"] for m in members if m["urgency"] == urgency]
    decided = [d for d in decided if d is not None]
    kept = sum(1 for d in decided if d)
    missed = len(decided) - kept
    if not enough(len(decided), k) or 0 < kept < k or 0 < missed < k:
        return None
    return round(kept / len(decided), 2)


async def adverse_event_coverage(uow: UnitOfWork, scope: Scope) -> dict[str, Any]:
    """Share of the staff involved in adverse events who were offered support, and reached.

    Reached, offered but not reached, and not offered are one protected breakdown of the staff
    involved: two shares of one total would otherwise give away their difference."""
    start, end = scope.bounds
    events = await sql.adverse_event_reach(uow.conn, hospital=scope.hospital, start=start, end=end)
    involved = sum(int(e["involved"]) for e in events)
    offered = min(sum(int(e["offered"]) for e in events), involved)
    reached = min(sum(int(e["reached"]) for e in events), offered)
    table = protect_counts(
        ["reached", "offered_not_reached", "not_offered"],
        [reached, offered - reached, involved - offered],
        scope.k,
    )
    shown_reached, shown_waiting, _ = table.cells[0]
    total = table.total

    def share(count: int | None) -> float | None:
        return None if count is None or not total else round(count / total, 3)

    shown_offered = (
        None if shown_reached is None or shown_waiting is None else shown_reached + shown_waiting
    )
    return {
        "measure": "adverse_event_coverage",
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "involved": table.as_dict(),
        "offered": {"count": shown_offered, "of": total, "share": share(shown_offered)},
        "reached": {"count": shown_reached, "of": total, "share": share(shown_reached)},
    }


async def referral_rate(uow: UnitOfWork, scope: Scope) -> dict[str, Any]:
    start, end = scope.bounds
    cases = await sql.matched_cases(uow.conn, hospital=scope.hospital, start=start, end=end)
    referred = sum(1 for c in cases if c["referral"])
    return {
        "measure": "referral_rate",
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "referred": _share(referred, len(cases), scope.k),
    }


async def follow_up_kept(uow: UnitOfWork, scope: Scope) -> dict[str, Any]:
    start, end = scope.bounds
    planned = await sql.follow_ups(uow.conn, hospital=scope.hospital, start=start, end=end)
    kept = sum(1 for p in planned if p["kept"])
    return {
        "measure": "follow_ups",
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "kept": _share(kept, len(planned), scope.k),
    }


async def peer_load(uow: UnitOfWork, scope: Scope) -> dict[str, Any]:
    """How cases spread over certified peers: peers per load band, the Gini coefficient
    (0 = perfectly even) and the median and 90th percentile of cases per peer."""
    start, end = scope.bounds
    loads = await sql.peer_loads(uow.conn, hospital=scope.hospital, start=start, end=end)
    bands = [label for _, label in LOAD_BANDS]
    counted = Counter(next(lbl for bound, lbl in LOAD_BANDS if n <= bound) for n in loads)
    fair = enough(len(loads), scope.k)
    return {
        "measure": "peer_load",
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "peers_by_cases": protect_counts(bands, [counted[b] for b in bands], scope.k).as_dict(),
        "gini": round(gini(loads), 3) if fair else None,
        "cases_per_peer": _percentiles([float(n) for n in loads], scope.k),
    }


async def training_coverage(
    uow: UnitOfWork, hospital: str | None, at: datetime, k: int
) -> dict[str, Any]:
    """Certified peers by hospital (rows) and discipline (columns) at an instant."""
    found = await sql.certified_peers(uow.conn, hospital=hospital, at=at)
    hospitals = sorted({h for h, _, _ in found})
    disciplines = sorted({d for _, d, _ in found})
    by_cell = {(h, d): n for h, d, n in found}
    table = protect_table(
        hospitals,
        disciplines,
        [[by_cell.get((h, d), 0) for d in disciplines] for h in hospitals],
        k,
    )
    return {
        "measure": "training_coverage",
        "hospital": hospital,
        "at": at.isoformat(),
        "threshold": k,
        "certified_peers": table.as_dict(),
    }


async def dashboard(uow: UnitOfWork, scope: Scope, metrics: AnalyticsMetrics) -> dict[str, Any]:
    """Everything a programme lead reads at once, for one scope and year."""
    end = scope.bounds[1]  # the end of the last closed month in the year
    return {
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "requests_by_origin": await timed(
            metrics, "requests", counts(uow, "requests", "origin", scope)
        ),
        "requests_by_tier": await timed(
            metrics, "requests", counts(uow, "requests", "tier", scope)
        ),
        "sessions_by_mode": await timed(
            metrics, "sessions", counts(uow, "sessions", "mode", scope)
        ),
        "response_times": await timed(metrics, "response_times", response_times(uow, None, scope)),
        "adverse_event_coverage": await timed(
            metrics, "adverse_event_coverage", adverse_event_coverage(uow, scope)
        ),
        "referral_rate": await timed(metrics, "referral_rate", referral_rate(uow, scope)),
        "follow_ups": await timed(metrics, "follow_ups", follow_up_kept(uow, scope)),
        "peer_load": await timed(metrics, "peer_load", peer_load(uow, scope)),
        "training_coverage": await timed(
            metrics, "training_coverage", training_coverage(uow, scope.hospital, end, scope.k)
        ),
    }


async def timed(metrics: AnalyticsMetrics, measure: str, work: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result: dict[str, Any] = await work
        return result
    finally:
        metrics.query_seconds.labels(measure).observe(time.perf_counter() - started)
