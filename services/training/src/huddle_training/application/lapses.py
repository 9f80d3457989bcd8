"""Expiry emits CertificationLapsed automatically: state lives in PostgreSQL, so the scheduler
survives restarts, and each lapse is a status change under a row lock, so it never fires twice."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import structlog
from huddle_runtime.consumer import failure_reason
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant, apply_system_scope

from huddle_training.adapters import repository
from huddle_training.settings import TrainingSettings

log = structlog.get_logger(__name__)


async def lapse_due(runtime: Runtime, now: datetime) -> int:
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "lapses")
        due = await conn.fetch(
            """SELECT p.network_id, p.pseudonym FROM peer p
                WHERE p.status = 'certified'
                  AND (SELECT max(c.valid_until) FROM certification c
                        WHERE c.network_id = p.network_id AND c.peer = p.pseudonym) <= $1
                LIMIT 500""",
            now,
        )
    lapsed = 0
    for row in due:
        async with runtime.unit_of_work(Tenant(row["network_id"])) as uow:
            peer = await repository.get(uow.conn, row["pseudonym"], for_update=True)
            if peer is None:
                continue
            after, event = peer.lapse(now)
            if event is None:
                continue  # a refresher was recorded, or another replica got here first
            await repository.set_status(uow.conn, after)
            uow.publish(event)
            lapsed += 1
    return lapsed


async def lapse_certifications(runtime: Runtime) -> None:
    """The service's scheduler task; its interval is the one `configure` read from the settings."""
    settings: TrainingSettings = runtime.state["training_settings"]
    while not runtime.stopping.is_set():
        try:
            await lapse_due(runtime, datetime.now(UTC))
        except Exception as exc:  # a bad round must not stop later ones
            log.warning("lapse round failed", error=failure_reason(exc))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), settings.lapse_poll_seconds)
