"""Row-level security keeps every network's rows to itself, even when the code forgets a filter."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from huddle_runtime import database
from huddle_runtime.migrations import Migration, MigrationError, migrate, runtime_migrations
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import transaction, unit_of_work, unit_of_work_on

pytestmark = pytest.mark.integration

ProbeFactory = Callable[..., Awaitable[ServiceSettings]]


async def test_a_query_without_a_network_filter_sees_only_its_own_network(
    probe: ProbeFactory,
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    try:
        for network in ("north", "south"):
            async with unit_of_work(pool, Tenant(network), source="/test") as uow:
                await uow.conn.execute(
                    "INSERT INTO note (network_id, case_id, body) VALUES ($1, $2, $3)",
                    network,
                    uuid.uuid4(),
                    f"for {network}",
                )
        async with unit_of_work(pool, Tenant("south"), source="/test") as uow:
            # The forgotten filter: no WHERE network_id = ... at all.
            rows = await uow.conn.fetch("SELECT network_id, body FROM note")
        assert [(r["network_id"], r["body"]) for r in rows] == [("south", "for south")]

        async with unit_of_work(pool, None, source="/test") as uow:
            assert await uow.conn.fetchval("SELECT count(*) FROM note") == 0
    finally:
        await pool.close()


async def test_a_write_into_another_network_is_refused(probe: ProbeFactory) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with unit_of_work(pool, Tenant("north"), source="/test") as uow:
                await uow.conn.execute(
                    "INSERT INTO note (network_id, case_id, body) VALUES ('south', $1, 'x')",
                    uuid.uuid4(),
                )
    finally:
        await pool.close()


def one_connection(settings: ServiceSettings) -> ServiceSettings:
    """A pool of one connection: what one unit of work leaves, the next one meets."""
    db = settings.database.model_copy(update={"pool_min_size": 1, "pool_max_size": 1})
    return settings.model_copy(update={"database": db})


async def test_the_tenant_setting_does_not_outlive_its_transaction(probe: ProbeFactory) -> None:
    settings = await probe()
    pool = await database.create_pool(one_connection(settings))
    try:
        async with unit_of_work(pool, Tenant("north"), source="/test"):
            pass
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_setting('huddle.network_id', true)") in (
                "",
                None,
            )
    finally:
        await pool.close()


async def test_a_pooled_connection_keeps_its_session_but_nothing_of_a_failed_unit_of_work(
    probe: ProbeFactory,
) -> None:
    settings = await probe()
    pool = await database.create_pool(one_connection(settings))
    try:
        async with pool.acquire() as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(RuntimeError):
            async with unit_of_work(pool, Tenant("north"), source="/test") as uow:
                await uow.conn.execute(
                    "INSERT INTO note (network_id, case_id, body) VALUES ('north', $1, 'x')",
                    uuid.uuid4(),
                )
                raise RuntimeError("the handler failed")
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT pg_backend_pid() AS backend, current_user AS role,
                          current_setting('huddle.network_id', true) AS network,
                          (SELECT count(*) FROM note) AS notes"""
            )
            assert not conn.is_in_transaction()
        # The same session (no reconnect), still the service's role, no tenant, nothing kept.
        assert (row["backend"], row["role"]) == (backend, settings.db_role)
        assert row["network"] in ("", None)
        assert row["notes"] == 0
    finally:
        await pool.close()


@pytest.mark.parametrize(
    "network", ["north", "o'brien", "back\\slash", "x', true); DROP TABLE note; --"]
)
async def test_a_tenant_reaches_postgresql_as_one_string_whatever_it_holds(
    probe: ProbeFactory, network: str
) -> None:
    settings = await probe()
    pool = await database.create_pool(one_connection(settings))
    try:
        async with unit_of_work(pool, Tenant(network, "st-olav"), source="/test") as uow:
            row = await uow.conn.fetchrow(
                """SELECT current_setting('huddle.network_id') AS network,
                          current_setting('huddle.hospital_id') AS hospital,
                          to_regclass('note') IS NOT NULL AS note_kept"""
            )
        assert (row["network"], row["hospital"], row["note_kept"]) == (network, "st-olav", True)
    finally:
        await pool.close()


async def test_a_unit_of_work_inside_a_transaction_is_a_savepoint_that_fails_alone(
    probe: ProbeFactory,
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    try:
        async with pool.acquire() as conn, conn.transaction():  # a consumer's batch
            with pytest.raises(asyncpg.UniqueViolationError):
                async with unit_of_work_on(conn, Tenant("north"), source="/test") as uow:
                    case = uuid.uuid4()
                    for _ in range(2):
                        await uow.conn.execute(
                            "INSERT INTO note (network_id, case_id, body) VALUES ('north', $1, 'x')",
                            case,
                        )
            async with unit_of_work_on(conn, Tenant("south"), source="/test") as uow:
                await uow.conn.execute(
                    "INSERT INTO note (network_id, case_id, body) VALUES ('south', $1, 'y')",
                    uuid.uuid4(),
                )
                async with transaction(uow.conn):  # a savepoint within (matching's lock wait)
                    await uow.conn.execute("SELECT 1")
            assert conn.is_in_transaction()
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
        async with unit_of_work(pool, Tenant("south"), source="/test") as uow:
            assert await uow.conn.fetchval("SELECT count(*) FROM note") == 1
        async with unit_of_work(pool, Tenant("north"), source="/test") as uow:
            assert await uow.conn.fetchval("SELECT count(*) FROM note") == 0
    finally:
        await pool.close()


async def test_migrations_refuse_a_tenant_table_without_forced_rls(
    probe: ProbeFactory, admin: asyncpg.Connection, probe_migration: Migration
) -> None:
    settings = await probe()
    leaky = Migration("0002_leaky.sql", "CREATE TABLE leaky (network_id text NOT NULL);")
    with pytest.raises(MigrationError, match="leaky"):
        await migrate(
            admin,
            schema=settings.schema_name,
            role=settings.db_role,
            migrations=[*runtime_migrations(), probe_migration, leaky],
        )


async def test_migrations_apply_once_and_refuse_an_edited_migration(
    probe: ProbeFactory, admin: asyncpg.Connection, probe_migration: Migration
) -> None:
    settings = await probe()
    again = await migrate(
        admin,
        schema=settings.schema_name,
        role=settings.db_role,
        migrations=[*runtime_migrations(), probe_migration],
    )
    assert again == []
    edited = Migration(probe_migration.name, probe_migration.sql + "\n-- edited")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(
            admin,
            schema=settings.schema_name,
            role=settings.db_role,
            migrations=[*runtime_migrations(), edited],
        )


async def test_the_service_role_is_not_a_superuser_and_cannot_bypass_rls(
    probe: ProbeFactory,
) -> None:
    settings = await probe()
    pool = await database.create_pool(settings)
    try:
        row = await pool.fetchrow(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert (row["rolsuper"], row["rolbypassrls"]) == (False, False)
    finally:
        await pool.close()


async def test_migrations_refuse_a_service_role_that_bypasses_rls(
    probe: ProbeFactory, admin: asyncpg.Connection, probe_migration: Migration
) -> None:
    settings = await probe()
    evil = f"huddle_evil_{uuid.uuid4().hex[:6]}"
    await admin.execute(f'CREATE ROLE "{evil}" NOLOGIN BYPASSRLS')
    with pytest.raises(MigrationError, match="bypasses row-level security"):
        await migrate(
            admin,
            schema=settings.schema_name,
            role=evil,
            migrations=[*runtime_migrations(), probe_migration],
        )
