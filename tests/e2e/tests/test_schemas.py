"""Every service's schema migrates cleanly, and every tenant table forces row-level security."""

from __future__ import annotations

import asyncpg
import pytest
from huddle_e2e.harness import migrate_service, service_settings
from huddle_local.issuer import LocalIssuer
from huddle_local.stack import definitions
from huddle_runtime.migrations import tenant_tables_without_forced_rls

pytestmark = pytest.mark.integration


async def test_every_tenant_table_of_every_service_forces_row_level_security(
    database_url: str, local_issuer: LocalIssuer
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for definition in definitions().values():
            settings = service_settings(
                definition,
                database_url=database_url,
                kafka_bootstrap="unused:9092",
                jwks_file=local_issuer.jwks_path,
            )
            await migrate_service(definition, settings)
            assert await tenant_tables_without_forced_rls(conn, definition.name) == []
            tenant_tables = await conn.fetchval(
                """SELECT count(*) FROM information_schema.columns
                    WHERE table_schema = $1 AND column_name = 'network_id'""",
                definition.name,
            )
            owner = await conn.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = $1", settings.db_role
            )
            assert owner is False, f"{settings.db_role} must exist and not be a superuser"
            if definition.name in ("intake", "matching"):
                assert tenant_tables > 0
    finally:
        await conn.close()
