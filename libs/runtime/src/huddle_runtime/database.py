"""The PostgreSQL pool: one per process, owned by the lifespan, working as the service's role."""

from __future__ import annotations

from typing import Any

import asyncpg

from huddle_runtime.settings import ServiceSettings


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, after asyncpg's own (which rolls back an open transaction and
    drops the connection's Python listener callbacks): nothing more. A pooled connection carries
    no session state: every setting is transaction-local (``set_config(..., true)``, ``SET
    LOCAL``), a session lock is released in a ``finally`` or its connection ended, and LISTEN
    is done on an admin connection (``connect``); so the default reset's round trip (RESET ALL,
    UNLISTEN, CLOSE ALL, unlock all) on every release is skipped."""


async def create_pool(settings: ServiceSettings, *, as_service_role: bool = True) -> asyncpg.Pool:
    """A pool whose connections use the service's schema and, by default, its non-owner role."""
    role = settings.db_role if as_service_role else None

    async def init(conn: asyncpg.Connection) -> None:
        if role:
            # Row-level security applies to this role; the connecting user may be an admin.
            await conn.execute(f"SET ROLE {quote_ident(role)}")

    pool = await asyncpg.create_pool(
        settings.database.url.get_secret_value(),
        min_size=settings.database.pool_min_size,
        max_size=settings.database.pool_max_size,
        init=init,
        reset=keep_session,
        server_settings={
            "search_path": settings.schema_name,
            "application_name": f"huddle-{settings.service}",
            "statement_timeout": str(settings.database.statement_timeout_ms),
        },
    )
    assert pool is not None
    return pool


async def connect(settings: ServiceSettings, **kwargs: Any) -> asyncpg.Connection:
    """A single admin connection (migrations, advisory locks, LISTEN)."""
    conn: asyncpg.Connection = await asyncpg.connect(
        settings.database.url.get_secret_value(),
        server_settings={
            "search_path": settings.schema_name,
            "application_name": f"huddle-{settings.service}-admin",
        },
        **kwargs,
    )
    return conn


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
