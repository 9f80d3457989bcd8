"""Synthetic rosters and requests loaded into matching's own schema, in bulk (COPY), so the
measures run matching's real queries and use cases against PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed
from huddle_matching.service import DEFINITION as MATCHING
from huddle_runtime import database
from huddle_runtime.migrations import migrate_service
from huddle_runtime.settings import DatabaseSettings, KafkaSettings, ServiceSettings
from huddle_runtime.tenancy import Tenant, apply_tenant, scope_statement
from huddle_runtime.unit_of_work import transaction
from pydantic import SecretStr

from huddle_bench.context import Context
from huddle_bench.measures.roster import NETWORK, NOW

TABLES = ("offer", "on_call_shift", "support_request", "peer", "outbox")
TENANT = Tenant(NETWORK)


def matching_settings(ctx: Context) -> ServiceSettings:
    return ServiceSettings(
        service=MATCHING.name,
        environment="test",
        # The decision and surge measures need no broker; the relay's measure runs with one.
        kafka=KafkaSettings(bootstrap_servers=ctx.kafka_bootstrap or "127.0.0.1:1"),
        database=DatabaseSettings(url=SecretStr(ctx.database())),
    )


async def migrated(ctx: Context) -> ServiceSettings:
    """Matching's schema, migrated once per bench session by its own migrations."""
    settings = matching_settings(ctx)
    if "matching_schema" not in ctx.cache:
        await migrate_service(settings, MATCHING.migrations)
        ctx.cache["matching_schema"] = True
    return settings


@asynccontextmanager
async def matching_pool(ctx: Context) -> AsyncIterator[asyncpg.Pool]:
    """A pool as the service's own: its role, its schema, row-level security on."""
    pool = await database.create_pool(await migrated(ctx))
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def tenant_transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn, transaction(conn, scope_statement(TENANT)):
        yield conn


@asynccontextmanager
async def admin_transaction(settings: ServiceSettings) -> AsyncIterator[asyncpg.Connection]:
    """The owner's connection, for loading data in bulk (the service role may not TRUNCATE)."""
    conn = await database.connect(settings)
    try:
        async with conn.transaction():
            await apply_tenant(conn, TENANT)
            yield conn
    finally:
        await conn.close()


async def load_roster(settings: ServiceSettings, peers: Sequence[Peer]) -> None:
    """An empty matching schema, then ``peers`` as the roster: their on-call shifts running at
    NOW and, for a peer with offers pending, that many open offers on requests still searching."""
    pending = [p for p in peers for _ in range(p.pending_offers)]
    requests = [uuid.uuid4() for _ in pending]
    async with admin_transaction(settings) as conn:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        await conn.copy_records_to_table(
            "peer",
            columns=(
                "network_id",
                "pseudonym",
                "hospital_id",
                "unit_id",
                "discipline",
                "clinical_area",
                "languages",
                "gender",
                "certified_until",
                "capacity",
                "active_cases",
                "paused",
                "last_matched_at",
            ),
            records=[
                (
                    p.network_id,
                    p.pseudonym,
                    p.hospital_id,
                    p.unit_id,
                    p.discipline.value,
                    p.clinical_area,
                    sorted(p.languages),
                    p.gender.value if p.gender else None,
                    p.certified_until,
                    p.capacity,
                    p.active_cases,
                    p.paused,
                    p.last_matched_at,
                )
                for p in peers
            ],
        )
        await conn.copy_records_to_table(
            "on_call_shift",
            columns=("network_id", "hospital_id", "peer", "starts_at", "ends_at"),
            records=[
                (
                    p.network_id,
                    p.hospital_id,
                    p.pseudonym,
                    NOW - timedelta(hours=2),
                    NOW + timedelta(hours=10),
                )
                for p in peers
                if p.on_call
            ],
        )
        await copy_requests(
            conn,
            [(case, peer.hospital_id) for case, peer in zip(requests, pending, strict=True)],
            status="offered",
        )
        await conn.copy_records_to_table(
            "offer",
            columns=(
                "offer_id",
                "network_id",
                "case_id",
                "peer",
                "score",
                "offered_at",
                "respond_by",
            ),
            records=[
                (uuid.uuid4(), NETWORK, case, p.pseudonym, 0, NOW, NOW + timedelta(minutes=20))
                for case, p in zip(requests, pending, strict=True)
            ],
        )
    # A roster lives long: vacuumed (visibility map set, hint bits written) and analysed, as
    # autovacuum leaves it, and not vacuumed by autovacuum in the middle of a measure.
    conn = await database.connect(settings)
    try:
        await conn.execute(f"VACUUM ANALYZE {', '.join(TABLES)}")
    finally:
        await conn.close()


async def copy_requests(
    conn: asyncpg.Connection,
    cases: Sequence[tuple[uuid.UUID, str]] | Sequence[SupportNeed],
    *,
    status: str,
) -> None:
    """Support requests as matching records them; plain (case, hospital) pairs get filler."""
    rows = []
    for item in cases:
        if isinstance(item, SupportNeed):
            rows.append(
                (
                    item.case_id,
                    item.network_id,
                    item.hospital_id,
                    item.unit_id,
                    item.requester,
                    item.discipline.value,
                    "outreach" if item.adverse_event_id else "self",
                    item.urgency.value,
                    item.preferences.model_dump_json(exclude_none=True),
                    item.adverse_event_id,
                    item.requested_at,
                    item.clinical_area,
                    sorted(item.reporting_line),
                    sorted(item.involved),
                    status,
                    item.requested_at + timedelta(minutes=30),
                )
            )
        else:
            case, hospital = item
            rows.append(
                (
                    case,
                    NETWORK,
                    hospital,
                    "unit-00",
                    "p_filler",
                    "nurse",
                    "self",
                    "routine",
                    "{}",
                    None,
                    NOW,
                    None,
                    [],
                    [],
                    status,
                    NOW + timedelta(hours=24),
                )
            )
    await conn.copy_records_to_table(
        "support_request",
        columns=(
            "case_id",
            "network_id",
            "hospital_id",
            "unit_id",
            "requester",
            "discipline",
            "origin",
            "urgency",
            "preferences",
            "adverse_event_id",
            "requested_at",
            "clinical_area",
            "reporting_line",
            "involved",
            "status",
            "first_contact_by",
        ),
        records=rows,
    )
