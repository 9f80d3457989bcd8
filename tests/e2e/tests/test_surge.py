"""Issue #3, journey 6, on the real bus: one event involving 40 staff. Everyone is offered
support, matched as one batch with nobody over capacity, and a team debrief is called."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from huddle_e2e.harness import eventually, migrate_service, running_app, service_settings
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant
from huddle_sessions.service import DEFINITION as SESSIONS
from huddle_training.service import DEFINITION as TRAINING

pytestmark = pytest.mark.e2e

INVOLVED = 40
PEERS = 15  # capacity 3 each: 45 places for 40 people
UNITS = ("icu", "theatres", "emergency", "recovery")


async def test_a_surge_of_40_is_matched_as_a_batch_with_a_debrief_and_nobody_over_capacity(
    database_url: str, topics: str, local_issuer: LocalIssuer
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"

    def bearer(role: str, subject: str | None = None, hospital: str | None = "st-mary") -> dict:
        token = local_issuer.mint(role=role, network=network, hospital=hospital, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    definitions = (TRAINING, INTAKE, MATCHING, SESSIONS)
    settings = {
        d.name: service_settings(
            d, database_url=database_url, kafka_bootstrap=topics, jwks_file=local_issuer.jwks_path
        )
        for d in definitions
    }
    for d in definitions:
        await migrate_service(d, settings[d.name])
    key = settings["matching"].pseudonym_key

    async with contextlib.AsyncExitStack() as stack:
        apps = {
            d.name: await stack.enter_async_context(running_app(d, settings[d.name]))
            for d in definitions
        }
        training, intake, matching, sessions = (
            apps[n][1] for n in ("training", "intake", "matching", "sessions")
        )
        matching_app = apps["matching"][0]
        staff = [f"S{i:03d}" for i in range(INVOLVED)]
        peers = [f"P{i:02d}" for i in range(PEERS)]
        csv = "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name\n"
        csv += "".join(f"{ref},st-mary,{UNITS[i % 4]},nurse,,,,\n" for i, ref in enumerate(staff))
        admin = bearer("network_admin", hospital=None)
        assert (
            await intake.post(
                "/v1/directory/import", content=csv, headers={**admin, "Content-Type": "text/csv"}
            )
        ).status_code == 200
        for ref in peers:
            peer = await training.post(
                "/v1/peers",
                headers=bearer("coordinator"),
                json={
                    "staff_ref": ref,
                    "unit_id": "wards",
                    "discipline": "nurse",
                    "languages": ["en"],
                },
            )
            assert peer.status_code == 201, peer.text
            assert (
                await training.post(
                    f"/v1/peers/{peer.json()['peer']}/certifications",
                    headers=bearer("coordinator"),
                    json={},
                )
            ).status_code == 201

        async def rota() -> bool:
            ok = True
            for ref in peers:
                shift = await matching.post(
                    "/v1/rota/shifts",
                    headers=bearer("coordinator"),
                    json={
                        "peer": pseudonym_for(key, network, ref),
                        "hospital_id": "st-mary",
                        "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                        "ends_at": (datetime.now(UTC) + timedelta(hours=4)).isoformat(),
                    },
                )
                ok &= shift.status_code == 201
            return ok

        await eventually(rota, seconds=60, what="every peer on matching's roster and rota")
        reported = await intake.post(
            "/v1/adverse-events",
            headers=bearer("reporter", "incidents"),
            json={
                "reporter_event_id": f"MCI-{network}",
                "unit_ids": list(UNITS),
                "harm_level": "severe",
                "categories": ["serious_safety_event"],
                "occurred_at": datetime.now(UTC).isoformat(),
                "involved": [{"staff_ref": ref} for ref in staff],
            },
        )
        assert reported.status_code == 201, reported.text
        assert reported.json()["support_requests"] == INVOLVED
        assert reported.json()["group_debrief_requested"] is True

        load: Counter[str] = Counter()

        async def all_offered() -> bool:
            async with matching_app.state.runtime.unit_of_work(Tenant(network)) as uow:
                rows = await uow.conn.fetch("SELECT peer FROM offer WHERE status = 'open'")
            load.clear()
            load.update(r["peer"] for r in rows)
            return sum(load.values()) == INVOLVED

        await eventually(all_offered, seconds=60, what="an offer for each of the 40")
        assert max(load.values()) <= 3, "a peer was offered more cases than their capacity"
        assert len(load) >= 14  # spread over the roster, not stacked on a few

        async def debrief_called() -> bool:
            listed = (
                await sessions.get("/v1/group-sessions", headers=bearer("coordinator"))
            ).json()
            return any(
                s["format"] == "team_debrief" and s["status"] == "to_schedule" for s in listed
            )

        await eventually(debrief_called, what="a team debrief waiting to be scheduled")
