"""A plain-SQL migrations runner: one schema per service, files applied once, in order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg
import structlog

from huddle_runtime import database
from huddle_runtime.database import quote_ident
from huddle_runtime.settings import ServiceSettings

log = structlog.get_logger(__name__)

_LOCK_KEY = "huddle.migrations"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def runtime_migrations() -> list[Migration]:
    """The outbox and inbox tables every service has."""
    folder = resources.files("huddle_runtime") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f"runtime/{f.name}", f.read_text()) for f in files]


def load_migrations(folder: Path) -> list[Migration]:
    files = sorted(folder.glob("*.sql"))
    return [Migration(f.name, f.read_text()) for f in files]


async def migrate(
    conn: asyncpg.Connection, *, schema: str, role: str, migrations: list[Migration]
) -> list[str]:
    """Apply what is missing to ``schema`` and grant ``role`` its data rights; returns applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", _LOCK_KEY)
    try:
        await _ensure_schema_and_role(conn, schema, role)
        done = {
            row["name"]: row["checksum"]
            for row in await conn.fetch(
                f"SELECT name, checksum FROM {quote_ident(schema)}.schema_migrations"
            )
        }
        for migration in migrations:
            if migration.name in done:
                if done[migration.name] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} changed after it was applied to schema "
                        f"{schema}; add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
                await conn.execute(
                    f"INSERT INTO {quote_ident(schema)}.schema_migrations (name, checksum)"
                    " VALUES ($1, $2)",
                    migration.name,
                    migration.checksum,
                )
            applied.append(migration.name)
            log.info("migration applied", schema=schema, migration=migration.name)
        await _grant(conn, schema, role)
        await assert_tenant_tables_force_rls(conn, schema)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", _LOCK_KEY)
    return applied


async def migrate_service(settings: ServiceSettings, folder: Path) -> list[str]:
    """The runtime's tables and the service's own migrations, into the service's schema."""
    conn = await database.connect(settings)
    try:
        return await migrate(
            conn,
            schema=settings.schema_name,
            role=settings.db_role,
            migrations=runtime_migrations() + load_migrations(folder),
        )
    finally:
        await conn.close()


async def tenant_tables_without_forced_rls(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Tables with a ``network_id`` column that row-level security does not force."""
    rows = await conn.fetch(
        """
        SELECT c.relname
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'network_id'
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
           AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                    AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
         ORDER BY c.relname
        """,
        schema,
    )
    return [row["relname"] for row in rows]


async def assert_tenant_tables_force_rls(conn: asyncpg.Connection, schema: str) -> None:
    missing = await tenant_tables_without_forced_rls(conn, schema)
    if missing:
        raise MigrationError(
            f"tenant tables in schema {schema} lack forced row-level security with a policy: "
            + ", ".join(missing)
        )


async def _ensure_schema_and_role(conn: asyncpg.Connection, schema: str, role: str) -> None:
    existing = await conn.fetchrow(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", role
    )
    if existing is not None and (existing["rolsuper"] or existing["rolbypassrls"]):
        raise MigrationError(
            f"role {role} is a superuser or bypasses row-level security; "
            "the service role must be subject to it"
        )
    if existing is None:
        # NOLOGIN: the service connects as its own login (production) or SETs this role (local).
        await conn.execute(f"CREATE ROLE {quote_ident(role)} NOLOGIN NOSUPERUSER NOBYPASSRLS")
    is_super = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not is_super:
        await conn.execute(f"GRANT {quote_ident(role)} TO current_user")
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    await conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.schema_migrations (
                name text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"""
    )


async def _grant(conn: asyncpg.Connection, schema: str, role: str) -> None:
    s, r = quote_ident(schema), quote_ident(role)
    await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
    await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}")
    await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
    await conn.execute(f"REVOKE ALL ON {s}.schema_migrations FROM {r}")
