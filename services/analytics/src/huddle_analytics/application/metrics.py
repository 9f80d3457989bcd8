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
from collections.abc import Iterable, Mapping, Sequence
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


@dataclass(frozen=True)
class Breakdowns:
    """A measure's protected series of period totals and every breakdown of it, as one release."""

    measure: str
    grain: Grain
    series: ProtectedTable
    tables: dict[str, ProtectedTable]

    def document(self, by: str | None, scope: Scope) -> dict[str, Any]:
        table = self.series if by is None else self.tables[by]
        return {
            "measure": self.measure,
            "by": by,
            "hospital": scope.hospital,
            "year": scope.year,
            "grain": self.grain.value,
            "threshold": scope.k,
            "table": table.as_dict(),
        }


async def breakdowns(uow: UnitOfWork, measure_name: str, scope: Scope) -> Breakdowns:
    """Every breakdown of a measure, protected together: the analyst may ask for all of them,
    so none may reveal a total another one hides."""
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
    broken_down = {d: breakdown(monthly[d], grain, scope.year) for d in dimensions}
    series, tables = protect_linked(
        periods, [totals.get(("all", p), 0) for p in periods], broken_down, scope.k
    )
    return Breakdowns(measure_name, grain, series, tables)


async def counts(
    uow: UnitOfWork, measure_name: str, by: str | None, scope: Scope
) -> dict[str, Any]:
    """One breakdown of a measure, protected together with every other breakdown of it."""
    return (await breakdowns(uow, measure_name, scope)).document(by, scope)


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
    urgency: urgent within 30 minutes, routine within 24 working hours of the hospital; a case
    not reached by its deadline counts as missed once the deadline is within the closed months.

    Per quarter and for the whole year; a group of fewer than k cases shows nothing. No count
    is published here (the requests measure publishes them, protected), only statistics."""
    start, end = scope.bounds
    groups = await sql.case_timings(
        uow.conn, by, hospital=scope.hospital, start=start, end=end, decided_by=scope.until
    )
    year = str(scope.year)
    cells: list[dict[str, Any]] = []
    for g in sorted(
        groups,
        key=lambda g: (
            g["value"],
            year if g["quarter"] is None else label(g["quarter"], Grain.QUARTER),
        ),
    ):
        group = str(g["value"])
        period = year if g["quarter"] is None else label(g["quarter"], Grain.QUARTER)
        if not enough(int(g["cases"]), scope.k):
            cells.append({"group": group, "period": period, "suppressed": True})
        else:
            cells.append(_timings(group, period, g, scope.k))
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


def _timings(group: str, period: str, g: Mapping[str, Any], k: int) -> dict[str, Any]:
    return {
        "group": group,
        "period": period,
        "suppressed": False,
        "minutes_to_offer": _wait_percentiles(g, "to_offer", k),
        "minutes_to_match": _wait_percentiles(g, "to_match", k),
        "minutes_to_first_contact": _wait_percentiles(g, "to_contact", k),
        "deadline_met": {
            u: _deadlines(int(g[f"{u}_decided"]), int(g[f"{u}_kept"]), k)
            for u in ("urgent", "routine")
        },
    }


def _wait_percentiles(g: Mapping[str, Any], wait: str, k: int) -> dict[str, float | None]:
    """p50 and p90 of the cases whose waiting time is known, only over k cases or more."""
    p50, p90 = g[f"{wait}_p"] or (None, None)
    if not enough(int(g[f"{wait}_known"]), k) or p50 is None or p90 is None:
        return {"p50": None, "p90": None}
    return {"p50": round(float(p50), 1), "p90": round(float(p90), 1)}


def _deadlines(decided: int, kept: int, k: int) -> float | None:
    """The share kept, only when both those who were reached in time and those who were not
    number k or more (a share of a known group is a count)."""
    missed = decided - kept
    if not enough(decided, k) or 0 < kept < k or 0 < missed < k:
        return None
    return round(kept / decided, 2)


async def adverse_event_coverage(uow: UnitOfWork, scope: Scope) -> dict[str, Any]:
    """Share of the staff involved in adverse events who were offered support, and reached.

    Reached, offered but not reached, and not offered are one protected breakdown of the staff
    involved: two shares of one total would otherwise give away their difference."""
    start, end = scope.bounds
    involved, offered, reached = await sql.adverse_event_reach(
        uow.conn, hospital=scope.hospital, start=start, end=end
    )
    offered = min(offered, involved)
    reached = min(reached, offered)
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
    matched, referred = await sql.matched_cases(
        uow.conn, hospital=scope.hospital, start=start, end=end
    )
    return {
        "measure": "referral_rate",
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "referred": _share(referred, matched, scope.k),
    }


async def follow_up_kept(uow: UnitOfWork, scope: Scope) -> dict[str, Any]:
    start, end = scope.bounds
    planned, kept = await sql.follow_ups(uow.conn, hospital=scope.hospital, start=start, end=end)
    return {
        "measure": "follow_ups",
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "kept": _share(kept, planned, scope.k),
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


@dataclass(frozen=True)
class Yearly:
    """Every measure the dashboard shows for one scope and year, each computed once."""

    requests: Breakdowns
    sessions: Breakdowns
    response_times: dict[str, Any]
    adverse_event_coverage: dict[str, Any]
    referral_rate: dict[str, Any]
    follow_ups: dict[str, Any]
    peer_load: dict[str, Any]
    training_coverage: dict[str, Any]


async def yearly(uow: UnitOfWork, scope: Scope, metrics: AnalyticsMetrics) -> Yearly:
    end = scope.bounds[1]  # the end of the last closed month in the year
    return Yearly(
        # Both request tables come from the one protected release of every breakdown of requests.
        requests=await timed_breakdowns(metrics, uow, "requests", scope),
        sessions=await timed_breakdowns(metrics, uow, "sessions", scope),
        response_times=await timed(metrics, "response_times", response_times(uow, None, scope)),
        adverse_event_coverage=await timed(
            metrics, "adverse_event_coverage", adverse_event_coverage(uow, scope)
        ),
        referral_rate=await timed(metrics, "referral_rate", referral_rate(uow, scope)),
        follow_ups=await timed(metrics, "follow_ups", follow_up_kept(uow, scope)),
        peer_load=await timed(metrics, "peer_load", peer_load(uow, scope)),
        training_coverage=await timed(
            metrics, "training_coverage", training_coverage(uow, scope.hospital, end, scope.k)
        ),
    )


def dashboard_of(found: Yearly, scope: Scope) -> dict[str, Any]:
    """Everything a programme lead reads at once, for one scope and year."""
    return {
        "hospital": scope.hospital,
        "year": scope.year,
        "threshold": scope.k,
        "requests_by_origin": found.requests.document("origin", scope),
        "requests_by_tier": found.requests.document("tier", scope),
        "sessions_by_mode": found.sessions.document("mode", scope),
        "response_times": found.response_times,
        "adverse_event_coverage": found.adverse_event_coverage,
        "referral_rate": found.referral_rate,
        "follow_ups": found.follow_ups,
        "peer_load": found.peer_load,
        "training_coverage": found.training_coverage,
    }


async def dashboard(uow: UnitOfWork, scope: Scope, metrics: AnalyticsMetrics) -> dict[str, Any]:
    return dashboard_of(await yearly(uow, scope, metrics), scope)


async def timed_breakdowns(
    metrics: AnalyticsMetrics, uow: UnitOfWork, measure: str, scope: Scope
) -> Breakdowns:
    started = time.perf_counter()
    try:
        return await breakdowns(uow, measure, scope)
    finally:
        metrics.query_seconds.labels(measure).observe(time.perf_counter() - started)


async def timed(metrics: AnalyticsMetrics, measure: str, work: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result: dict[str, Any] = await work
        return result
    finally:
        metrics.query_seconds.labels(measure).observe(time.perf_counter() - started)
