"""Adverse events, outreach policies and idempotency keys in PostgreSQL (row-level security
scopes every query to the network)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from huddle_contracts.vocabulary import Discipline, EventClass, HarmCategory, HarmLevel
from huddle_runtime.pseudonyms import network_secret
from pydantic import SecretStr

from huddle_intake.domain.outreach_policy import OutreachPolicy


def keyed_digest(master_key: SecretStr, network_id: str, purpose: str, value: bytes) -> str:
    """HMAC with the network's secret: the same value is recognised, and cannot be recovered."""
    secret = network_secret(master_key, network_id)
    return hmac.new(secret, f"huddle/{purpose}/".encode() + value, hashlib.sha256).hexdigest()


async def lock(conn: asyncpg.Connection, *parts: str) -> None:
    """Serialise the transactions working on one thing (a report, a key) until they commit."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "/".join(parts))


async def lock_each(conn: asyncpg.Connection, prefix: Sequence[str], names: Iterable[str]) -> None:
    """``lock`` for many things in one round trip, taken in one order so that two transactions
    locking overlapping sets at once never wait on each other in a cycle (a transaction that
    locks twice, for two runs, can still meet another in one: PostgreSQL then ends one, 40P01,
    and the consumer does its batch again)."""
    keys = sorted({"/".join((*prefix, name)) for name in names})
    await conn.execute(
        """SELECT count(pg_advisory_xact_lock(hashtextextended(key, 0)))
             FROM (SELECT key FROM unnest($1::text[]) AS key ORDER BY key) AS ordered""",
        keys,
    )


@dataclass(frozen=True)
class AdverseEventRecord:
    adverse_event_id: UUID
    network_id: str
    hospital_id: str
    unit_ids: tuple[str, ...]
    event_class: EventClass
    harm_level: HarmLevel
    categories: tuple[HarmCategory, ...]
    occurred_at: datetime
    reported_at: datetime
    reporter_event_digest: str
    reported_by: str
    outreach_triggered: bool
    group_debrief_requested: bool
    support_requests: int
    unknown_staff: int


@dataclass(frozen=True)
class InvolvedRecord:
    pseudonym: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    in_directory: bool
    case_id: UUID | None


async def add_adverse_events(
    conn: asyncpg.Connection,
    reported: Sequence[tuple[AdverseEventRecord, Sequence[InvolvedRecord]]],
) -> None:
    """Each event with the people involved in it: the events row by row in one round trip, then
    everyone involved in one statement."""
    await conn.executemany(
        """INSERT INTO adverse_event (adverse_event_id, network_id, hospital_id, unit_ids,
               event_class, harm_level, categories, occurred_at, reported_at,
               reporter_event_digest, reported_by, outreach_triggered, group_debrief_requested,
               support_requests, unknown_staff)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        [
            (
                event.adverse_event_id,
                event.network_id,
                event.hospital_id,
                list(event.unit_ids),
                event.event_class.value,
                event.harm_level.value,
                [category.value for category in event.categories],
                event.occurred_at,
                event.reported_at,
                event.reporter_event_digest,
                event.reported_by,
                event.outreach_triggered,
                event.group_debrief_requested,
                event.support_requests,
                event.unknown_staff,
            )
            for event, _ in reported
        ],
    )
    rows = [
        (
            event.adverse_event_id,
            event.network_id,
            person.pseudonym,
            person.hospital_id,
            person.unit_id,
            person.discipline.value,
            person.in_directory,
            person.case_id,
        )
        for event, involved in reported
        for person in involved
    ]
    if not rows:
        return
    # One statement for everyone involved (the events' arrays of units and categories keep
    # theirs row by row: unnest would flatten them).
    await conn.execute(
        """INSERT INTO adverse_event_involved (adverse_event_id, network_id, pseudonym,
               hospital_id, unit_id, discipline, in_directory, case_id)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                $6::text[], $7::boolean[], $8::uuid[])""",
        *map(list, zip(*rows, strict=True)),
    )


async def adverse_events_reported_as(
    conn: asyncpg.Connection, *, network_id: str, reporter_event_digests: Sequence[str]
) -> dict[str, AdverseEventRecord]:
    """The events already reported under any of these reporter event ids, by digest."""
    rows = await conn.fetch(
        """SELECT * FROM adverse_event
            WHERE network_id = $1 AND reporter_event_digest = ANY($2::text[])""",
        network_id,
        list(reporter_event_digests),
    )
    return {row["reporter_event_digest"]: _adverse_event(row) for row in rows}


