"""Use cases of a support case, each one unit of work (state and outbox commit together)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import (
    CaseClosed,
    Event,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportWithdrawn,
)
from huddle_contracts.vocabulary import ReferralResource, Urgency
from huddle_runtime.consumer import PermanentFailure
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_sessions.adapters import repository as repo
from huddle_sessions.adapters.repository import SupportCase
from huddle_sessions.domain.contact_record import (
    ContactRecord,
    RecordRefused,
    peers_record_when_how_long_and_how_never_what,
)
from huddle_sessions.domain.follow_up import FollowUpSchedule


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Sessions:
    schedule: FollowUpSchedule = field(default_factory=FollowUpSchedule)
    clock: Callable[[], datetime] = utc_now


class NotYourCase(LookupError):
    pass


async def on_peer_matched(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
    """PeerMatched opens the case for the peer (who sees contact details, nothing clinical)."""
    if not isinstance(event, PeerMatched):
        raise PermanentFailure(f"expected PeerMatched, got {type(event).__name__}")
    await repo.open_case(uow.conn, event)


async def _own_open_case(uow: UnitOfWork, case_id: UUID, peer: str | None) -> SupportCase:
    case = await repo.get_case(uow.conn, case_id, lock=True)
    if case is None or (peer is not None and case.peer != peer):
        raise NotYourCase(f"no case {case_id} of yours")
    if case.status != "open":
        raise RecordRefused(f"the case is {case.status}")
    return case


async def record_contact(
    uow: UnitOfWork, sessions: Sessions, *, case_id: UUID, peer: str, record: ContactRecord
) -> SessionCompleted:
    now = sessions.clock()
    case = await _own_open_case(uow, case_id, peer)
    peers_record_when_how_long_and_how_never_what(record, opened_at=case.opened_at, now=now)
    session_id = uuid.uuid4()
    await repo.add_contact(uow.conn, case, session_id, record)
    if case.first_contact_at is None:
        await repo.set_first_contact(uow.conn, case_id, record.started_at)
        if record.follow_up_planned:
            await repo.add_follow_ups(
                uow.conn, case, sessions.schedule.due_dates(record.started_at)
            )
    else:
        await repo.complete_earliest_follow_up(uow.conn, case_id, record.completed_at)
    completed = SessionCompleted(
        network_id=case.network_id,
        hospital_id=case.hospital_id,
        case_id=case_id,
        session_id=session_id,
        peer=case.peer,
        mode=record.mode,
        tier=record.tier,
        started_at=record.started_at,
        duration_minutes=record.duration_minutes,
        participants=record.participants,
        follow_up_planned=record.follow_up_planned,
        referral_made=False,
        completed_at=record.completed_at,
    )
    uow.publish(completed)
    return completed


async def refer(
    uow: UnitOfWork,
    sessions: Sessions,
    *,
    case_id: UUID,
    peer: str,
    resource: ReferralResource,
    urgency: Urgency,
) -> ReferralMade:
    """Tier 3, from the hospital's own catalogue."""
    case = await _own_open_case(uow, case_id, peer)
    offered = {e["resource"] for e in await repo.catalogue(uow.conn, case.hospital_id)}
    if resource.value not in offered:
        raise RecordRefused(
            f"{resource.value!r} is not in this hospital's referral catalogue"
            + (f" (it has: {', '.join(sorted(offered))})" if offered else " (it is empty)")
        )
    now = sessions.clock()
    referral_id = uuid.uuid4()
    await repo.add_referral(
        uow.conn,
        case,
        referral_id=referral_id,
        resource=resource.value,
        urgency=urgency.value,
        made_at=now,
    )
    made = ReferralMade(
        network_id=case.network_id,
        hospital_id=case.hospital_id,
        case_id=case_id,
        referral_id=referral_id,
        urgency=urgency,
        resource=resource,
        referred_by=case.peer,
        made_at=now,
    )
    uow.publish(made)
    return made


async def close(
    uow: UnitOfWork, sessions: Sessions, *, case_id: UUID, peer: str | None
) -> CaseClosed:
    case = await _own_open_case(uow, case_id, peer)
    now = sessions.clock()
    await repo.close_case(uow.conn, case_id, now)
    history = await repo.timeline(uow.conn, case_id)
    closed = CaseClosed(
        network_id=case.network_id,
        hospital_id=case.hospital_id,
        case_id=case_id,
        peer=case.peer,
        sessions=len(history["contacts"]),
        referral_made=bool(history["referrals"]),
        opened_at=case.opened_at,
        closed_at=now,
    )
    uow.publish(closed)
    return closed


async def on_support_withdrawn(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
    """A worker may withdraw at any time: an open case closes, its follow-ups are cancelled."""
    if not isinstance(event, SupportWithdrawn):
        raise PermanentFailure(f"expected SupportWithdrawn, got {type(event).__name__}")
    case = await repo.get_case(uow.conn, event.case_id, lock=True)
    if case is None or case.status != "open":
        return  # withdrawn before a peer was matched, or already closed
    await repo.close_case(uow.conn, event.case_id, event.withdrawn_at)
    history = await repo.timeline(uow.conn, event.case_id)
    uow.publish(
        CaseClosed(
            network_id=case.network_id,
            hospital_id=case.hospital_id,
            case_id=case.case_id,
            peer=case.peer,
            sessions=len(history["contacts"]),
            referral_made=bool(history["referrals"]),
            opened_at=case.opened_at,
            closed_at=max(event.withdrawn_at, case.opened_at),
        )
    )
