"""Issue #3, journey 4, on the real bus: the first peer declines, the second stays silent past
respond_by; the request is re-offered, then escalated naming the request and the hospital; every
offer reached its peer through a signed webhook (a real HTTP server) and an e-mail (a real SMTP
server), and the escalation reached the coordinators' pager."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from huddle_e2e.harness import eventually, migrate_service, running_app, service_settings
from huddle_e2e.receivers import smtp_receiver, webhook_receiver
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_training.service import DEFINITION as TRAINING

pytestmark = pytest.mark.e2e
SECRET = "st-mary-pager-secret-0123456789"


async def test_decline_then_silence_reoffers_then_escalates_and_everyone_is_paged(
    database_url: str, topics: str, local_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"

    def bearer(role: str, subject: str | None = None, hospital: str | None = "st-mary") -> dict:
        token = local_issuer.mint(role=role, network=network, hospital=hospital, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    with smtp_receiver() as smtp:
        monkeypatch.setenv("HUDDLE_NOTIFY_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("HUDDLE_NOTIFY_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("HUDDLE_NOTIFY_POLL_SECONDS", "0.2")
        definitions = (TRAINING, INTAKE, MATCHING)
        settings = {
            d.name: service_settings(
                d,
                database_url=database_url,
                kafka_bootstrap=topics,
                jwks_file=local_issuer.jwks_path,
            )
            for d in definitions
        }
        for d in definitions:
            await migrate_service(d, settings[d.name])
        async with contextlib.AsyncExitStack() as stack:
            hook = await stack.enter_async_context(webhook_receiver(SECRET))
            apps = {
                d.name: await stack.enter_async_context(running_app(d, settings[d.name]))
                for d in definitions
            }
            training, intake, matching = (apps[n][1] for n in ("training", "intake", "matching"))
            admin = bearer("network_admin", hospital=None)

            csv = (
                "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name\n"
                "PEER-A,st-mary,surgery,nurse,,a.peer@st-mary.example,,\n"
                "PEER-B,st-mary,oncology,nurse,,b.peer@st-mary.example,,\n"
                "E-301,st-mary,icu,nurse,,,,\n"
            )
            imported = await intake.post(
                "/v1/directory/import", content=csv, headers={**admin, "Content-Type": "text/csv"}
            )
            assert imported.status_code == 200, imported.text
            assert (
                await intake.put(
                    "/v1/hospitals/st-mary/paging-gateway",
                    headers=admin,
                    json={"url": hook.url, "secret": SECRET},
                )
            ).status_code == 204
            policy = await matching.put(
                "/v1/policy",
                headers=admin,
                json={"urgent_offer_minutes": 0.1, "urgent_first_contact_minutes": 30},
            )
            assert policy.status_code == 204

            for ref, unit in (("PEER-A", "surgery"), ("PEER-B", "oncology")):
                peer = await training.post(
                    "/v1/peers",
                    headers=bearer("coordinator"),
                    json={
                        "staff_ref": ref,
                        "unit_id": unit,
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
            key = settings["matching"].pseudonym_key
            peers = {ref: pseudonym_for(key, network, ref) for ref in ("PEER-A", "PEER-B")}

            async def rota() -> bool:
                ok = True
                for pseudonym in peers.values():
                    shift = await matching.post(
                        "/v1/rota/shifts",
                        headers=bearer("coordinator"),
                        json={
                            "peer": pseudonym,
                            "hospital_id": "st-mary",
                            "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                            "ends_at": (datetime.now(UTC) + timedelta(hours=4)).isoformat(),
                        },
                    )
                    ok &= shift.status_code == 201
                return ok

            await eventually(rota, what="both peers on matching's roster and rota")

            asked = await intake.post(
                "/v1/support-requests",
                headers=bearer("worker", "E-301"),
                json={"unit_id": "icu", "discipline": "nurse", "urgency": "urgent"},
            )
            assert asked.status_code == 201
            case_id = asked.json()["case_id"]

            offered: dict[str, list] = {}

            async def offer_for(ref: str) -> bool:
                got = (await matching.get("/v1/offers", headers=bearer("peer", ref, None))).json()
                offered[ref] = got
                return bool(got)

            async def anyone_offered() -> bool:
                return await offer_for("PEER-A") or await offer_for("PEER-B")

            await eventually(anyone_offered, what="the first offer")
            first = "PEER-A" if offered.get("PEER-A") else "PEER-B"
            declined = await matching.post(
                f"/v1/offers/{offered[first][0]['offer_id']}/decline",
                headers=bearer("peer", first, None),
            )
            assert declined.status_code == 204
            second = "PEER-B" if first == "PEER-A" else "PEER-A"
            await eventually(lambda: offer_for(second), what="the offer to the second peer")

            async def escalated() -> bool:  # silence: the 6-second offer lapses
                return any(r["body"]["kind"] == "escalation" for r in hook.received)

            await eventually(escalated, seconds=40, what="the escalation")
            candidates = (
                await matching.get(f"/v1/cases/{case_id}/candidates", headers=bearer("coordinator"))
            ).json()
            assert [o["status"] for o in candidates["offers"]] == ["declined", "expired"]
            assert candidates["status"] == "escalated"

            pages = [r for r in hook.received if r["body"]["kind"] == "offer"]
            assert len(pages) == 2 and all(r["verified"] for r in hook.received)
            [alert] = [r for r in hook.received if r["body"]["kind"] == "escalation"]
            assert case_id in alert["body"]["link"]

            async def mailed() -> bool:
                return len(smtp.mailbox.messages) >= 2

            await eventually(mailed, what="both offers e-mailed")
            # Each peer was e-mailed its offer (the silent one also got a reminder halfway).
            assert {to[0] for to, _ in smtp.mailbox.messages} == {
                "a.peer@st-mary.example",
                "b.peer@st-mary.example",
            }

            view = (
                await intake.get(
                    f"/v1/support-requests/{case_id}", headers=bearer("worker", "E-301")
                )
            ).json()
            assert [s["step"] for s in view["timeline"]][:4] == [
                "requested",
                "offered",
                "offered",
                "escalated",
            ]
