"""Support requests in PostgreSQL (row-level security scopes every query to the tenant)."""

from __future__ import annotations

import json
from uuid import UUID

import asyncpg
from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Mode, Origin, Urgency

from huddle_intake.domain.support_request import SupportRequest


async def add(conn: asyncpg.Connection, request: SupportRequest) -> None:
    await conn.execute(
        """INSERT INTO support_request (case_id, network_id, hospital_id, unit_id, requester,
               submitted_by, discipline, origin, urgency, preferred_mode, preferences, status,
               requested_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)""",
        request.case_id,
        request.network_id,
        request.hospital_id,
        request.unit_id,
        request.requester,
        request.submitted_by,
        request.discipline.value,
        request.origin.value,
        request.urgency.value,
        request.preferred_mode.value if request.preferred_mode else None,
        request.preferences.model_dump_json(exclude_none=True),
        request.status,
        request.requested_at,
    )


async def add_contact(conn: asyncpg.Connection, *, request: SupportRequest, sealed: bytes) -> None:
    await conn.execute(
        "INSERT INTO contact_detail (case_id, network_id, sealed) VALUES ($1, $2, $3)",
        request.case_id,
        request.network_id,
        sealed,
    )


async def get(conn: asyncpg.Connection, case_id: UUID) -> SupportRequest | None:
    row = await conn.fetchrow("SELECT * FROM support_request WHERE case_id = $1", case_id)
    if row is None:
        return None
    return SupportRequest(
        case_id=row["case_id"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        unit_id=row["unit_id"],
        requester=row["requester"],
        submitted_by=row["submitted_by"],
        discipline=Discipline(row["discipline"]),
        origin=Origin(row["origin"]),
        urgency=Urgency(row["urgency"]),
        preferred_mode=Mode(row["preferred_mode"]) if row["preferred_mode"] else None,
        preferences=MatchPreferences(**json.loads(row["preferences"])),
        status=row["status"],
        requested_at=row["requested_at"],
    )
