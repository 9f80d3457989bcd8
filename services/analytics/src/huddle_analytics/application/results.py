"""Published results, materialised.

Only closed months are published, so a result is a pure function of the caller's scope (the
network, or a coordinator's hospital), the query and its parameters, the last closed month, and
the rows of closed months. Each network has a data version that the projections move, in the same
transaction, only when a row a closed month's results read changes (a late event; see migration
0005). A result is therefore stored under (scope, query, last closed month, data version) and
served from the table while both hold; otherwise it is computed as always (suppression and all)
from one snapshot, and stored. A month closing changes the key; a late event changes the version.

The warmer precomputes the dashboard and every part of it for each network and each hospital in
it, when a month closes or once the version has stopped moving, so that an analyst practically
never waits. Older answers go as soon as a newer one of the same query is stored, and the rest at
the warmer's next round, whether or not it warms.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import structlog
from fastapi.responses import JSONResponse
from huddle_runtime.consumer import failure_reason
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant, apply_system_scope, apply_tenant
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_analytics.adapters import queries
from huddle_analytics.adapters import results as sql
from huddle_analytics.adapters import surveys as survey_sql
from huddle_analytics.application import metrics as programme
from huddle_analytics.application import surveys
from huddle_analytics.application.releases import cutoff
from huddle_analytics.domain import instruments, load, outcomes, periods, suppression
from huddle_analytics.domain.instruments import SPECS, Instrument
from huddle_analytics.domain.periods import Grain, year_bounds
from huddle_analytics.observability import AnalyticsMetrics
from huddle_analytics.settings import AnalyticsSettings

log = structlog.get_logger(__name__)

# Stored bodies are only as good as the code that computed them: a new version of any module a
# result goes through, or that shapes it (this one, the endpoints), is a new key (the old rows go
# when the month closes or the version next moves). The endpoints by file: they import this one.
_COMPUTING = (programme, queries, surveys, survey_sql, instruments, load, outcomes, periods)
COMPUTING_SOURCES = (
    *(Path(inspect.getfile(module)) for module in (*_COMPUTING, suppression)),
    Path(__file__),
    Path(__file__).parents[1] / "entrypoints" / "http.py",
)
_COMPUTED_BY = hashlib.sha256(b"".join(p.read_bytes() for p in COMPUTING_SOURCES)).hexdigest()[:12]

DEFAULT_PROGRAMME = "peer-support"

Compute = Callable[[UnitOfWork], Awaitable[dict[str, Any]]]
Keep = Callable[[UnitOfWork], Awaitable[bool]]
"""Whether a computed answer is worth storing: any reader can name any programme, year or
month, and answers that cannot hold anything are computed each time rather than stored."""


def closed_until(now: datetime, settings: AnalyticsSettings) -> datetime:
    """The start of the first month not yet closed (plus the release's grace period)."""
    return cutoff(now, timedelta(hours=settings.release_grace_hours))


def closed_through(until: datetime) -> date:
    """The last closed month (its first day)."""
    last = until - timedelta(microseconds=1)
    return date(last.year, last.month, 1)


def default_year(until: datetime) -> int:
    """The year of the last closed month."""
    return closed_through(until).year


def scope_of(hospital: str | None) -> str:
    return "network" if hospital is None else f"hospital:{hospital}"


def query_key(name: str, k: int, **params: object) -> str:
    """The query and every parameter that shapes its answer, with k and the code's digest."""
    shown = sorted((key, str(value)) for key, value in params.items() if value is not None)
    return f"{name}?{urlencode([*shown, ('k', str(k))])}#{_COMPUTED_BY}"


def counts_key(measure: str, by: str | None, scope: programme.Scope) -> str:
    return query_key(f"metrics/{measure}", scope.k, by=by, year=scope.year)


def response_times_key(by: str | None, scope: programme.Scope) -> str:
    return query_key("response-times", scope.k, by=by, year=scope.year)


def yearly_key(name: str, scope: programme.Scope) -> str:
    return query_key(name, scope.k, year=scope.year)


def training_key(at: datetime, k: int) -> str:
    return query_key("training-coverage", k, at=at.isoformat())


def outcomes_key(instrument: Instrument, programme_name: str, k: int) -> str:
    return query_key(f"outcomes/{instrument.value}", k, programme=programme_name)


def rendered(body: dict[str, Any]) -> bytes:
    """The response's bytes, as FastAPI would send the dict."""
    return bytes(JSONResponse(body).body)


@contextlib.asynccontextmanager
async def snapshot(
    runtime: Runtime, tenant: Tenant, settings: AnalyticsSettings
) -> AsyncIterator[tuple[UnitOfWork, int]]:
    """One consistent view of the network's rows and the data version they are: a body computed
    here is exactly that version's answer, however many late events commit meanwhile."""
    assert runtime.pool is not None, "the runtime is not started"
    async with (
        runtime.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        await apply_tenant(conn, tenant)
        # Grouping and sorting a year of rows: in memory rather than in temporary files. Plans
        # for the hospital actually asked: a generic plan of "$1 IS NULL OR hospital_id = $1"
        # scans the whole network for a coordinator.
        await conn.execute(
            f"SET LOCAL work_mem = '{settings.query_work_mem_mb}MB';"
            " SET LOCAL plan_cache_mode = force_custom_plan"
        )
        yield UnitOfWork(conn, tenant), await sql.data_version(conn, tenant.network_id)


async def keep(
    runtime: Runtime,
    network: str,
    until: datetime,
    version: int,
    bodies: Sequence[tuple[str, str, bytes]],
) -> None:
    async with runtime.unit_of_work(Tenant(network)) as uow:
        await sql.store(
            uow.conn,
            network,
            closed_through(until),
            version,
            [(scope, key, body.decode()) for scope, key, body in bodies],
        )


async def published(
    runtime: Runtime,
    tenant: Tenant,
    scope: str,
    key: str,
    until: datetime,
    compute: Compute,
    worth_keeping: Keep | None = None,
) -> bytes:
    """The stored body while the closed month and the data version hold; otherwise computed
    from one snapshot, stored (unless ``worth_keeping`` says no) and returned."""
    metrics: AnalyticsMetrics = runtime.state["metrics"]
    settings: AnalyticsSettings = runtime.state["settings"]
    async with runtime.unit_of_work(tenant) as uow:
        body = await sql.stored(uow.conn, tenant.network_id, scope, key, closed_through(until))
    if body is not None:
        metrics.results.labels("stored").inc()
        return body.encode()
    metrics.results.labels("computed").inc()
    async with snapshot(runtime, tenant, settings) as (uow, version):
        computed = rendered(await compute(uow))
        kept = worth_keeping is None or await worth_keeping(uow)
    if kept:
        await keep(runtime, tenant.network_id, until, version, [(scope, key, computed)])
    return computed


def answered(instrument: Instrument, programme_name: str) -> Keep | None:
    """Outcomes are kept for the default programme and for programmes with responses to the
    instrument; a made-up programme is answered (with nothing) but not stored."""
    if programme_name == DEFAULT_PROGRAMME:
        return None

    async def check(uow: UnitOfWork) -> bool:
        assert uow.tenant is not None
        network = uow.tenant.network_id
        return await survey_sql.answered(uow.conn, network, instrument.value, programme_name)

    return check


def rows_before(end: datetime) -> Keep:
    """Kept only if the network has a row before ``end``: the years and months before it began
    answer nothing, and every one of them since 2000 can be asked for."""

    async def check(uow: UnitOfWork) -> bool:
        assert uow.tenant is not None
        first = await sql.first_activity(uow.conn, uow.tenant.network_id)
        return first is not None and first < end

    return check


async def _never(_: UnitOfWork) -> bool:
    return False


def year_kept(scope: programme.Scope) -> Keep | None:
    """The warmed years always; another year once it has a closed month and the network has
    rows before its end (a year still to come answers nothing until a month of it closes)."""
    if scope.year in warm_years(scope.until):
        return None
    start, end = scope.bounds
    return rows_before(end) if start < end else _never


async def scope_bodies(
    uow: UnitOfWork, scope: programme.Scope, metrics: AnalyticsMetrics, *, outcomes: bool = True
) -> list[tuple[str, bytes]]:
    """The dashboard and every part of it for one scope, computed once: each measure's every
    breakdown, response times, the shares, peer load, training coverage; with ``outcomes``,
    every instrument's outcomes (they cover every closed quarter, whatever the year)."""
    bodies: list[tuple[str, bytes]] = []
    found = await programme.yearly(uow, scope, metrics)
    bodies.append((yearly_key("dashboard", scope), rendered(programme.dashboard_of(found, scope))))
    for measure in queries.MEASURES:
        release = (
            found.requests
            if measure == "requests"
            else found.sessions
            if measure == "sessions"
            else await programme.timed_breakdowns(metrics, uow, measure, scope)
        )
        for by in (None, *release.tables):
            bodies.append((counts_key(measure, by, scope), rendered(release.document(by, scope))))
    bodies += [
        (response_times_key(None, scope), rendered(found.response_times)),
        (yearly_key("adverse-event-coverage", scope), rendered(found.adverse_event_coverage)),
        (yearly_key("referral-rate", scope), rendered(found.referral_rate)),
        (yearly_key("follow-ups", scope), rendered(found.follow_ups)),
        (yearly_key("peer-load", scope), rendered(found.peer_load)),
        (training_key(scope.bounds[1], scope.k), rendered(found.training_coverage)),
    ]
    for instrument in SPECS if outcomes else ():
        answer = await surveys.outcomes(
            uow,
            instrument=instrument,
            grain=Grain.QUARTER,
            programme=DEFAULT_PROGRAMME,
            hospital=scope.hospital,
            k=scope.k,
            until=scope.until,
        )
        bodies.append((outcomes_key(instrument, DEFAULT_PROGRAMME, scope.k), rendered(answer)))
    return bodies


@dataclass(frozen=True)
class Warmed:
    network: str
    scopes: int
    bodies: int
    complete: bool
    """False when a late event moved the version meanwhile: the next round starts again."""


def warm_years(until: datetime) -> tuple[int, ...]:
    """The year of the last closed month (the default) and the last whole year before it."""
    year = default_year(until)
    return (year, year - 1)


async def warm_network(
    runtime: Runtime, network: str, now: datetime, *, hospitals: bool = True
) -> Warmed:
    """Precompute the dashboard and its parts of each warmed year for the network, then (with
    ``hospitals``) for each of its hospitals, from the current data version; stop when that
    version moves."""
    settings: AnalyticsSettings = runtime.state["settings"]
    metrics: AnalyticsMetrics = runtime.state["metrics"]
    until = closed_until(now, settings)
    years = warm_years(until)
    tenant = Tenant(network)
    first: int | None = None
    scopes: list[str | None] = [None]
    stored = 0
    done = 0
    while done < len(scopes):
        hospital = scopes[done]
        async with snapshot(runtime, tenant, settings) as (uow, version):
            if first is None:
                first = version
                start, end = min(year_bounds(y)[0] for y in years), until
                scopes += await sql.hospitals(uow.conn, start, end) if hospitals else []
            elif version != first:
                return Warmed(network, done, stored, complete=False)
            bodies = [
                body
                for year in years
                for body in await scope_bodies(
                    uow,
                    programme.Scope(
                        hospital=hospital, year=year, k=settings.suppression_threshold, until=until
                    ),
                    metrics,
                    outcomes=year == years[0],
                )
            ]
        where = scope_of(hospital)
        await keep(runtime, network, until, version, [(where, key, b) for key, b in bodies])
        stored += len(bodies)
        done += 1
    assert first is not None
    if hospitals:
        async with runtime.unit_of_work(tenant) as uow:
            await sql.warmed(uow.conn, network, closed_through(until), first)
    return Warmed(network, done, stored, complete=True)


async def warm_due(runtime: Runtime, now: datetime) -> list[Warmed]:
    """Warm every network whose results are not all warmed for this closed month and version
    (a network joins once anyone has asked it something, or a late event has moved it); a
    network that fails is logged and left for the next round, and the others are warmed."""
    assert runtime.pool is not None, "the runtime is not started"
    settings: AnalyticsSettings = runtime.state["settings"]
    through = closed_through(closed_until(now, settings))
    async with runtime.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "results")
        networks = await sql.stale_networks(conn, through)
    warmed: list[Warmed] = []
    for network in networks:
        try:
            done = await warm_alone(runtime, network, now)
        except Exception as exc:  # one network's failure must leave the others warmed
            log.warning("warming results failed", network=network, error=failure_reason(exc))
            continue
        if done is not None:
            warmed.append(done)
    return warmed


async def warm_alone(runtime: Runtime, network: str, now: datetime) -> Warmed | None:
    """Under the network's advisory lock (another replica holding it warms it instead): drop
    the answers no current key reads, then warm once the version has been quiet for
    ``warm_quiet_seconds``; None when nothing was warmed."""
    assert runtime.pool is not None, "the runtime is not started"
    settings: AnalyticsSettings = runtime.state["settings"]
    through = closed_through(closed_until(now, settings))
    async with sql.warm_lock(runtime.pool, network) as locked:
        if not locked:
            return None
        async with runtime.unit_of_work(Tenant(network)) as uow:
            changed = await sql.drop_stale(uow.conn, network, through)
        # Late events come in runs (a backlog, a busy ward): a warm begun mid-run is lost.
        quiet_since = now - timedelta(seconds=settings.warm_quiet_seconds)
        if changed is None or changed > quiet_since:
            return None
        return await warm_network(runtime, network, now)


async def warm_published_results(runtime: Runtime) -> None:
    """The warmer: off the request path, one round every ``warm_interval_seconds``."""
    settings: AnalyticsSettings = runtime.state["settings"]
    while not runtime.stopping.is_set():
        try:
            for warmed in await warm_due(runtime, datetime.now(UTC)):
                log.info("results warmed", **vars(warmed))
        except Exception as exc:  # a bad round must not stop later ones
            log.warning("warming results failed", error=failure_reason(exc))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), settings.warm_interval_seconds)
