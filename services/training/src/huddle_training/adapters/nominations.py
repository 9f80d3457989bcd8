"""Nominations in PostgreSQL (row-level security scopes every query to the tenant)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from huddle_contracts.vocabulary import Discipline, Gender

from huddle_training.domain.nomination import Nomination, NominationStatus


async def add(conn: asyncpg.Connection, nomination: Nomination) -> bool:
    """Store a new nomination; False (nothing written) when the nominee has an open one."""
    added = await conn.fetchval(
        """INSERT INTO nomination (id, network_id, hospital_id, unit_id, discipline,
               clinical_area, nominee, nominated_by, nominated_at, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (network_id, nominee) WHERE status IN ('pending', 'consented')
           DO NOTHING
           RETURNING true""",
        nomination.nomination_id,
        nomination.network_id,
        nomination.hospital_id,
        nomination.unit_id,
        nomination.discipline.value,
        nomination.clinical_area,
        nomination.nominee,
        nomination.nominated_by,
        nomination.nominated_at,
        nomination.status.value,
    )
    return bool(added)


async def get(
    conn: asyncpg.Connection, nomination_id: UUID, *, for_update: bool = False
) -> Nomination | None:
    row = await conn.fetchrow(
        "SELECT * FROM nomination WHERE id = $1" + (" FOR UPDATE" if for_update else ""),
        nomination_id,
    )
    return _nomination(row) if row is not None else None


async def save(conn: asyncpg.Connection, nomination: Nomination) -> None:
    """Store the nomination's answer or decision."""
    await conn.execute(
        """UPDATE nomination
              SET status = $2, languages = $3, gender = $4, answered_at = $5,
                  decided_by = $6, decided_at = $7
            WHERE id = $1""",
        nomination.nomination_id,
        nomination.status.value,
        list(nomination.languages),
        nomination.gender.value if nomination.gender else None,
        nomination.answered_at,
        nomination.decided_by,
        nomination.decided_at,
    )


async def list_nominations(
    conn: asyncpg.Connection,
    *,
    hospital_id: str | None = None,
    nominee: str | None = None,
    status: NominationStatus | None = None,
    limit: int = 100,
) -> list[Nomination]:
    """Newest first: a hospital's (or the network's), or those naming ``nominee``."""
    rows = await conn.fetch(
        """SELECT * FROM nomination
            WHERE ($1::text IS NULL OR hospital_id = $1)
              AND ($2::text IS NULL OR nominee = $2)
              AND ($3::text IS NULL OR status = $3)
            ORDER BY nominated_at DESC, id
            LIMIT $4""",
        hospital_id,
        nominee,
        status.value if status else None,
        limit,
    )
    return [_nomination(r) for r in rows]


def _nomination(row: asyncpg.Record) -> Nomination:
    return Nomination(
        nomination_id=row["id"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        unit_id=row["unit_id"],
        discipline=Discipline(row["discipline"]),
        nominee=row["nominee"],
        nominated_by=row["nominated_by"],
        nominated_at=row["nominated_at"],
        status=NominationStatus(row["status"]),
        clinical_area=row["clinical_area"],
        languages=tuple(row["languages"]),
        gender=Gender(row["gender"]) if row["gender"] else None,
        answered_at=row["answered_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
    )
