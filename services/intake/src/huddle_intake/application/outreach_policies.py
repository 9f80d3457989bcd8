"""The outreach policy of a network and its hospitals, read and set in one unit of work each."""

from __future__ import annotations

from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime

from huddle_intake.adapters import adverse_event_repository as events
from huddle_intake.domain.outreach_policy import OutreachPolicy, PolicySource, policy_in_force


async def policy_for(
    *, runtime: Runtime, principal: Principal, hospital_id: str | None
) -> tuple[OutreachPolicy, PolicySource]:
    """The policy in force for the hospital (or the network's, without one) and its source."""
    async with runtime.unit_of_work(principal.tenant) as uow:
        network, hospital = await events.outreach_policies(
            uow.conn, network_id=principal.network_id, hospital_id=hospital_id
        )
    return policy_in_force(network=network, hospital=hospital)


async def set_policy(
    *,
    runtime: Runtime,
    principal: Principal,
    hospital_id: str | None,
    policy: OutreachPolicy,
    updated_by: str,
) -> None:
    async with runtime.unit_of_work(principal.tenant) as uow:
        await events.put_outreach_policy(
            uow.conn,
            network_id=principal.network_id,
            hospital_id=hospital_id,
            policy=policy,
            updated_by=updated_by,
        )


async def remove_hospital_policy(
    *, runtime: Runtime, principal: Principal, hospital_id: str
) -> bool:
    """The hospital follows the network's policy again; False when it had none of its own."""
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await events.delete_hospital_policy(
            uow.conn, network_id=principal.network_id, hospital_id=hospital_id
        )
