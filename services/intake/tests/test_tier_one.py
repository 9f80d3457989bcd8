"""Tier 1: after a qualifying event the involved person's manager is prompted to check in, and
records it; the check-in shows on the worker's timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from huddle_e2e.harness import eventually
from huddle_intake.application.tier_one import send_due
from huddle_local.issuer import LocalIssuer
from huddle_runtime.notifications import inbox
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration


async def test_the_manager_is_prompted_and_records_a_tier_one_check_in(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = f"net-{uuid.uuid4().hex[:8]}"

    def bearer(role: str, subject: str, hospital: str | None = "st-mary") -> dict[str, str]:
        token = local_issuer.mint(role=role, network=network, hospital=hospital, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    csv = (
        "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name\n"
        "MGR-1,st-mary,icu,nurse,,mgr@st-mary.example,,\n"
        "E-T1,st-mary,icu,nurse,MGR-1,,,\n"
    )
    imported = await client.post(
        "/v1/directory/import",
        content=csv,
        headers={**bearer("network_admin", "idp", None), "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    reported = await client.post(
        "/v1/adverse-events",
        headers=bearer("reporter", "incidents"),
        json={
            "reporter_event_id": f"INC-{network}",
            "unit_ids": ["icu"],
            "harm_level": "death",
            "categories": ["unexpected_death"],
            "occurred_at": datetime.now(UTC).isoformat(),
            "involved": [{"staff_ref": "E-T1"}],
        },
    )
    assert reported.status_code == 201, reported.text

    manager = pseudonym_for(app.state.settings.pseudonym_key, network, "MGR-1")

    async def prompted() -> bool:
        await send_due(app.state.runtime)
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            return len(await inbox(uow, manager)) == 1

    await eventually(prompted, what="the manager's prompt")
    [prompt] = (await client.get("/v1/check-ins", headers=bearer("worker", "MGR-1"))).json()
    someone = await client.post(
        f"/v1/check-ins/{prompt['id']}",
        headers=bearer("worker", "E-OTHER"),
        json={"at": datetime.now(UTC).isoformat(), "mode": "in_person"},
    )
    assert someone.status_code == 404
    recorded = await client.post(
        f"/v1/check-ins/{prompt['id']}",
        headers=bearer("worker", "MGR-1"),
        json={"at": datetime.now(UTC).isoformat(), "mode": "in_person"},
    )
    assert recorded.json()["recorded"] is True
    again = await client.post(
        f"/v1/check-ins/{prompt['id']}",
        headers=bearer("worker", "MGR-1"),
        json={"at": datetime.now(UTC).isoformat(), "mode": "in_person"},
    )
    assert again.json()["recorded"] is False

    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        case_id = await uow.conn.fetchval(
            "SELECT case_id FROM tier_one_check_in WHERE id = $1", uuid.UUID(prompt["id"])
        )
    timeline = (
        await client.get(f"/v1/support-requests/{case_id}", headers=bearer("worker", "E-T1"))
    ).json()["timeline"]
    assert [s["step"] for s in timeline] == ["requested", "tier_one_check_in"]
