"""The journey tables: steps, assignment, crisis resources, audited releases of contact details."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class Step:
    """A row of a request's journey."""

    network_id: str
    case_id: UUID
    kind: str
    at: datetime
    detail: dict[str, Any] | None = None


async def add_step(
    conn: asyncpg.Connection,
    *,
    network_id: str,
    case_id: UUID,
    kind: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    await add_steps(conn, [Step(network_id, case_id, kind, at, detail)])


async def add_steps(conn: asyncpg.Connection, steps: Sequence[Step]) -> None:
    await conn.executemany(
        "INSERT INTO request_event (network_id, case_id, kind, at, detail)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        [(s.network_id, s.case_id, s.kind, s.at, _detail(s)) for s in steps],
    )


def _detail(step: Step) -> str:
    return json.dumps(step.detail or {}, default=_iso)


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def steps(conn: asyncpg.Connection, case_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        # In the order Huddle learned of each step (a contact is reported after it ends).
        "SELECT kind, at, detail FROM request_event WHERE case_id = $1 ORDER BY id",
        case_id,
    )
    return [{"step": r["kind"], "at": r["at"], **json.loads(r["detail"])} for r in rows]


async def lock_status(conn: asyncpg.Connection, case_id: UUID) -> str | None:
    status: str | None = await conn.fetchval(
        "SELECT status FROM support_request WHERE case_id = $1 FOR UPDATE", case_id
    )
    return status


async def set_status(
    conn: asyncpg.Connection,
    case_id: UUID,
    status: str,
    *,
    assigned_peer: str | None = None,
    closed_at: datetime | None = None,
) -> None:
    await conn.execute(
        """UPDATE support_request SET status = $2,
                  assigned_peer = COALESCE($3, assigned_peer),
                  closed_at = COALESCE($4, closed_at)
            WHERE case_id = $1""",
        case_id,
        status,
        assigned_peer,
        closed_at,
    )


async def advance(
    conn: asyncpg.Connection,
    step: Step,
    statuses: Mapping[str, str],
    *,
    assigned_peer: str | None = None,
    closed_at: datetime | None = None,
) -> bool:
    """The step on the journey and the request's new status (``statuses``: the status after the
    step, by the status before it; a status it lacks fails the statement, as the column is NOT
    NULL), in one statement that reads the status under the row's lock; False, with nothing
    written, when there is no such request."""
    found: int = await conn.fetchval(
        """WITH request AS (
               UPDATE support_request r
                  SET status = (SELECT t.after
                                  FROM unnest($8::text[], $9::text[]) AS t (before, after)
                                 WHERE t.before = r.status),
                      assigned_peer = COALESCE($2, r.assigned_peer),
                      closed_at = COALESCE($3, r.closed_at)
                WHERE r.case_id = $1
            RETURNING r.case_id),
           step AS (
               INSERT INTO request_event (network_id, case_id, kind, at, detail)
               SELECT $4, case_id, $5, $6, $7::jsonb FROM request)
           SELECT count(*) FROM request""",
        step.case_id,
        assigned_peer,
        closed_at,
        step.network_id,
        step.kind,
        step.at,
        _detail(step),
        list(statuses),
        list(statuses.values()),
    )
    return found > 0


async def assigned_peer(conn: asyncpg.Connection, case_id: UUID) -> tuple[str | None, str] | None:
    row = await conn.fetchrow(
        "SELECT assigned_peer, status FROM support_request WHERE case_id = $1", case_id
    )
    return (row["assigned_peer"], row["status"]) if row else None


async def sealed_contact(conn: asyncpg.Connection, case_id: UUID) -> bytes | None:
    sealed: bytes | None = await conn.fetchval(
        "SELECT sealed FROM contact_detail WHERE case_id = $1", case_id
    )
    return sealed


async def directory_contact(conn: asyncpg.Connection, case_id: UUID) -> bytes | None:
    """The requester's own contact details from the workforce directory (outreach requests)."""
    sealed: bytes | None = await conn.fetchval(
        """SELECT s.sealed_contact FROM support_request r
             JOIN staff s ON s.network_id = r.network_id AND s.pseudonym = r.requester
            WHERE r.case_id = $1""",
        case_id,
    )
    return sealed


async def record_release(
    conn: asyncpg.Connection, *, network_id: str, case_id: UUID, peer: str
) -> None:
    await conn.execute(
        "INSERT INTO contact_release (network_id, case_id, peer) VALUES ($1, $2, $3)",
        network_id,
        case_id,
        peer,
    )


async def crisis_resources(conn: asyncpg.Connection, hospital_id: str) -> list[dict[str, str]]:
    rows = await conn.fetch(
        "SELECT label, how_to_reach FROM crisis_resource WHERE hospital_id = $1 ORDER BY position",
        hospital_id,
    )
    return [dict(r) for r in rows]


async def put_crisis_resources(
    conn: asyncpg.Connection, network_id: str, hospital_id: str, entries: list[dict[str, str]]
) -> None:
    await conn.execute("DELETE FROM crisis_resource WHERE hospital_id = $1", hospital_id)
    await conn.executemany(
        "INSERT INTO crisis_resource (network_id, hospital_id, position, label, how_to_reach)"
        " VALUES ($1, $2, $3, $4, $5)",
        [
            (network_id, hospital_id, i, e["label"], e["how_to_reach"])
            for i, e in enumerate(entries)
        ],
    )


async def closed_before(conn: asyncpg.Connection, moment: datetime) -> list[tuple[str, UUID]]:
    """(network, case) pairs closed before ``moment`` that still hold contact details."""
    rows = await conn.fetch(
        """SELECT r.network_id, r.case_id FROM support_request r
            WHERE r.status IN ('closed', 'withdrawn') AND r.closed_at < $1
              AND EXISTS (SELECT 1 FROM contact_detail c WHERE c.case_id = r.case_id)
            LIMIT 500""",
        moment,
    )
    return [(r["network_id"], r["case_id"]) for r in rows]


async def purge_contact(conn: asyncpg.Connection, case_id: UUID) -> bool:
    status = await conn.execute("DELETE FROM contact_detail WHERE case_id = $1", case_id)
    return bool(status == "DELETE 1")
