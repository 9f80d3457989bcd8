"""The analysts' stream: once a month has closed, its programme records are anonymised and
published through the outbox, in the same transaction that marks them released (so exactly once).

A release is due when a record waits that no release has considered yet; records whose group is
still smaller than k are held back and join the next release.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from huddle_contracts.events import AnonymisedProgrammeEvent
from huddle_contracts.vocabulary import ProgrammeRecordKind as Kind
from huddle_runtime.consumer import failure_reason
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant, apply_system_scope

from huddle_analytics.adapters import releases as sql
from huddle_analytics.domain.periods import month_of, month_start, waited_band
from huddle_analytics.domain.release import QUASI_IDENTIFIERS, Decision, Item, Unit, release
from huddle_analytics.observability import AnalyticsMetrics
from huddle_analytics.settings import AnalyticsSettings

log = structlog.get_logger(__name__)

# The first record of each unit: it decides how coarsely the unit's records show who it was.
_ANCHORS = {Kind.SUPPORT_REQUESTED, Kind.PEER_CERTIFIED, Kind.ADVERSE_EVENT_REPORTED}
# Waiting times are measured from the request for these kinds of record.
_WAITS = {Kind.OFFER_MADE, Kind.PEER_MATCHED, Kind.FIRST_CONTACT, Kind.MATCH_ESCALATED}


def cutoff(now: datetime, grace: timedelta) -> datetime:
    """Records before this instant belong to months that closed at least ``grace`` ago."""
    return month_start(month_of(now - grace))


def unit_of(row: Mapping[str, Any]) -> Unit:
    """The case, peer, adverse event or group session a record describes, and who it describes."""
    kind = str(row["unit_key"]).split(":", 1)[0]
    if kind == "case":
        quasi = {
            "hospital": row["case_hospital"] or row["hospital_id"],
            "discipline": row["case_discipline"],
            "clinical_area": row["case_clinical_area"],
        }
    elif kind == "peer":
        quasi = {
            "hospital": row["peer_hospital"] or row["hospital_id"],
            "discipline": row["peer_discipline"],
            "clinical_area": row["peer_clinical_area"],
        }
    else:
        quasi = {"hospital": row["hospital_id"], "discipline": None, "clinical_area": None}
    return Unit(key=row["unit_key"], kind=kind, quasi=quasi)


def own_values(row: Mapping[str, Any], unit: Unit, k: int) -> dict[str, Any]:
    """What the record says beyond who it describes: coarse values only, never a small count."""
    kind = Kind(row["kind"])
    occurred: datetime = row["occurred_at"]
    is_case = unit.kind == "case"
    requested = row["requested_at"] if is_case else None
    involved = row["involved"]
    values = {
        "origin": row["origin"] if is_case else None,
        "urgency": row["urgency"] if is_case else None,
        "tier": row["tier"],
        "mode": row["mode"],
        "waited": (
            waited_band(requested, occurred).value if kind in _WAITS and requested else None
        ),
        "deadline_met": (
            occurred <= row["respond_by"]
            if kind is Kind.FIRST_CONTACT and is_case and row["respond_by"]
            else None
        ),
        "referral": row["referral"],
        "harm_level": row["harm_level"],
        # How many staff an event involved is itself a count of people: only 0 or k and more.
        "involved": involved if involved is not None and (involved == 0 or involved >= k) else None,
    }
    return {name: value for name, value in values.items() if value is not None}


def anonymised(
    network: str,
    row: Mapping[str, Any],
    unit: Unit,
    decision: Decision | None,
    values: Mapping[str, Any],
) -> AnonymisedProgrammeEvent:
    """The record as published; ``decision`` None publishes it detached from its unit."""
    period = month_of(row["occurred_at"])
    shown = decision.shown if decision is not None else ()
    linked = decision is not None
    return AnonymisedProgrammeEvent(
        network_id=network,
        hospital_id=unit.quasi["hospital"] if "hospital" in shown else None,
        record_id=row["record_id"],
        kind=Kind(row["kind"]),
        period=period,
        period_start=month_start(period),
        case=row["case_surrogate"] if linked and unit.kind == "case" else None,
        # Only a peer's own records carry its surrogate: on a case it would tie the case to the
        # peer's hospital and discipline, undoing the case's coarsening.
        peer=row["peer_surrogate"] if linked and unit.kind == "peer" else None,
        discipline=unit.quasi["discipline"] if "discipline" in shown else None,
        clinical_area=unit.quasi["clinical_area"] if "clinical_area" in shown else None,
        coarsened=decision.coarsened if decision is not None else QUASI_IDENTIFIERS,
        **values,
    )


async def release_network(runtime: Runtime, network: str, *, k: int, before: datetime) -> int:
    """Release one network's waiting records of closed months; how many were published."""
    now = datetime.now(UTC)
    async with runtime.unit_of_work(Tenant(network)) as uow:
        rows = await sql.pending(uow.conn, network, before)
        units = {row["unit_key"]: unit_of(row) for row in rows}
        values = [own_values(row, units[row["unit_key"]], k) for row in rows]
        items = [
            Item(
                unit=row["unit_key"],
                group=(row["kind"], month_of(row["occurred_at"])),
                values=tuple(sorted(v.items())),
            )
            for row, v in zip(rows, values, strict=True)
        ]
        anchors = [
            Kind(row["kind"]) in _ANCHORS or units[row["unit_key"]].kind == "group" for row in rows
        ]
        decided = release(list(units.values()), items, k, anchors)
        chosen = decided.released(items)
        # Offsets on the topic must not give away the order of events within a month.
        random.SystemRandom().shuffle(chosen)
        published: list[tuple[UUID, str, dict[str, Any]]] = []
        for i in chosen:
            row = rows[i]
            unit = units[row["unit_key"]]
            event = anonymised(
                network,
                row,
                unit,
                None if decided.detached[i] else decided.units[unit.key],
                values[i] if decided.keeps_values[i] else {},
            )
            uow.publish(event)
            published.append((event.record_id, event.period, event.model_dump(mode="json")))
        chosen_set = set(chosen)
        held_back = [row["record_id"] for i, row in enumerate(rows) if i not in chosen_set]
        await sql.mark_released(uow.conn, network, published, held_back, now)
    metrics: AnalyticsMetrics = runtime.state["metrics"]
    metrics.records_released.inc(len(published))
    return len(published)


async def release_if_due(runtime: Runtime, network: str, now: datetime) -> int:
    """Release a network when a record of a closed month waits that no release has considered."""
    settings: AnalyticsSettings = runtime.state["settings"]
    before = cutoff(now, timedelta(hours=settings.release_grace_hours))
    async with runtime.unit_of_work(Tenant(network)) as uow:
        due = await sql.due(uow.conn, before)
    if not due:
        return 0
    return await release_network(runtime, network, k=settings.suppression_threshold, before=before)


async def release_due(runtime: Runtime, settings: AnalyticsSettings, now: datetime) -> int:
    assert runtime.pool is not None
    before = cutoff(now, timedelta(hours=settings.release_grace_hours))
    async with runtime.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "releases")
        networks = await sql.networks_due(conn, before)
    return sum([await release_if_due(runtime, network, now) for network in networks])


async def release_closed_months(runtime: Runtime) -> None:
    settings: AnalyticsSettings = runtime.state["settings"]
    while not runtime.stopping.is_set():
        try:
            await release_due(runtime, settings, datetime.now(UTC))
        except Exception as exc:  # a bad round must not stop later ones
            log.warning("release round failed", error=failure_reason(exc))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), settings.release_interval_seconds)
