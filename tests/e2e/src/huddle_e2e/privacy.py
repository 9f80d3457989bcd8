"""Look for identifiers where they must never be: every Huddle topic (dead letters included)
and every text, JSON, array and byte column of every service's schema."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer
from huddle_contracts.topics import INBOUND_ADVERSE_EVENTS, SERVICES, TOPICS


async def bytes_on_the_bus(bootstrap: str) -> bytes:
    """Every key, value and header of every Huddle topic, concatenated; the raw inbound topic
    (and its dead letters) excepted: it is where incident systems' unfiltered reports arrive."""
    topics = [t for t in TOPICS if t is not INBOUND_ADVERSE_EVENTS]
    names = [t.name for t in topics] + [t.dead_letter for t in topics]
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    chunks: list[bytes] = []
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for records in batches.values():
                for r in records:
                    chunks += [r.key or b"", r.value or b""]
                    chunks += [k.encode() + (v or b"") for k, v in r.headers]
    finally:
        await consumer.stop()
    return b"\n".join(chunks)


async def database_hits(
    database_url: str, needles: Iterable[str], *, exclude_topics: Iterable[str] = ()
) -> list[str]:
    """``schema.table.column`` for every column of the services' schemas holding a needle in
    clear (outbox rows bound for ``exclude_topics`` are skipped: the raw inbound topic)."""
    conn = await asyncpg.connect(database_url)
    hits: list[str] = []
    try:
        columns = await conn.fetch(
            """SELECT table_schema, table_name, column_name, data_type
                 FROM information_schema.columns
                WHERE table_schema = ANY($1::text[])
                  AND data_type IN ('text', 'jsonb', 'json', 'bytea', 'ARRAY', 'character varying')""",
            list(SERVICES),
        )
        skip = list(exclude_topics)
        for c in columns:
            table = f'"{c["table_schema"]}"."{c["table_name"]}"'
            column = f'"{c["column_name"]}"'
            where = " AND topic <> ALL($2::text[])" if c["table_name"] == "outbox" else ""
            for needle in needles:
                args: list[object] = [needle] + ([skip] if where else [])
                test = (
                    f"position(convert_to($1, 'UTF8') in {column}) > 0"
                    if c["data_type"] == "bytea"
                    else f"position($1 in {column}::text) > 0"
                )
                found = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE {test}{where}", *args
                )
                if found:
                    hits.append(f"{c['table_schema']}.{c['table_name']}.{c['column_name']}")
    finally:
        await conn.close()
    return hits
