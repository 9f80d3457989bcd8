"""SQL of the materialised results: stored bodies, each network's data version, the warmer's
bookkeeping. Every statement runs inside the network's tenant scope (row-level security)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime

import asyncpg

_VERSION = "coalesce((SELECT data_version FROM result_version WHERE network_id = $1), 0)"
_WARM_LOCK = "huddle_analytics.warm:"


async def stored(
    conn: asyncpg.Connection, network: str, scope: str, query_key: str, closed_through: date
) -> str | None:
    """The body stored for the query under the network's current data version, if any."""
    body: str | None = await conn.fetchval(
        f"""SELECT body FROM published_result
             WHERE network_id = $1 AND scope = $2 AND query_key = $3 AND closed_through = $4
               AND data_version = {_VERSION}""",
        network,
        scope,
        query_key,
        closed_through,
    )
    return body


async def data_version(conn: asyncpg.Connection, network: str) -> int:
    version: int = await conn.fetchval(f"SELECT {_VERSION}", network)
    return version


async def store(
    conn: asyncpg.Connection,
    network: str,
    closed_through: date,
    version: int,
    bodies: Sequence[tuple[str, str, str]],
) -> None:
    """Keep (scope, query key, body) computed from ``version``'s snapshot; the network becomes
    one the warmer looks after."""
    await conn.execute(
        """INSERT INTO result_version (network_id) VALUES ($1) ON CONFLICT DO NOTHING""", network
    )
    await conn.execute(
        """INSERT INTO published_result (network_id, scope, query_key, closed_through,
                data_version, body)
           SELECT $1, scope, query_key, $2, $3, body::json
             FROM unnest($4::text[], $5::text[], $6::text[]) AS b (scope, query_key, body)
           ON CONFLICT DO NOTHING""",
        network,
        closed_through,
        version,
        [scope for scope, _, _ in bodies],
        [key for _, key, _ in bodies],
        [body for _, _, body in bodies],
    )
    # The same queries' older answers: no reader asks for them again, warmed or not.
    await conn.execute(
        """DELETE FROM published_result p
             USING unnest($4::text[], $5::text[]) AS b (scope, query_key)
            WHERE p.network_id = $1 AND p.scope = b.scope AND p.query_key = b.query_key
              AND (p.closed_through, p.data_version) < ($2, $3)""",
        network,
        closed_through,
        version,
        [scope for scope, _, _ in bodies],
        [key for _, key, _ in bodies],
    )


async def stale_networks(conn: asyncpg.Connection, closed_through: date) -> list[str]:
    """Networks (system scope 'results') whose results were not all warmed for the current
    closed month and data version; the longest waiting first."""
    rows = await conn.fetch(
        """SELECT network_id FROM result_version
            WHERE warmed_through IS DISTINCT FROM $1 OR warmed_version IS DISTINCT FROM data_version
            ORDER BY changed_at""",
        closed_through,
    )
    return [r["network_id"] for r in rows]


@asynccontextmanager
async def warm_lock(pool: asyncpg.Pool, network: str) -> AsyncIterator[bool]:
    """The network's warm lock, held by a pooled connection's session while the body runs
    (True), or another replica's (False): one replica warms a network at a time. The pool
    resets no session (``database.keep_session``), so a lock not surely released ends with its
    connection."""
    key = _WARM_LOCK + network
    async with pool.acquire() as conn:
        held: bool | None = None  # None: not known whether the server granted it
        try:
            held = await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)
            yield bool(held)
        finally:
            if held is None:
                conn.terminate()
            elif held:
                try:
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
                except BaseException:
                    conn.terminate()
                    raise


async def drop_stale(
    conn: asyncpg.Connection, network: str, closed_through: date
) -> datetime | None:
    """Drop what no current key reads any more (an earlier closed month, an earlier version);
    when the network is still to be warmed, when its version last moved."""
    await conn.execute(
        f"""DELETE FROM published_result
             WHERE network_id = $1 AND (closed_through, data_version) < ($2, {_VERSION})""",
        network,
        closed_through,
    )
    changed: datetime | None = await conn.fetchval(
        """SELECT changed_at FROM result_version
            WHERE network_id = $1
              AND (warmed_through IS DISTINCT FROM $2
                   OR warmed_version IS DISTINCT FROM data_version)""",
        network,
        closed_through,
    )
    return changed


async def first_activity(conn: asyncpg.Connection, network: str) -> datetime | None:
    """The earliest instant any published result reads (a request, an adverse event, a
    certification): no period before it holds anything."""
    found: datetime | None = await conn.fetchval(
        """SELECT least(
                (SELECT min(requested_at) FROM support_case WHERE network_id = $1),
                (SELECT min(reported_at) FROM adverse_event WHERE network_id = $1),
                (SELECT min(certified_at) FROM certification_period WHERE network_id = $1))""",
        network,
    )
    return found


async def hospitals(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[str]:
    """The hospitals with requests or certified peers in the period: a coordinator's scopes."""
    rows = await conn.fetch(
        """SELECT hospital_id FROM support_case
            WHERE requested_at >= $1 AND requested_at < $2
           UNION
           SELECT hospital_id FROM certification_period
            WHERE certified_at < $2 AND valid_until > $1
           ORDER BY 1""",
        start,
        end,
    )
    return [r["hospital_id"] for r in rows]


async def warmed(
    conn: asyncpg.Connection, network: str, closed_through: date, version: int
) -> None:
    """Record the warm done, and drop what no current key can read any more."""
    await conn.execute(
        """UPDATE result_version SET warmed_through = $2, warmed_version = $3
            WHERE network_id = $1 AND data_version = $3""",
        network,
        closed_through,
        version,
    )
    await conn.execute(
        """DELETE FROM published_result
            WHERE network_id = $1 AND (closed_through < $2 OR data_version < $3)""",
        network,
        closed_through,
        version,
    )
