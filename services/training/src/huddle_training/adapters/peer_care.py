"""Peer care in PostgreSQL: session counts, debrief prompts and meetings (row-level security
scopes every query to the tenant)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from huddle_training.domain.peer_care import (
    DebriefPrompt,
    Meeting,
    MeetingKind,
    PeerCare,
    PromptReason,
)


async def care_for_update(
    conn: asyncpg.Connection, *, network_id: str, peer: str, hospital_id: str
) -> PeerCare:
    """The peer's care record, created on first use, locked until the transaction ends (so that
    sessions of one peer handled at once are counted one after the other)."""
    await conn.execute(
        """INSERT INTO peer_care (network_id, peer, hospital_id) VALUES ($1, $2, $3)
           ON CONFLICT (network_id, peer) DO NOTHING""",
        network_id,
        peer,
        hospital_id,
    )
    row = await conn.fetchrow("SELECT * FROM peer_care WHERE peer = $1 FOR UPDATE", peer)
    assert row is not None
    return _care(row)


async def get_care(conn: asyncpg.Connection, peer: str) -> PeerCare | None:
    row = await conn.fetchrow("SELECT * FROM peer_care WHERE peer = $1", peer)
    return _care(row) if row is not None else None


async def save_care(conn: asyncpg.Connection, care: PeerCare) -> None:
    await conn.execute(
        """UPDATE peer_care
              SET hospital_id = $2, sessions_since_debrief = $3, prompted_for_sessions = $4,
                  last_debrief_at = $5
            WHERE peer = $1""",
        care.peer,
        care.hospital_id,
        care.sessions_since_debrief,
        care.prompted_for_sessions,
        care.last_debrief_at,
    )


def _care(row: asyncpg.Record) -> PeerCare:
    return PeerCare(
        network_id=row["network_id"],
        peer=row["peer"],
        hospital_id=row["hospital_id"],
        sessions_since_debrief=row["sessions_since_debrief"],
        prompted_for_sessions=row["prompted_for_sessions"],
        last_debrief_at=row["last_debrief_at"],
    )


async def add_prompt(conn: asyncpg.Connection, prompt: DebriefPrompt) -> None:
    await conn.execute(
        """INSERT INTO debrief_prompt (id, network_id, peer, hospital_id, reasons,
               sessions_since_debrief, prompted_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        prompt.prompt_id,
        prompt.network_id,
        prompt.peer,
        prompt.hospital_id,
        [r.value for r in prompt.reasons],
        prompt.sessions_since_debrief,
        prompt.prompted_at,
    )


async def clear_open_prompts(conn: asyncpg.Connection, peer: str, at: datetime) -> int:
    status: str = await conn.execute(
        "UPDATE debrief_prompt SET cleared_at = $2 WHERE peer = $1 AND cleared_at IS NULL",
        peer,
        at,
    )
    return int(status.split()[-1])


async def prompts(
    conn: asyncpg.Connection,
    *,
    peer: str | None = None,
    hospital_id: str | None = None,
    open_only: bool = True,
    limit: int = 200,
) -> list[DebriefPrompt]:
    """Newest first: one peer's, a hospital's or the network's."""
    rows = await conn.fetch(
        """SELECT * FROM debrief_prompt
            WHERE ($1::text IS NULL OR peer = $1)
              AND ($2::text IS NULL OR hospital_id = $2)
              AND (NOT $3 OR cleared_at IS NULL)
            ORDER BY prompted_at DESC, id
            LIMIT $4""",
        peer,
        hospital_id,
        open_only,
        limit,
    )
    return [
        DebriefPrompt(
            prompt_id=r["id"],
            network_id=r["network_id"],
            peer=r["peer"],
            hospital_id=r["hospital_id"],
            reasons=tuple(PromptReason(x) for x in r["reasons"]),
            sessions_since_debrief=r["sessions_since_debrief"],
            prompted_at=r["prompted_at"],
            cleared_at=r["cleared_at"],
        )
        for r in rows
    ]


async def add_meeting(conn: asyncpg.Connection, meeting: Meeting) -> None:
    await conn.execute(
        """INSERT INTO meeting (id, network_id, hospital_id, kind, starts_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        meeting.meeting_id,
        meeting.network_id,
        meeting.hospital_id,
        meeting.kind.value,
        meeting.starts_at,
        meeting.created_at,
    )


async def get_meeting(conn: asyncpg.Connection, meeting_id: UUID) -> Meeting | None:
    row = await conn.fetchrow("SELECT * FROM meeting WHERE id = $1", meeting_id)
    return _meeting(row) if row is not None else None


async def list_meetings(
    conn: asyncpg.Connection, *, hospital_id: str | None, limit: int
) -> list[tuple[Meeting, int]]:
    """Meetings, newest first, each with how many peers attended."""
    rows = await conn.fetch(
        """SELECT m.*, (SELECT count(*) FROM meeting_attendance a WHERE a.meeting_id = m.id)
                       AS attended
             FROM meeting m
            WHERE ($1::text IS NULL OR m.hospital_id = $1)
            ORDER BY m.starts_at DESC, m.id
            LIMIT $2""",
        hospital_id,
        limit,
    )
    return [(_meeting(r), r["attended"]) for r in rows]


def _meeting(row: asyncpg.Record) -> Meeting:
    return Meeting(
        meeting_id=row["id"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        kind=MeetingKind(row["kind"]),
        starts_at=row["starts_at"],
        created_at=row["created_at"],
    )


async def record_meeting_attendance(
    conn: asyncpg.Connection, meeting: Meeting, peers: list[str], at: datetime
) -> list[str]:
    """Record that ``peers`` attended; returns those not recorded before."""
    rows = await conn.fetch(
        """INSERT INTO meeting_attendance (network_id, meeting_id, peer, recorded_at)
           SELECT $1, $2, peer, $3 FROM unnest($4::text[]) AS peer
           ON CONFLICT (meeting_id, peer) DO NOTHING
           RETURNING peer""",
        meeting.network_id,
        meeting.meeting_id,
        at,
        peers,
    )
    return sorted(r["peer"] for r in rows)