def _adverse_event(row: asyncpg.Record) -> AdverseEventRecord:
    return AdverseEventRecord(
        adverse_event_id=row["adverse_event_id"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        unit_ids=tuple(row["unit_ids"]),
        event_class=EventClass(row["event_class"]),
        harm_level=HarmLevel(row["harm_level"]),
        categories=tuple(HarmCategory(c) for c in row["categories"]),
        occurred_at=row["occurred_at"],
        reported_at=row["reported_at"],
        reporter_event_digest=row["reporter_event_digest"],
        reported_by=row["reported_by"],
        outreach_triggered=row["outreach_triggered"],
        group_debrief_requested=row["group_debrief_requested"],
        support_requests=row["support_requests"],
        unknown_staff=row["unknown_staff"],
    )


async def outreach_policies(
    conn: asyncpg.Connection, *, network_id: str, hospital_id: str | None
) -> tuple[OutreachPolicy | None, OutreachPolicy | None]:
    """The network's own policy and, when asked, the hospital's (None where there is none)."""
    network, hospitals = await outreach_policies_of(
        conn, network_id=network_id, hospital_ids=[hospital_id] if hospital_id else []
    )
    return network, hospitals.get(hospital_id) if hospital_id else None


async def outreach_policies_of(
    conn: asyncpg.Connection, *, network_id: str, hospital_ids: Iterable[str]
) -> tuple[OutreachPolicy | None, dict[str, OutreachPolicy]]:
    """The network's own policy (None if it has none) and those of the hospitals that have one."""
    rows = await conn.fetch(
        """SELECT hospital_id, harm_levels, categories, near_misses FROM outreach_policy
            WHERE network_id = $1 AND (hospital_id IS NULL OR hospital_id = ANY($2::text[]))""",
        network_id,
        sorted(set(hospital_ids)),
    )
    found = {
        row["hospital_id"]: OutreachPolicy.of(
            harm_levels=(HarmLevel(level) for level in row["harm_levels"]),
            categories=(HarmCategory(category) for category in row["categories"]),
            near_misses=row["near_misses"],
        )
        for row in rows
    }
    network = found.pop(None, None)
    return network, {hospital: policy for hospital, policy in found.items() if hospital}


async def put_outreach_policy(
    conn: asyncpg.Connection,
    *,
    network_id: str,
    hospital_id: str | None,
    policy: OutreachPolicy,
    updated_by: str,
) -> None:
    conflict = (
        "(network_id) WHERE hospital_id IS NULL"
        if hospital_id is None
        else "(network_id, hospital_id) WHERE hospital_id IS NOT NULL"
    )
    await conn.execute(
        f"""INSERT INTO outreach_policy (network_id, hospital_id, harm_levels, categories,
               near_misses, updated_by)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT {conflict} DO UPDATE SET harm_levels = EXCLUDED.harm_levels,
               categories = EXCLUDED.categories, near_misses = EXCLUDED.near_misses,
               updated_by = EXCLUDED.updated_by, updated_at = clock_timestamp()""",
        network_id,
        hospital_id,
        sorted(level.value for level in policy.harm_levels),
        sorted(category.value for category in policy.categories),
        policy.near_misses,
        updated_by,
    )


async def delete_hospital_policy(
    conn: asyncpg.Connection, *, network_id: str, hospital_id: str
) -> bool:
    deleted: str = await conn.execute(
        "DELETE FROM outreach_policy WHERE network_id = $1 AND hospital_id = $2",
        network_id,
        hospital_id,
    )
    return deleted != "DELETE 0"


@dataclass(frozen=True)
class StoredAnswer:
    request_digest: str
    status: int
    body: dict[str, Any]


async def answer_for_key(
    conn: asyncpg.Connection, *, network_id: str, key_digest: str
) -> StoredAnswer | None:
    row = await conn.fetchrow(
        """SELECT request_digest, response_status, response_body FROM idempotency_key
            WHERE network_id = $1 AND key_digest = $2""",
        network_id,
        key_digest,
    )
    if row is None:
        return None
    return StoredAnswer(
        row["request_digest"], row["response_status"], json.loads(row["response_body"])
    )


async def remember_answer(
    conn: asyncpg.Connection, *, network_id: str, key_digest: str, answer: StoredAnswer
) -> None:
    await conn.execute(
        """INSERT INTO idempotency_key (network_id, key_digest, request_digest, response_status,
               response_body)
           VALUES ($1, $2, $3, $4, $5::jsonb)""",
        network_id,
        key_digest,
        answer.request_digest,
        answer.status,
        json.dumps(answer.body),
    )
