"""Every event on the bus folds into analytics' projections and stages one programme record,
in the same transaction as its inbox row (so each is counted exactly once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from uuid import UUID

from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import (
    AdverseEventReported,
    CaseClosed,
    CertificationLapsed,
    Event,
    MatchEscalated,
    OfferMade,
    PeerCertified,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportRequested,
    SupportWithdrawn,
)
from huddle_contracts.vocabulary import ProgrammeRecordKind as Kind
from huddle_runtime.consumer import Handler, PermanentFailure
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_analytics.adapters import projections as sql
from huddle_analytics.adapters.projections import case_unit, event_unit, group_unit, peer_unit

Projector = Callable[[UnitOfWork, Event], Awaitable[None]]


async def _adverse_event(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, AdverseEventReported)
    await sql.adverse_event_reported(uow.conn, e)
    await sql.add_record(
        uow.conn,
        network=e.network_id,
        kind=Kind.ADVERSE_EVENT_REPORTED,
        occurred_at=e.reported_at,
        hospital=e.hospital_id,
        unit_key=event_unit(e.adverse_event_id),
        harm_level=e.harm_level.value,
        involved=len(e.involved),
    )


async def _requested(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, SupportRequested)
    await sql.support_requested(uow.conn, e)
    await _case_record(uow, e, Kind.SUPPORT_REQUESTED, e.case_id, e.requested_at)


async def _offered(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, OfferMade)
    await sql.offer_made(uow.conn, e)
    await _case_record(uow, e, Kind.OFFER_MADE, e.case_id, e.offered_at, peer=e.peer)


async def _matched(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, PeerMatched)
    await sql.peer_matched(uow.conn, e)
    await _case_record(
        uow, e, Kind.PEER_MATCHED, e.case_id, e.matched_at, peer=e.peer, mode=e.mode.value
    )


async def _escalated(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, MatchEscalated)
    await sql.match_escalated(uow.conn, e)
    await _case_record(uow, e, Kind.MATCH_ESCALATED, e.case_id, e.escalated_at)


async def _withdrawn(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, SupportWithdrawn)
    await sql.support_withdrawn(uow.conn, e)
    await _case_record(uow, e, Kind.SUPPORT_WITHDRAWN, e.case_id, e.withdrawn_at)


async def _session(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, SessionCompleted)
    first = await sql.session_completed(uow.conn, e)
    grouped = sql.is_group(e)
    unit = group_unit(e.session_id) if grouped else case_unit(e.case_id)
    if first:
        await sql.add_record(
            uow.conn,
            network=e.network_id,
            kind=Kind.FIRST_CONTACT,
            occurred_at=e.started_at,
            hospital=e.hospital_id,
            unit_key=unit,
            case_id=e.case_id,
            peer=e.peer,
            mode=e.mode.value,
        )
    await sql.add_record(
        uow.conn,
        network=e.network_id,
        kind=Kind.SESSION_COMPLETED,
        occurred_at=e.completed_at,
        hospital=e.hospital_id,
        unit_key=unit,
        case_id=None if grouped else e.case_id,
        peer=e.peer,
        mode=e.mode.value,
        tier=int(e.tier),
    )


async def _referred(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, ReferralMade)
    await sql.referral_made(uow.conn, e)
    await _case_record(
        uow, e, Kind.REFERRAL_MADE, e.case_id, e.made_at, tier=3, referral=e.resource.value
    )


async def _closed(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, CaseClosed)
    await sql.case_closed(uow.conn, e)
    await _case_record(uow, e, Kind.CASE_CLOSED, e.case_id, e.closed_at, peer=e.peer)


async def _certified(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, PeerCertified)
    await sql.peer_certified(uow.conn, e)
    await _peer_record(uow, e, Kind.PEER_CERTIFIED, e.peer)


async def _lapsed(uow: UnitOfWork, e: Event) -> None:
    assert isinstance(e, CertificationLapsed)
    await sql.certification_lapsed(uow.conn, e)
    await _peer_record(uow, e, Kind.CERTIFICATION_LAPSED, e.peer)


async def _case_record(
    uow: UnitOfWork,
    e: Event,
    kind: Kind,
    case_id: UUID,
    occurred_at: datetime,
    *,
    peer: str | None = None,
    mode: str | None = None,
    tier: int | None = None,
    referral: str | None = None,
) -> None:
    await sql.add_record(
        uow.conn,
        network=e.network_id,
        kind=kind,
        occurred_at=occurred_at,
        hospital=e.hospital_id,
        unit_key=case_unit(case_id),
        case_id=case_id,
        peer=peer,
        mode=mode,
        tier=tier,
        referral=referral,
    )


async def _peer_record(uow: UnitOfWork, e: Event, kind: Kind, peer: str) -> None:
    await sql.add_record(
        uow.conn,
        network=e.network_id,
        kind=kind,
        occurred_at=e.event_time,
        hospital=e.hospital_id,
        unit_key=peer_unit(peer),
        peer=peer,
    )


PROJECTORS: Mapping[type[Event], Projector] = {
    AdverseEventReported: _adverse_event,
    SupportRequested: _requested,
    SupportWithdrawn: _withdrawn,
    OfferMade: _offered,
    PeerMatched: _matched,
    MatchEscalated: _escalated,
    SessionCompleted: _session,
    CaseClosed: _closed,
    ReferralMade: _referred,
    PeerCertified: _certified,
    CertificationLapsed: _lapsed,
}


def _handler(model: type[Event], project: Projector) -> Handler:
    async def handle(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        if not isinstance(event, model):
            raise PermanentFailure(f"expected {model.__name__}, got {type(event).__name__}")
        await project(uow, event)

    return handle


# Analytics consumes everything it is a consumer of in the topic registry.
HANDLERS: Mapping[str, Handler] = {
    model.event_type: _handler(model, project) for model, project in PROJECTORS.items()
}
