"""Matching's PostgreSQL tables (row-level security scopes every query to the tenant)."""

from __future__ import annotations

import asyncpg
from huddle_contracts.events import SupportRequested


async def record_support_request(conn: asyncpg.Connection, event: SupportRequested) -> None:
    # No ON CONFLICT: the inbox guarantees one delivery; a second insert would be a bug to see.
    await conn.execute(
        """INSERT INTO support_request (case_id, network_id, hospital_id, unit_id, requester,
               discipline, origin, urgency, preferred_mode, preferences, adverse_event_id,
               requested_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)""",
        event.case_id,
        event.network_id,
        event.hospital_id,
        event.unit_id,
        event.requester,
        event.discipline.value,
        event.origin.value,
        event.urgency.value,
        event.preferred_mode.value if event.preferred_mode else None,
        event.preferences.model_dump_json(exclude_none=True),
        event.adverse_event_id,
        event.requested_at,
    )
