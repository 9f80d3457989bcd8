"""Peer care: SessionCompleted counts each session a peer led and may prompt a debrief (inside the
inbox transaction, so a redelivered event changes nothing); coordinators hold supervision and
debrief meetings, and a peer's debrief resets their count and clears their open prompts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import Event, SessionCompleted
from huddle_runtime.auth import Principal
from huddle_runtime.consumer import Handler, PermanentFailure
from huddle_runtime.service import Runtime
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_training.adapters import peer_care, repository
from huddle_training.application.roster import UnknownPeer
from huddle_training.domain.peer_care import (
    DebriefPrompt,
    Meeting,
    MeetingKind,
    a_debrief_resets_the_count_and_clears_open_prompts,
    attendance_is_recorded_once_the_meeting_has_begun,
)


class UnknownMeeting(LookupError):
    def __init__(self, meeting_id: UUID) -> None:
        super().__init__(f"no meeting {meeting_id} for you")


@dataclass(frozen=True)
class PeerCareHandlers:
    debrief_after_sessions: int

    def subscriptions(self) -> dict[str, Handler]:
        return {SessionCompleted.event_type: self.session_completed}

    async def session_completed(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        """Count the session for the peer who led it; prompt a debrief when it is due."""
        if not isinstance(event, SessionCompleted):
            raise PermanentFailure(f"expected SessionCompleted, got {type(event).__name__}")
        on_roster = await repository.get(uow.conn, event.peer)
        # Peer care belongs to the peer's own hospital, wherever the session took place.
        hospital = on_roster.hospital_id if on_roster is not None else event.hospital_id
        care = await peer_care.care_for_update(
            uow.conn, network_id=event.network_id, peer=event.peer, hospital_id=hospital
        )
        after, reasons = replace(care, hospital_id=hospital).session_completed(
            tier=event.tier,
            referral_made=event.referral_made,
            completed_at=event.completed_at,
            debrief_after=self.debrief_after_sessions,
        )
        await peer_care.save_care(uow.conn, after)
        if reasons:
            await peer_care.add_prompt(
                uow.conn,
                DebriefPrompt(
                    prompt_id=uuid.uuid4(),
                    network_id=event.network_id,
                    peer=event.peer,
                    hospital_id=hospital,
                    reasons=reasons,
                    sessions_since_debrief=after.sessions_since_debrief,
                    # The day only: the exact end of a session that led to a referral says too much.
                    prompted_at=event.completed_at.astimezone(UTC).replace(
                        hour=0, minute=0, second=0, microsecond=0
                    ),
                ),
            )


async def schedule_meeting(
    *,
    runtime: Runtime,
    principal: Principal,
    hospital_id: str,
    kind: MeetingKind,
    starts_at: datetime,
) -> Meeting:
    meeting = Meeting(
        meeting_id=uuid.uuid4(),
        network_id=principal.network_id,
        hospital_id=hospital_id,
        kind=kind,
        starts_at=starts_at,
        created_at=datetime.now(UTC),
    )
    async with runtime.unit_of_work(principal.tenant) as uow:
        await peer_care.add_meeting(uow.conn, meeting)
    return meeting


async def list_meetings(
    *, runtime: Runtime, principal: Principal, hospital: str | None, limit: int
) -> list[tuple[Meeting, int]]:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await peer_care.list_meetings(uow.conn, hospital_id=hospital, limit=limit)


async def record_meeting_attendance(
    *,
    runtime: Runtime,
    principal: Principal,
    hospital: str | None,
    meeting_id: UUID,
    peers: list[str],
) -> tuple[Meeting, list[str], int]:
    """Record who attended; a debrief resets each new attendee's count and clears their open
    prompts. Returns the meeting, the peers newly recorded and how many prompts were cleared."""
    now = datetime.now(UTC)
    present = sorted(set(peers))
    async with runtime.unit_of_work(principal.tenant) as uow:
        meeting = await peer_care.get_meeting(uow.conn, meeting_id)
        if meeting is None or (hospital is not None and meeting.hospital_id != hospital):
            raise UnknownMeeting(meeting_id)
        attendance_is_recorded_once_the_meeting_has_begun(meeting, now)
        on_roster = {}
        for pseudonym in present:
            peer = await repository.get(uow.conn, pseudonym)
            if peer is None or (hospital is not None and peer.hospital_id != hospital):
                raise UnknownPeer(pseudonym)
            on_roster[pseudonym] = peer
        recorded = await peer_care.record_meeting_attendance(uow.conn, meeting, present, now)
        cleared = 0
        if a_debrief_resets_the_count_and_clears_open_prompts(meeting):
            for pseudonym in recorded:
                care = await peer_care.care_for_update(
                    uow.conn,
                    network_id=meeting.network_id,
                    peer=pseudonym,
                    hospital_id=on_roster[pseudonym].hospital_id,
                )
                await peer_care.save_care(uow.conn, care.debriefed(meeting.starts_at))
                cleared += await peer_care.clear_open_prompts(uow.conn, pseudonym, now)
    return meeting, recorded, cleared


async def prompts(
    *,
    runtime: Runtime,
    principal: Principal,
    peer: str | None = None,
    hospital: str | None = None,
    open_only: bool = True,
    limit: int = 200,
) -> list[DebriefPrompt]:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await peer_care.prompts(
            uow.conn, peer=peer, hospital_id=hospital, open_only=open_only, limit=limit
        )
