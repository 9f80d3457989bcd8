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


def scope_statement(tenant: Tenant | None) -> str:
    """``apply_tenant`` as a statement of literals, to be sent with others in one round trip (the
    simple protocol takes no parameters)."""
    network = tenant.network_id if tenant else ""
    hospital = (tenant.hospital_id or "") if tenant else ""
    return (
        f"SELECT set_config('{NETWORK_SETTING}', {_literal(network)}, true),"
        f" set_config('{HOSPITAL_SETTING}', {_literal(hospital)}, true)"
    )


def _literal(value: str) -> str:
    """A string constant whatever ``standard_conforming_strings`` says (an escape string)."""
    if "\0" in value:
        raise ValueError("a tenant id cannot hold a NUL character")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


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
