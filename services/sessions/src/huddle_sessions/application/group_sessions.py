"""Group sessions: a debrief called by an event that touched many staff or several units, and
recurring rounds a coordinator schedules; attendance counted, SessionCompleted emitted."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import AdverseEventReported, Event, SessionCompleted
from huddle_contracts.vocabulary import Mode, Tier
from huddle_runtime.consumer import PermanentFailure
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_sessions.domain.group_session import (
    GUIDES,
    GroupFormat,
    GroupRefused,
    Recurrence,
    attendance_counts_only,
)


async def on_adverse_event_reported(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
    """More than 5 staff or several units: a team debrief waits to be scheduled."""
    if not isinstance(event, AdverseEventReported):
        raise PermanentFailure(f"expected AdverseEventReported, got {type(event).__name__}")
    if not event.group_debrief_requested:
        return
    await uow.conn.execute(
        """INSERT INTO group_session (session_id, network_id, hospital_id, unit_id, format,
                                      adverse_event_id, duration_minutes, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'to_schedule')
           ON CONFLICT DO NOTHING""",
        uuid.uuid4(),
        event.network_id,
        event.hospital_id,
        event.unit_ids[0],
        GroupFormat.TEAM_DEBRIEF.value,
        event.adverse_event_id,
        int(GUIDES[GroupFormat.TEAM_DEBRIEF].usual_length.total_seconds() // 60),
    )


async def schedule(
    uow: UnitOfWork,
    *,
    network_id: str,
    hospital_id: str,
    group_format: GroupFormat,
    starts_at: datetime,
    duration: timedelta | None,
    recurrence: Recurrence | None,
    facilitator: str | None,
    unit_id: str | None,
) -> UUID:
    guide = GUIDES[group_format]
    session_id = uuid.uuid4()
    await uow.conn.execute(
        """INSERT INTO group_session (session_id, network_id, hospital_id, unit_id, format,
                                      facilitator, starts_at, duration_minutes, recurrence)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        session_id,
        network_id,
        hospital_id,
        unit_id,
        group_format.value,
        facilitator,
        starts_at,
        int((duration or guide.usual_length).total_seconds() // 60),
        (recurrence or guide.usual_recurrence).value,
    )
    return session_id


async def set_time(
    uow: UnitOfWork, session_id: UUID, *, starts_at: datetime, facilitator: str | None
) -> bool:
    status = await uow.conn.execute(
        """UPDATE group_session SET starts_at = $2, facilitator = COALESCE($3, facilitator),
                  status = 'scheduled'
            WHERE session_id = $1 AND status IN ('to_schedule', 'scheduled')""",
        session_id,
        starts_at,
        facilitator,
    )
    return bool(status == "UPDATE 1")


async def get(uow: UnitOfWork, session_id: UUID) -> dict[str, Any] | None:
    row = await uow.conn.fetchrow("SELECT * FROM group_session WHERE session_id = $1", session_id)
    return dict(row) if row else None


async def listing(
    uow: UnitOfWork, *, hospital_id: str | None, status: str | None
) -> list[dict[str, Any]]:
    rows = await uow.conn.fetch(
        """SELECT session_id, hospital_id, unit_id, format, starts_at, duration_minutes,
                  recurrence, status, participants, adverse_event_id
             FROM group_session
            WHERE ($1::text IS NULL OR hospital_id = $1) AND ($2::text IS NULL OR status = $2)
            ORDER BY starts_at NULLS FIRST, created_at""",
        hospital_id,
        status,
    )
    return [dict(r) for r in rows]


async def record_attendance(
    uow: UnitOfWork, session_id: UUID, *, participants: int, held_at: datetime
) -> SessionCompleted:
    row = await uow.conn.fetchrow(
        "SELECT * FROM group_session WHERE session_id = $1 FOR UPDATE", session_id
    )
    if row is None:
        raise LookupError(f"no group session {session_id}")
    if row["status"] != "scheduled":
        raise GroupRefused(f"the session is {row['status']}")
    if row["facilitator"] is None:
        raise GroupRefused("name the facilitating peer before recording attendance")
    count = attendance_counts_only(participants)
    await uow.conn.execute(
        "UPDATE group_session SET status = 'held', participants = $2, held_at = $3"
        " WHERE session_id = $1",
        session_id,
        count,
        held_at,
    )
    completed = SessionCompleted(
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        case_id=session_id,  # a group session is its own case on the bus
        session_id=uuid.uuid4(),
        peer=row["facilitator"],
        mode=Mode.GROUP,
        tier=Tier.PEER,
        started_at=row["starts_at"],
        duration_minutes=row["duration_minutes"],
        participants=count,
        follow_up_planned=False,
        referral_made=False,
        completed_at=max(held_at, row["starts_at"] + timedelta(minutes=row["duration_minutes"])),
    )
    uow.publish(completed)
    return completed
