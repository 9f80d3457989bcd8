"""SQL of the analysts' stream: the records waiting for release, joined to what describes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def networks_due(conn: asyncpg.Connection, cutoff: datetime) -> list[str]:
    """Networks with a record of a closed month that no release has considered yet."""
    rows = await conn.fetch(
        """SELECT DISTINCT network_id FROM programme_record
            WHERE released_at IS NULL AND held_back_at IS NULL AND occurred_at < $1""",
        cutoff,
    )
    return [r["network_id"] for r in rows]


async def due(conn: asyncpg.Connection, cutoff: datetime) -> bool:
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM programme_record
                           WHERE released_at IS NULL AND held_back_at IS NULL
                             AND occurred_at < $1)""",
        cutoff,
    )
    return found


async def pending(conn: asyncpg.Connection, network: str, cutoff: datetime) -> list[asyncpg.Record]:
    """Every record waiting in closed months, with its case's or peer's description."""
    await conn.execute(
        """INSERT INTO peer_surrogate (network_id, peer)
           SELECT DISTINCT network_id, peer FROM programme_record
            WHERE released_at IS NULL AND peer IS NOT NULL
           ON CONFLICT (network_id, peer) DO NOTHING"""
    )
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT r.record_id, r.kind, r.occurred_at, r.hospital_id, r.unit_key, r.mode, r.tier,
                  r.referral, r.harm_level, r.involved,
                  c.hospital_id AS case_hospital, c.discipline AS case_discipline,
                  c.clinical_area AS case_clinical_area, c.origin, c.urgency, c.requested_at,
                  c.respond_by, c.surrogate AS case_surrogate,
                  pc.hospital_id AS peer_hospital, pc.discipline AS peer_discipline,
                  pc.clinical_area AS peer_clinical_area, ps.surrogate AS peer_surrogate
             FROM programme_record r
             LEFT JOIN support_case c
                    ON c.network_id = r.network_id AND c.case_id = r.case_id
             LEFT JOIN peer_certification pc
                    ON pc.network_id = r.network_id AND pc.peer = r.peer
             LEFT JOIN peer_surrogate ps
                    ON ps.network_id = r.network_id AND ps.peer = r.peer
            WHERE r.network_id = $1 AND r.released_at IS NULL AND r.occurred_at < $2
            ORDER BY r.occurred_at, r.record_id
              FOR UPDATE OF r""",
        network,
        cutoff,
    )
    return rows


async def mark_released(
    conn: asyncpg.Connection,
    network: str,
    released: Sequence[tuple[UUID, str, dict[str, Any]]],
    held_back: Sequence[UUID],
    at: datetime,
) -> None:
    await conn.executemany(
        "UPDATE programme_record SET released_at = $2 WHERE network_id = $1 AND record_id = $3",
        [(network, at, record_id) for record_id, _, _ in released],
    )
    await conn.executemany(
        """UPDATE programme_record SET held_back_at = $2
            WHERE network_id = $1 AND record_id = $3""",
        [(network, at, record_id) for record_id in held_back],
    )
    await conn.executemany(
        """INSERT INTO published_record (network_id, record_id, period, released_at, record)
           VALUES ($1, $2, $3, $4, $5::jsonb)""",
        [(network, rid, period, at, json.dumps(record)) for rid, period, record in released],
    )


async def published(
    conn: asyncpg.Connection, *, first: str | None, last: str | None
) -> list[dict[str, Any]]:
    """The records published to analysts, by month (for the exports)."""
    rows = await conn.fetch(
        """SELECT record FROM published_record
            WHERE ($1::text IS NULL OR period >= $1) AND ($2::text IS NULL OR period <= $2)
            ORDER BY period, record_id""",
        first,
        last,
    )
    return [json.loads(r["record"]) for r in rows]
