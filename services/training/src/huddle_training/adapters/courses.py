"""The course catalogue, certification rule, cohorts, enrolments and attendance in PostgreSQL
(row-level security scopes every query to the tenant)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from huddle_training.domain.certification_rule import Attendance, CertificationRule
from huddle_training.domain.course import Cohort, Delivery, Module


async def put_module(
    conn: asyncpg.Connection, network_id: str, module: Module, at: datetime
) -> bool:
    """Add or update a catalogue module; True when it is new."""
    inserted: bool = await conn.fetchval(
        """INSERT INTO course_module (network_id, code, title, hours, delivery, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (network_id, code) DO UPDATE
              SET title = EXCLUDED.title, hours = EXCLUDED.hours,
                  delivery = EXCLUDED.delivery, updated_at = EXCLUDED.updated_at
           RETURNING xmax = 0""",
        network_id,
        module.code,
        module.title,
        module.hours,
        module.delivery.value,
        at,
    )
    return inserted


async def catalogue(conn: asyncpg.Connection) -> dict[str, Module]:
    rows = await conn.fetch("SELECT code, title, hours, delivery FROM course_module ORDER BY code")
    return {
        r["code"]: Module(r["code"], r["title"], r["hours"], Delivery(r["delivery"])) for r in rows
    }


async def certification_rule(conn: asyncpg.Connection) -> CertificationRule | None:
    row = await conn.fetchrow(
        "SELECT required_modules, refresher_modules, validity_months FROM certification_rule"
    )
    if row is None:
        return None
    return CertificationRule(
        required_modules=tuple(row["required_modules"]),
        refresher_modules=tuple(row["refresher_modules"]),
        validity_months=row["validity_months"],
    )


async def put_certification_rule(
    conn: asyncpg.Connection, network_id: str, rule: CertificationRule, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO certification_rule
               (network_id, required_modules, refresher_modules, validity_months, updated_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (network_id) DO UPDATE
              SET required_modules = EXCLUDED.required_modules,
                  refresher_modules = EXCLUDED.refresher_modules,
                  validity_months = EXCLUDED.validity_months,
                  updated_at = EXCLUDED.updated_at""",
        network_id,
        list(rule.required_modules),
        list(rule.refresher_modules),
        rule.validity_months,
        at,
    )


async def add_cohort(conn: asyncpg.Connection, cohort: Cohort) -> None:
    await conn.execute(
        """INSERT INTO cohort (id, network_id, hospital_id, label, starts_at, ends_at, modules,
                               created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        cohort.cohort_id,
        cohort.network_id,
        cohort.hospital_id,
        cohort.label,
        cohort.starts_at,
        cohort.ends_at,
        list(cohort.modules),
        cohort.created_at,
    )


async def get_cohort(
    conn: asyncpg.Connection, cohort_id: UUID, *, for_update: bool = False
) -> Cohort | None:
    row = await conn.fetchrow(
        "SELECT * FROM cohort WHERE id = $1" + (" FOR UPDATE" if for_update else ""), cohort_id
    )
    return _cohort(row) if row is not None else None


async def list_cohorts(
    conn: asyncpg.Connection, *, hospital_id: str | None, limit: int
) -> list[Cohort]:
    rows = await conn.fetch(
        """SELECT * FROM cohort WHERE ($1::text IS NULL OR hospital_id = $1)
            ORDER BY starts_at DESC, id LIMIT $2""",
        hospital_id,
        limit,
    )
    return [_cohort(r) for r in rows]


def _cohort(row: asyncpg.Record) -> Cohort:
    return Cohort(
        cohort_id=row["id"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        label=row["label"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        modules=tuple(row["modules"]),
        created_at=row["created_at"],
    )


async def enrol(conn: asyncpg.Connection, cohort: Cohort, peer: str, at: datetime) -> bool:
    """Enrol ``peer``; False (and nothing written) when already enrolled."""
    added = await conn.fetchval(
        """INSERT INTO enrolment (network_id, cohort_id, peer, enrolled_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (cohort_id, peer) DO NOTHING
           RETURNING true""",
        cohort.network_id,
        cohort.cohort_id,
        peer,
        at,
    )
    return bool(added)


async def enrolled(conn: asyncpg.Connection, cohort_id: UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT peer FROM enrolment WHERE cohort_id = $1 ORDER BY peer", cohort_id
    )
    return [r["peer"] for r in rows]


async def enrolments(conn: asyncpg.Connection, cohort_id: UUID) -> list[dict[str, object]]:
    """Each enrolled peer with when they enrolled, completed, and attended each module."""
    rows = await conn.fetch(
        """SELECT e.peer, e.enrolled_at, e.completed_at,
                  array_remove(array_agg(a.module ORDER BY a.module), NULL) AS modules,
                  array_remove(array_agg(a.attended_at ORDER BY a.module), NULL) AS attended_at
             FROM enrolment e
             LEFT JOIN attendance a ON a.cohort_id = e.cohort_id AND a.peer = e.peer
            WHERE e.cohort_id = $1
            GROUP BY e.peer, e.enrolled_at, e.completed_at
            ORDER BY e.peer""",
        cohort_id,
    )
    return [
        {
            "peer": r["peer"],
            "enrolled_at": r["enrolled_at"],
            "completed_at": r["completed_at"],
            "attended": dict(zip(r["modules"], r["attended_at"], strict=True)),
        }
        for r in rows
    ]


async def record_attendance(
    conn: asyncpg.Connection,
    cohort: Cohort,
    *,
    module: str,
    peers: list[str],
    attended_at: datetime,
    recorded_at: datetime,
) -> list[str]:
    """Record that ``peers`` attended ``module``; returns those not recorded before."""
    rows = await conn.fetch(
        """INSERT INTO attendance (network_id, cohort_id, peer, module, attended_at, recorded_at)
           SELECT $1, $2, peer, $3, $4, $5 FROM unnest($6::text[]) AS peer
           ON CONFLICT (cohort_id, peer, module) DO NOTHING
           RETURNING peer""",
        cohort.network_id,
        cohort.cohort_id,
        module,
        attended_at,
        recorded_at,
        peers,
    )
    return sorted(r["peer"] for r in rows)


async def attended_in_cohort(
    conn: asyncpg.Connection, cohort_id: UUID, peer: str
) -> dict[str, datetime]:
    rows = await conn.fetch(
        "SELECT module, attended_at FROM attendance WHERE cohort_id = $1 AND peer = $2",
        cohort_id,
        peer,
    )
    return {r["module"]: r["attended_at"] for r in rows}


async def complete_enrolment(
    conn: asyncpg.Connection, cohort_id: UUID, peer: str, at: datetime
) -> bool:
    """Mark the enrolment completed; False when it already was."""
    done = await conn.fetchval(
        """UPDATE enrolment SET completed_at = $3
            WHERE cohort_id = $1 AND peer = $2 AND completed_at IS NULL
           RETURNING true""",
        cohort_id,
        peer,
        at,
    )
    return bool(done)


async def attendance_of(conn: asyncpg.Connection, peer: str) -> list[Attendance]:
    """Every module ``peer`` attended, in any cohort of the network."""
    rows = await conn.fetch(
        "SELECT module, attended_at FROM attendance WHERE peer = $1 ORDER BY attended_at", peer
    )
    return [Attendance(r["module"], r["attended_at"]) for r in rows]
