"""Deadlines that survive restarts: lapsed offers and stalled surge batches live in PostgreSQL;
every replica polls them with SKIP LOCKED-safe, idempotent steps."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog
from huddle_runtime.consumer import failure_reason
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant, apply_system_scope

from huddle_matching.adapters import repository as repo
from huddle_matching.application.search import Matching, lapse, offer_surge

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
BATCH_SETTLE = timedelta(seconds=5)
"""How long a surge batch waits for the rest of the event's requests before matching anyway."""


async def deadlines(runtime: Runtime) -> None:
    """The service's scheduler task; its Matching (policy, clock) is the one `configure` built."""
    while not runtime.stopping.is_set():
        try:
            await run_due(runtime, runtime.state["matching"])
        except Exception as exc:  # a bad round must not stop future rounds
            log.warning("deadline round failed", error=failure_reason(exc))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), POLL_SECONDS)


async def run_due(runtime: Runtime, matching: Matching) -> int:
    """One round: lapse every offer past respond_by, flush surge batches that stopped growing."""
    assert runtime.pool is not None
    now = matching.clock()
    async with runtime.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "deadlines")
        offers = await repo.due_offers(conn, now, limit=200)
        batches = await repo.stalled_batches(conn, now - BATCH_SETTLE)
    handled = 0
    for network_id, offer_id in offers:
        async with runtime.unit_of_work(Tenant(network_id)) as uow:
            handled += await lapse(uow, matching, offer_id)
    for network_id, adverse_event_id in batches:
        async with runtime.unit_of_work(Tenant(network_id)) as uow:
            handled += await offer_surge(uow, matching, adverse_event_id)
    return handled
