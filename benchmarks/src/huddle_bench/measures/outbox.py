"""Goal #6: the outbox relay publishing a full outbox, against the raw producer's ceiling."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import asyncpg
from huddle_runtime import database
from huddle_runtime.metrics import Metrics
from huddle_runtime.outbox import OutboxRelay, add_to_outbox
from huddle_runtime.settings import ServiceSettings

from huddle_bench.context import Context
from huddle_bench.measures.events import offer_messages, record_bytes
from huddle_bench.measures.kafka import THROUGHPUT, ensure_topics, huddle_producer, send_all
from huddle_bench.measures.roster_db import migrated
from huddle_bench.model import RunResult


@dataclass(frozen=True)
class RelayParams:
    rows: int
    batch_size: int = 500  # HUDDLE_DELIVERY_RELAY_BATCH_SIZE's default
    fill_chunk: int = 2_000
    timeout_s: float = 300.0


# Same record count as the raw producer baseline, so the ratio compares like with like.
RELAY = {smoke: RelayParams(rows=p.messages) for smoke, p in THROUGHPUT.items()}


async def fill_outbox(settings: ServiceSettings, ctx: Context, params: RelayParams) -> None:
    """An empty outbox, then ``rows`` real OfferMade records, as matching's use cases write them."""
    messages = offer_messages(ctx, params.rows)
    conn = await database.connect(settings)
    try:
        await conn.execute("TRUNCATE outbox")
        with ctx.task("filling the outbox", len(messages)) as bar:
            for start in range(0, len(messages), params.fill_chunk):
                chunk = messages[start : start + params.fill_chunk]
                async with conn.transaction():
                    await add_to_outbox(conn, chunk)
                bar.advance(len(chunk))
        await conn.execute("VACUUM ANALYZE outbox")  # the relay starts on a settled table
    finally:
        await conn.close()


async def outbox_relay(ctx: Context) -> RunResult:
    params = RELAY[ctx.smoke]
    settings = await migrated(ctx)
    await ensure_topics(ctx)
    await fill_outbox(settings, ctx, params)

    pool = await database.create_pool(settings)
    producer = huddle_producer(ctx, "bench-relay")
    await producer.start()
    relay = OutboxRelay(
        schema=settings.schema_name,
        pool=pool,
        producer=producer,
        connect=lambda: database.connect(settings),
        metrics=Metrics(),
        batch_size=params.batch_size,
        poll_seconds=1.0,
    )
    try:
        # Warm the producer like the baseline does (connections, metadata), outside the timing.
        await send_all(producer, offer_messages(ctx, THROUGHPUT[ctx.smoke].warmup))
        with ctx.task("outbox relay", params.rows) as bar:
            started = time.perf_counter()
            task = asyncio.create_task(relay.run(), name="outbox relay")
            deadline = started + params.timeout_s
            while relay.published < params.rows:
                if task.done():
                    task.result()  # raises what stopped the relay
                    raise RuntimeError("the relay stopped before publishing every row")
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"the relay published {relay.published} of {params.rows}")
                bar.update(relay.published)
                await asyncio.sleep(0.002)
            elapsed = time.perf_counter() - started
        relay.stop()
        await asyncio.wait_for(task, timeout=30)
        left = await pool.fetchval("SELECT count(*) FROM outbox")
    finally:
        relay.stop()
        await producer.stop()
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await pool.close()
    message = offer_messages(ctx, 1)[0]
    return RunResult(
        metrics={
            "msgs_per_s": params.rows / elapsed,
            "seconds": elapsed,
            "messages": params.rows,
            "batch_size": params.batch_size,
            "record_bytes": record_bytes(message),
        },
        checks={"every row published and deleted": left == 0},
    )
