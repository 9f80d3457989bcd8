"""Support requests in PostgreSQL (row-level security scopes every query to the tenant)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Mode, Origin, Urgency

from huddle_intake.adapters import directory_repository as directory
from huddle_intake.domain.support_request import SupportRequest
from huddle_intake.domain.workforce_directory import StaffMember


async def add_all(conn: asyncpg.Connection, requests: Sequence[SupportRequest]) -> None:
    await conn.executemany(
        """INSERT INTO support_request (case_id, network_id, hospital_id, unit_id, requester,
               submitted_by, discipline, origin, urgency, preferred_mode, preferences, status,
               requested_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)""",
        [
            (
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
            for request in requests
        ],
    )


@dataclass(frozen=True)
class FirstStep:
    """A step of the request's journey written with it (``journey_repository.add_step``'s row)."""

    kind: str
    at: datetime
    detail: dict[str, str]


async def add_with_journey(
    conn: asyncpg.Connection,
    request: SupportRequest,
    *,
    sealed_contact: bytes | None,
    steps: Sequence[FirstStep],
    reporting_depth: int,
) -> list[StaffMember]:
    """The request, its sealed contact and its first journey steps in one statement, which also
    reads the requester's reporting line (their event needs it): one round trip, not four."""
    line, members = directory.up_the_line("$2", "$5", "$1")
    rows = await conn.fetch(
        f"""WITH RECURSIVE {line},
            request AS (
                INSERT INTO support_request (case_id, network_id, hospital_id, unit_id, requester,
                       submitted_by, discipline, origin, urgency, preferred_mode, preferences,
                       status, requested_at)
                VALUES ($3, $2, $4, $6, $5, $7, $8, $9, $10, $11, $12::jsonb, $13, $14)
                RETURNING case_id, network_id),
            contact AS (
                INSERT INTO contact_detail (case_id, network_id, sealed)
                SELECT case_id, network_id, $15 FROM request WHERE $15::bytea IS NOT NULL),
            journey AS (
                INSERT INTO request_event (network_id, case_id, kind, at, detail)
                SELECT request.network_id, request.case_id, step.kind, step.at, step.detail
                  FROM request,
                       unnest($16::text[], $17::timestamptz[], $18::jsonb[])
                       WITH ORDINALITY AS step (kind, at, detail, position)
                 ORDER BY step.position)
            {members}""",
        reporting_depth,
        request.network_id,
        request.case_id,
        request.hospital_id,
        request.requester,
        request.unit_id,
        request.submitted_by,
        request.discipline.value,
        request.origin.value,
        request.urgency.value,
        request.preferred_mode.value if request.preferred_mode else None,
        request.preferences.model_dump_json(exclude_none=True),
        request.status,
        request.requested_at,
        sealed_contact,
        [s.kind for s in steps],
        [s.at for s in steps],
        [json.dumps(s.detail) for s in steps],
    )
    return [directory.member_of(row) for row in rows]


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
