"""Tier 1 (DOMAIN.md, "The three tiers"): right after a qualifying event the manager checks in.
Intake prompts each involved person's manager and lets them record the check-in."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from huddle_contracts.vocabulary import Mode
from huddle_runtime.consumer import failure_reason
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant, apply_system_scope
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_intake.adapters import journey_repository as journey
from huddle_intake.application.paging import Pager, page_person

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Prompt:
    """A manager to prompt about one of their people's outreach request."""

    hospital_id: str
    case_id: UUID
    manager: str


async def prompt_managers(uow: UnitOfWork, prompts: Sequence[Prompt]) -> None:
    """Queue the prompts with the outreach requests (sent by the prompt scheduler)."""
    assert uow.tenant is not None
    network_id = uow.tenant.network_id
    await uow.conn.executemany(
        """INSERT INTO tier_one_check_in (id, network_id, hospital_id, case_id, manager)
           VALUES ($1, $2, $3, $4, $5)""",
        [(uuid.uuid4(), network_id, p.hospital_id, p.case_id, p.manager) for p in prompts],
    )


async def prompts_for(uow: UnitOfWork, manager: str) -> list[dict[str, Any]]:
    rows = await uow.conn.fetch(
        """SELECT id, prompted_at, checked_in_at FROM tier_one_check_in
            WHERE manager = $1 ORDER BY prompted_at DESC""",
        manager,
    )
    return [dict(r) for r in rows]


async def record_check_in(
    uow: UnitOfWork, *, check_in_id: UUID, manager: str, at: datetime, mode: Mode
) -> bool:
    """Only the prompted manager records it, once; it shows on the worker's timeline."""
    row = await uow.conn.fetchrow(
        "SELECT case_id, checked_in_at FROM tier_one_check_in WHERE id = $1 AND manager = $2"
        " FOR UPDATE",
        check_in_id,
        manager,
    )
    if row is None:
        raise LookupError(f"no check-in {check_in_id} for you")
    if row["checked_in_at"] is not None:
        return False
    await uow.conn.execute(
        "UPDATE tier_one_check_in SET checked_in_at = $2, mode = $3 WHERE id = $1",
        check_in_id,
        at,
        mode.value,
    )
    assert uow.tenant is not None
    await journey.add_step(
        uow.conn,
        network_id=uow.tenant.network_id,
        case_id=row["case_id"],
        kind="tier_one_check_in",
        at=at,
        detail={"mode": mode.value},
    )
    return True


async def send_prompts(runtime: Runtime) -> None:
    """The scheduler task: every pending prompt becomes a notification to the manager."""
    while not runtime.stopping.is_set():
        try:
            await send_due(runtime)
        except Exception as exc:  # a bad round must not stop later ones
            log.warning("tier-1 prompt round failed", error=failure_reason(exc))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), 1)


async def send_due(runtime: Runtime) -> int:
    pager: Pager = runtime.state["pager"]
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn, conn.transaction():
        await apply_system_scope(conn, "prompts")
        due = await conn.fetch(
            "SELECT network_id, id FROM tier_one_check_in WHERE NOT notified LIMIT 200"
        )
    sent = 0
    for row in due:
        async with runtime.unit_of_work(Tenant(row["network_id"])) as uow:
            prompt = await uow.conn.fetchrow(
                "SELECT * FROM tier_one_check_in WHERE id = $1 AND NOT notified"
                " FOR UPDATE SKIP LOCKED",
                row["id"],
            )
            if prompt is None:
                continue
            await page_person(
                uow,
                pager,
                kind="check_in_prompt",
                recipient=prompt["manager"],
                network_id=row["network_id"],
                hospital_id=prompt["hospital_id"],
                link=f"/check-ins/{prompt['id']}",
                respond_by=None,
                notification_id=uuid.uuid5(prompt["id"], "check-in-prompt"),
            )
            await uow.conn.execute(
                "UPDATE tier_one_check_in SET notified = true WHERE id = $1", prompt["id"]
            )
            sent += 1
    return sent
