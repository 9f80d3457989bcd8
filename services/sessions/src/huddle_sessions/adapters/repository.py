"""Sessions' PostgreSQL tables (row-level security scopes every query to the tenant)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from huddle_contracts.events import PeerMatched

from huddle_sessions.domain.contact_record import ContactRecord


@dataclass(frozen=True)
class SupportCase:
    case_id: UUID
    network_id: str
    hospital_id: str
    peer: str
    requester: str
    mode: str
    status: str
    opened_at: datetime
    first_contact_by: datetime | None
    first_contact_at: datetime | None
    closed_at: datetime | None


async def open_case(conn: asyncpg.Connection, matched: PeerMatched) -> None:
    # No ON CONFLICT: the inbox guarantees one delivery per event.
    await conn.execute(
        """INSERT INTO support_case (case_id, network_id, hospital_id, peer, requester, mode,
                                     opened_at, first_contact_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        matched.case_id,
        matched.network_id,
        matched.hospital_id,
        matched.peer,
        matched.requester,
        matched.mode.value,
        matched.matched_at,
        matched.respond_by,
    )


async def get_case(
    conn: asyncpg.Connection, case_id: UUID, *, lock: bool = False
) -> SupportCase | None:
    row = await conn.fetchrow(
        "SELECT * FROM support_case WHERE case_id = $1" + (" FOR UPDATE" if lock else ""), case_id
    )
    return SupportCase(**dict(row)) if row else None


async def cases(
    conn: asyncpg.Connection, *, peer: str | None, hospital_id: str | None, status: str | None
) -> list[SupportCase]:
    rows = await conn.fetch(
        """SELECT * FROM support_case
            WHERE ($1::text IS NULL OR peer = $1) AND ($2::text IS NULL OR hospital_id = $2)
              AND ($3::text IS NULL OR status = $3)
            ORDER BY opened_at""",
        peer,
        hospital_id,
        status,
    )
    return [SupportCase(**dict(r)) for r in rows]


async def add_contact(
    conn: asyncpg.Connection, case: SupportCase, session_id: UUID, record: ContactRecord
) -> None:
    await conn.execute(
        """INSERT INTO contact (session_id, network_id, case_id, peer, started_at,
                                duration_minutes, mode, tier, participants, follow_up_planned)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        session_id,
        case.network_id,
        case.case_id,
        case.peer,
        record.started_at,
        record.duration_minutes,
        record.mode.value,
        int(record.tier),
        record.participants,
        record.follow_up_planned,
    )


async def set_first_contact(conn: asyncpg.Connection, case_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE support_case SET first_contact_at = $2"
        " WHERE case_id = $1 AND first_contact_at IS NULL",
        case_id,
        at,
    )


async def add_follow_ups(
    conn: asyncpg.Connection, case: SupportCase, due_dates: list[datetime]
) -> None:
    await conn.executemany(
        "INSERT INTO follow_up (network_id, case_id, due_at) VALUES ($1, $2, $3)",
        [(case.network_id, case.case_id, due) for due in due_dates],
    )


async def complete_earliest_follow_up(
    conn: asyncpg.Connection, case_id: UUID, at: datetime
) -> bool:
    status = await conn.execute(
        """UPDATE follow_up SET done_at = $2
            WHERE id = (SELECT id FROM follow_up
                         WHERE case_id = $1 AND done_at IS NULL AND NOT cancelled
                           AND due_at <= $2::timestamptz + interval '12 hours'
                         ORDER BY due_at LIMIT 1)""",
        case_id,
        at,
    )
    return bool(status == "UPDATE 1")


async def open_follow_ups(conn: asyncpg.Connection, case_id: UUID) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM follow_up WHERE case_id = $1 AND done_at IS NULL AND NOT cancelled",
        case_id,
    )
    return count


async def add_referral(
    conn: asyncpg.Connection,
    case: SupportCase,
    *,
    referral_id: UUID,
    resource: str,
    urgency: str,
    made_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO referral (referral_id, network_id, case_id, resource, urgency, referred_by,
                                 made_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        referral_id,
        case.network_id,
        case.case_id,
        resource,
        urgency,
        case.peer,
        made_at,
    )


async def close_case(conn: asyncpg.Connection, case_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE support_case SET status = 'closed', closed_at = $2 WHERE case_id = $1", case_id, at
    )
    await conn.execute(
        "UPDATE follow_up SET cancelled = true WHERE case_id = $1 AND done_at IS NULL", case_id
    )


async def timeline(conn: asyncpg.Connection, case_id: UUID) -> dict[str, list[dict[str, object]]]:
    contacts = await conn.fetch(
        """SELECT session_id, started_at, duration_minutes, mode, tier, participants,
                  follow_up_planned FROM contact WHERE case_id = $1 ORDER BY started_at""",
        case_id,
    )
    follow_ups = await conn.fetch(
        "SELECT due_at, done_at, cancelled FROM follow_up WHERE case_id = $1 ORDER BY due_at",
        case_id,
    )
    referrals = await conn.fetch(
        "SELECT referral_id, resource, urgency, made_at FROM referral WHERE case_id = $1"
        " ORDER BY made_at",
        case_id,
    )
    return {
        "contacts": [dict(r) for r in contacts],
        "follow_ups": [dict(r) for r in follow_ups],
        "referrals": [dict(r) for r in referrals],
    }


async def follow_ups(
    conn: asyncpg.Connection, *, peer: str | None, hospital_id: str | None, due_before: datetime
) -> list[dict[str, object]]:
    rows = await conn.fetch(
        """SELECT f.case_id, f.due_at, c.peer, c.hospital_id FROM follow_up f
             JOIN support_case c USING (case_id)
            WHERE f.done_at IS NULL AND NOT f.cancelled AND f.due_at <= $3
              AND ($1::text IS NULL OR c.peer = $1) AND ($2::text IS NULL OR c.hospital_id = $2)
            ORDER BY f.due_at""",
        peer,
        hospital_id,
        due_before,
    )
    return [dict(r) for r in rows]


async def catalogue(conn: asyncpg.Connection, hospital_id: str) -> list[dict[str, str]]:
    rows = await conn.fetch(
        "SELECT resource, label, how_to_reach FROM referral_resource WHERE hospital_id = $1"
        " ORDER BY resource",
        hospital_id,
    )
    return [dict(r) for r in rows]


async def put_catalogue(
    conn: asyncpg.Connection, network_id: str, hospital_id: str, entries: list[dict[str, str]]
) -> None:
    await conn.execute("DELETE FROM referral_resource WHERE hospital_id = $1", hospital_id)
    await conn.executemany(
        """INSERT INTO referral_resource (network_id, hospital_id, resource, label, how_to_reach)
           VALUES ($1, $2, $3, $4, $5)""",
        [(network_id, hospital_id, e["resource"], e["label"], e["how_to_reach"]) for e in entries],
    )
