"""Issue #3, journeys 1 and 2, on the real bus: a FHIR AdverseEvent (R4, then R5) with three
involved practitioners and a patient's name. Intake offers support to all three; matching
offers each case to a peer under the hard rules (never from the same unit, never someone involved)
preferring the same discipline; the patient's name and the narrative appear in no database and on
no topic."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from huddle_e2e.fhir_documents import NARRATIVE, PATIENT, Documents
from huddle_e2e.harness import eventually, migrate_service, running_app, service_settings
from huddle_e2e.privacy import bytes_on_the_bus, database_hits
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant
from huddle_training.service import DEFINITION as TRAINING

pytestmark = pytest.mark.e2e

# (staff ref, unit, discipline, is a certified peer)
STAFF = [
    ("E-NURSE", "icu", "nurse", False),
    ("E-DOC", "icu", "physician", True),  # involved, and a peer: never offered these cases
    ("E-THEATRE", "theatres", "nurse", False),
    ("P-NURSE-SURG", "surgery", "nurse", True),
    ("P-NURSE-ICU", "icu", "nurse", True),  # same unit as two of the requesters
    ("P-DOC-ONC", "oncology", "physician", True),
]
INVOLVED = ["E-NURSE", "E-DOC", "E-THEATRE"]


@pytest.mark.parametrize("release", ["r4", "r5"])
async def test_fhir_event_offers_support_to_everyone_involved_under_the_hard_rules(
    release: str, database_url: str, topics: str, local_issuer: LocalIssuer
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"

    def bearer(role: str, subject: str | None = None, hospital: str | None = "st-mary") -> dict:
        token = local_issuer.mint(role=role, network=network, hospital=hospital, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    definitions = (TRAINING, INTAKE, MATCHING)
    settings = {
        d.name: service_settings(
            d, database_url=database_url, kafka_bootstrap=topics, jwks_file=local_issuer.jwks_path
        )
        for d in definitions
    }
    for d in definitions:
        await migrate_service(d, settings[d.name])
    key = settings["intake"].pseudonym_key
    who = {ref: pseudonym_for(key, network, ref) for ref, *_ in STAFF}

    async with contextlib.AsyncExitStack() as stack:
        apps = {
            d.name: await stack.enter_async_context(running_app(d, settings[d.name]))
            for d in definitions
        }
        training, intake, matching = (apps[n][1] for n in ("training", "intake", "matching"))
        matching_app = apps["matching"][0]
        admin = bearer("network_admin", hospital=None)
        csv = "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name\n"
        csv += "".join(
            f"{ref},st-mary,{unit},{discipline},,,,\n" for ref, unit, discipline, _ in STAFF
        )
        imported = await intake.post(
            "/v1/directory/import", content=csv, headers={**admin, "Content-Type": "text/csv"}
        )
        assert imported.status_code == 200, imported.text
        for ref, unit, discipline, is_peer in STAFF:
            if not is_peer:
                continue
            peer = await training.post(
                "/v1/peers",
                headers=bearer("coordinator"),
                json={
                    "staff_ref": ref,
                    "unit_id": unit,
                    "discipline": discipline,
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

        async def on_call() -> bool:
            ok = True
            for ref, _, _, is_peer in STAFF:
                if is_peer:
                    shift = await matching.post(
                        "/v1/rota/shifts",
                        headers=bearer("coordinator"),
                        json={
                            "peer": who[ref],
                            "hospital_id": "st-mary",
                            "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                            "ends_at": (datetime.now(UTC) + timedelta(hours=4)).isoformat(),
                        },
                    )
                    ok &= shift.status_code == 201
            return ok

        await eventually(on_call, what="every peer on matching's roster and rota")

        documents = Documents()
        event_id = f"INC-{uuid.uuid4().hex[:8]}"
        document = (documents.r4 if release == "r4" else documents.r5)(
            event_id=event_id, staff=INVOLVED
        )
        reported = await intake.post(
            "/v1/adverse-events",
            json=document,
            headers={
                **bearer("reporter", "incident-system"),
                "Content-Type": "application/fhir+json",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        assert reported.status_code == 201, reported.text
        assert reported.json()["support_requests"] == 3

        offers: dict[str, str] = {}

        async def offered() -> bool:
            async with matching_app.state.runtime.unit_of_work(Tenant(network)) as uow:
                rows = await uow.conn.fetch(
                    """SELECT r.requester, o.peer FROM offer o JOIN support_request r USING (case_id)
                        WHERE o.status = 'open'"""
                )
            offers.update({r["requester"]: r["peer"] for r in rows})
            return len(offers) == 3

        await eventually(offered, what="an offer for each of the three outreach requests")
        by_requester = {ref: offers[who[ref]] for ref in INVOLVED}
        involved = {who[ref] for ref in INVOLVED}
        assert not involved & set(by_requester.values()), "someone involved was offered a case"
        # Never from the requester's unit: the ICU peer is not offered the ICU staff's cases.
        assert by_requester["E-NURSE"] != who["P-NURSE-ICU"]
        assert by_requester["E-DOC"] != who["P-NURSE-ICU"]
        # Like with like: the physician gets the physician, the nurses get nurses.
        assert by_requester["E-DOC"] == who["P-DOC-ONC"]
        assert by_requester["E-NURSE"] == who["P-NURSE-SURG"]
        assert by_requester["E-THEATRE"] in {who["P-NURSE-SURG"], who["P-NURSE-ICU"]}

    assert (
        await database_hits(
            database_url, [PATIENT, NARRATIVE], exclude_topics=["huddle.inbound.adverse-events.v1"]
        )
        == []
    )
    bus = await bytes_on_the_bus(topics)
    assert event_id.encode() not in bus  # not even the reporter's own reference
    for secret in (PATIENT, NARRATIVE, "E-NURSE", "E-DOC"):
        assert secret.encode() not in bus, secret
