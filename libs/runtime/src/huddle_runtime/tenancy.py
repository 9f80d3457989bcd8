"""Who a piece of work is for: the network (and hospital) that row-level security enforces."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# The PostgreSQL setting every tenant table's policy reads (see migrations.TENANT_POLICY_SQL).
NETWORK_SETTING = "huddle.network_id"
HOSPITAL_SETTING = "huddle.hospital_id"


@dataclass(frozen=True)
class Tenant:
    network_id: str
    hospital_id: str | None = None


async def apply_tenant(conn: asyncpg.Connection, tenant: Tenant | None) -> None:
    """Scope the current transaction to ``tenant``; ``None`` sees no tenant rows at all."""
    await conn.execute(
        "SELECT set_config($1, $2, true), set_config($3, $4, true)",
        NETWORK_SETTING,
        tenant.network_id if tenant else "",
        HOSPITAL_SETTING,
        (tenant.hospital_id or "") if tenant else "",
    )


SYSTEM_SCOPE_SETTING = "huddle.system_scope"


async def apply_system_scope(conn: asyncpg.Connection, scope: str) -> None:
    """For a scheduler that must find due work across networks: only policies naming ``scope``
    let it read, and it handles each item afterwards inside that item's own tenant scope."""
    await conn.execute("SELECT set_config($1, $2, true)", SYSTEM_SCOPE_SETTING, scope)
