"""The support journey across four services on the real bus (issue #3, journey 7): training certifies peers, a worker
asks for urgent support, matching offers the case to the on-call nurse (not from the worker's
unit), the peer accepts, sessions opens the case, a contact is recorded, the case is closed and
matching releases the peer's load."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from huddle_e2e.harness import eventually, migrate_service, running_app, service_settings
from huddle_intake.application.request_journey import purge_due
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant
from huddle_sessions.application.cases import Sessions
from huddle_sessions.domain.follow_up import FollowUpSchedule
from huddle_sessions.service import DEFINITION as SESSIONS
from huddle_training.service import DEFINITION as TRAINING

pytestmark = pytest.mark.e2e


async def test_request_offer_accept_case_contact_close_release(
    database_url: str, topics: str, local_issuer: LocalIssuer
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"
    definitions = (TRAINING, INTAKE, MATCHING, SESSIONS)
    settings = {
        d.name: service_settings(
            d, database_url=database_url, kafka_bootstrap=topics, jwks_file=local_issuer.jwks_path
        )
        for d in definitions
    }
    for d in definitions:
        await migrate_service(d, settings[d.name])

    def bearer(role: str, subject: str | None = None, hospital: str | None = "st-mary") -> dict:
        token = local_issuer.mint(role=role, network=network, hospital=hospital, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    async with contextlib.AsyncExitStack() as stack:
        apps = {
            d.name: await stack.enter_async_context(running_app(d, settings[d.name]))
            for d in definitions
        }
        training, intake = apps["training"][1], apps["intake"][1]
        matching_app, matching = apps["matching"]
        sessions = apps["sessions"][1]
        coordinator = bearer("coordinator")

        for ref, discipline in (("PEER-NURSE", "nurse"), ("PEER-DOC", "physician")):
            registered = await training.post(
                "/v1/peers",
                headers=coordinator,
                json={
                    "staff_ref": ref,
                    "unit_id": "surgery",
                    "discipline": discipline,
                    "languages": ["en"],
                },
            )
            assert registered.status_code == 201, registered.text
            certified = await training.post(
                f"/v1/peers/{registered.json()['peer']}/certifications",
                headers=coordinator,
                json={},
            )
            assert certified.status_code == 201, certified.text
        nurse = pseudonym_for(settings["matching"].pseudonym_key, network, "PEER-NURSE")

        async def roster_size() -> bool:
            async with matching_app.state.runtime.unit_of_work(Tenant(network)) as uow:
                return await uow.conn.fetchval("SELECT count(*) FROM peer") == 2

        await eventually(roster_size, what="matching's roster projection")
        for ref in ("PEER-NURSE", "PEER-DOC"):
            shift = await matching.post(
                "/v1/rota/shifts",
                headers=coordinator,
                json={
                    "peer": pseudonym_for(settings["matching"].pseudonym_key, network, ref),
                    "hospital_id": "st-mary",
                    "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                    "ends_at": (datetime.now(UTC) + timedelta(hours=8)).isoformat(),
                },
            )
            assert shift.status_code == 201, shift.text

        asked = await intake.post(
            "/v1/support-requests",
            headers=bearer("worker", "W-77"),
            json={
                "unit_id": "icu",
                "discipline": "nurse",
                "urgency": "urgent",
                "preferred_mode": "video",
                "contact": {"phone": "+44 7700 900321"},
            },
        )
        assert asked.status_code == 201, asked.text
        case_id = asked.json()["case_id"]

        peer_headers = bearer("peer", "PEER-NURSE")
        offers: list = []

        async def offered() -> bool:
            offers[:] = (await matching.get("/v1/offers", headers=peer_headers)).json()
            return bool(offers)

        await eventually(offered, what="an offer to the on-call nurse")
        assert offers[0]["case_id"] == case_id
        accepted = await matching.post(
            f"/v1/offers/{offers[0]['offer_id']}/accept", headers=peer_headers
        )
        assert accepted.status_code == 200 and accepted.json()["mode"] == "video"

        async def case_opened() -> bool:
            return bool((await sessions.get("/v1/cases", headers=peer_headers)).json())

        await eventually(case_opened, what="sessions opens the case")
        # Journey 7: two contacts, a follow-up kept, a referral, closed; all on the timeline.
        sessions_app = apps["sessions"][0]
        sessions_app.state.sessions = Sessions(
            schedule=FollowUpSchedule(offsets=(timedelta(seconds=1), timedelta(days=7)))
        )
        now = datetime.now(UTC)
        for started, planned in ((now, True), (now + timedelta(seconds=2), False)):
            contact = await sessions.post(
                f"/v1/cases/{case_id}/contacts",
                headers=peer_headers,
                json={
                    "started_at": started.isoformat(),
                    "duration_minutes": 1,
                    "mode": "video",
                    "follow_up_planned": planned,
                },
            )
            assert contact.status_code == 201, contact.text
        catalogue = [
            {"resource": "psychologist", "label": "Staff psychology", "how_to_reach": "ext. 2210"}
        ]
        assert (
            await sessions.put(
                "/v1/hospitals/st-mary/referral-catalogue", json=catalogue, headers=coordinator
            )
        ).status_code == 204
        referral = await sessions.post(
            f"/v1/cases/{case_id}/referrals",
            headers=peer_headers,
            json={"resource": "psychologist"},
        )
        assert referral.status_code == 201, referral.text
        case = (await sessions.get(f"/v1/cases/{case_id}", headers=peer_headers)).json()
        assert [f["done_at"] is not None for f in case["follow_ups"]] == [True, False]
        assert (
            await sessions.post(f"/v1/cases/{case_id}/close", headers=peer_headers)
        ).status_code == 200

        worker = bearer("worker", "W-77")

        async def timeline_complete() -> bool:
            view = (await intake.get(f"/v1/support-requests/{case_id}", headers=worker)).json()
            return view["status"] == "closed" and len(view["timeline"]) == 7

        await eventually(timeline_complete, what="the worker's whole timeline")
        view = (await intake.get(f"/v1/support-requests/{case_id}", headers=worker)).json()
        steps = [s["step"] for s in view["timeline"]]
        # Steps are listed in the order intake learned of them. Each topic keeps its own order;
        # the referral has its own topic, so it may arrive before, between or after the others.
        assert steps[0] == "requested"
        assert [s for s in steps[1:] if s != "referred"] == [
            "offered",
            "matched",
            "contact",
            "contact",
            "closed",
        ]
        assert steps.count("referred") == 1

        # Contact details go once the retention period after closing has passed.
        intake_app = apps["intake"][0]
        assert (
            await purge_due(intake_app.state.runtime, datetime.now(UTC) + timedelta(seconds=1)) == 1
        )
        released_contact = await intake.get(
            f"/v1/support-requests/{case_id}/contact-details", headers=peer_headers
        )
        assert released_contact.status_code == 404

        async def released() -> bool:
            async with matching_app.state.runtime.unit_of_work(Tenant(network)) as uow:
                row = await uow.conn.fetchrow(
                    """SELECT p.active_cases, r.status FROM peer p, support_request r
                        WHERE p.pseudonym = $1 AND r.case_id = $2""",
                    nurse,
                    uuid.UUID(case_id),
                )
            return row is not None and (row["active_cases"], row["status"]) == (0, "closed")

        await eventually(released, what="matching releases the peer's load")
