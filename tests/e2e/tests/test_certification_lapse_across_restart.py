"""A certification lapses on time across a crash of training, exactly once, and matching stops
offering the peer.

Training runs as its own OS process with a half-second lapse poll; intake and matching run
in-process with their consumers on. A peer is certified until a few seconds from now and is
offered a case; training is SIGKILLed before the certification ends and started again only after
it has ended. The restarted training publishes exactly one CertificationLapsed, dated at the end
of validity, and shows the peer lapsed; matching withdraws the open offer and no longer offers the
case to the peer. A second restart publishes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from huddle_contracts.events import CertificationLapsed
from huddle_contracts.topics import PEER_CERTIFICATION
from huddle_e2e.harness import (
    ServiceProcess,
    eventually,
    migrate_service,
    running_app,
    service_settings,
)
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING
from huddle_training.service import DEFINITION as TRAINING

pytestmark = pytest.mark.e2e

VALID_FOR = timedelta(seconds=6)
"""How long the certification lasts from when it is recorded: long enough for matching to hear
of the peer and offer them a case, short enough for the test."""
LAPSE_POLL_SECONDS = 0.5
LAPSED = CertificationLapsed.event_type


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_certification_lapses_on_time_across_a_restart_exactly_once_and_is_not_offered(
    database_url: str, topics: str, local_issuer: LocalIssuer, tmp_path: Path
) -> None:
    network = f"net-{uuid.uuid4().hex[:8]}"
    # A second network, for a peer whose certification ends while training runs (kept apart so
    # that matching never offers it the case above).
    running_network = f"net-{uuid.uuid4().hex[:8]}"

    def bearer(
        role: str,
        subject: str | None = None,
        hospital: str | None = "st-mary",
        *,
        tenant: str = network,
    ) -> dict[str, str]:
        token = local_issuer.mint(role=role, network=tenant, hospital=hospital, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    settings = {
        d.name: service_settings(
            d, database_url=database_url, kafka_bootstrap=topics, jwks_file=local_issuer.jwks_path
        )
        for d in (TRAINING, INTAKE, MATCHING)
    }
    for d in (TRAINING, INTAKE, MATCHING):
        await migrate_service(d, settings[d.name])

    port = free_port()
    training = ServiceProcess(
        "training",
        "serve",
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": topics,
            "HUDDLE_AUTH_JWKS_FILE": str(local_issuer.jwks_path),
            "HUDDLE_ENVIRONMENT": "test",
            "HUDDLE_HTTP_PORT": str(port),
            "HUDDLE_DELIVERY_RELAY_POLL_SECONDS": "0.2",
            "HUDDLE_TRAINING_LAPSE_POLL_SECONDS": str(LAPSE_POLL_SECONDS),
        },
        tmp_path,
    )
    coordinator = bearer("coordinator")
    training.start()
    try:
        async with (
            running_app(INTAKE, settings["intake"]) as (_, intake),
            running_app(MATCHING, settings["matching"]) as (_, matching),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as trainer,
        ):

            async def ready(client: httpx.AsyncClient) -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get("/readyz")).status_code == 200
                return False

            await eventually(lambda: ready(trainer), seconds=60, what="training ready")
            await eventually(lambda: ready(matching), seconds=60, what="matching's consumer ready")

            # -- a peer certified for a few seconds, known to matching and offered a case -----
            registered = await trainer.post(
                "/v1/peers",
                headers=coordinator,
                json={
                    "staff_ref": "PEER-LAPSE-1",
                    "unit_id": "surgery",
                    "discipline": "nurse",
                    "languages": ["en"],
                },
            )
            assert registered.status_code == 201, registered.text
            peer = registered.json()["peer"]
            valid_until = datetime.now(UTC) + VALID_FOR
            certified = await trainer.post(
                f"/v1/peers/{peer}/certifications",
                headers=coordinator,
                json={"valid_until": valid_until.isoformat()},
            )
            assert certified.status_code == 201, certified.text

            async def on_matchings_roster() -> bool:  # 404 until PeerCertified has arrived
                answer = await matching.put(
                    "/v1/peers/me/availability",
                    headers=bearer("peer", "PEER-LAPSE-1", None),
                    json={"paused": False},
                )
                return answer.status_code == 204

            await eventually(on_matchings_roster, seconds=10, what="matching knows the peer")

            asked = await intake.post(
                "/v1/support-requests",
                headers=bearer("worker", "E-LAPSE-1"),
                json={"unit_id": "icu", "discipline": "nurse", "urgency": "routine"},
            )
            assert asked.status_code == 201, asked.text
            case_id = asked.json()["case_id"]

            async def explanation() -> dict[str, Any]:
                got = await matching.get(f"/v1/cases/{case_id}/candidates", headers=coordinator)
                return got.json() if got.status_code == 200 else {}

            async def offered_to_the_peer() -> bool:
                offers = (await explanation()).get("offers", [])
                return [(o["peer"], o["status"]) for o in offers] == [(peer, "open")]

            await eventually(offered_to_the_peer, seconds=10, what="the case offered to the peer")

            # -- training crashes while the certification is current ------------------------
            assert datetime.now(UTC) < valid_until, "the setup outlasted the certification"
            training.kill()
            assert await lapses_of(topics, peer) == [], "lapsed before its validity ended"

            # Matching's own rule already stops new offers at valid_until, but the open offer
            # stays until matching hears of the lapse.
            await asyncio.sleep((valid_until - datetime.now(UTC)).total_seconds() + 0.5)
            view = await explanation()
            assert [(o["peer"], o["status"]) for o in view["offers"]] == [(peer, "open")]
            assert "certification is not current" in excluded_because(view, peer)

            # -- restarted after the end of validity: exactly one lapse, dated on time ------
            restarted_at = datetime.now(UTC)
            assert restarted_at > valid_until
            training.start()

            async def lapse_published() -> bool:
                return bool(await lapses_of(topics, peer))

            await eventually(lapse_published, seconds=20, what="the lapse published")
            [record] = await lapses_of(topics, peer)
            lapse = CertificationLapsed.model_validate_json(record.value)
            assert (lapse.network_id, lapse.peer) == (network, peer)
            assert lapse.lapsed_at == valid_until
            # Sent by the restarted process, soon after it started (the first scheduler round).
            published_at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
            assert timedelta(0) < published_at - restarted_at < timedelta(seconds=15), published_at

            async def peer_in_training() -> dict[str, Any]:
                with contextlib.suppress(httpx.HTTPError):
                    got = await trainer.get(f"/v1/peers/{peer}", headers=coordinator)
                    if got.status_code == 200:
                        return dict(got.json())
                return {}

            async def lapsed_in_training() -> bool:
                return (await peer_in_training()).get("status") == "lapsed"

            await eventually(lapsed_in_training, seconds=20, what="training shows the lapse")
            shown = await peer_in_training()
            assert datetime.fromisoformat(shown["valid_until"]) == valid_until

            # -- while training runs, a certification lapses within a poll of its end -------
            other = await trainer.post(
                "/v1/peers",
                headers=bearer("coordinator", tenant=running_network),
                json={
                    "staff_ref": "PEER-LAPSE-2",
                    "unit_id": "surgery",
                    "discipline": "nurse",
                    "languages": ["en"],
                },
            )
            assert other.status_code == 201, other.text
            other_peer = other.json()["peer"]
            other_valid_until = datetime.now(UTC) + timedelta(seconds=2)
            certified = await trainer.post(
                f"/v1/peers/{other_peer}/certifications",
                headers=bearer("coordinator", tenant=running_network),
                json={"valid_until": other_valid_until.isoformat()},
            )
            assert certified.status_code == 201, certified.text

            # -- matching withdraws the offer and does not offer the peer again --------------
            async def offer_withdrawn() -> bool:
                offers = (await explanation()).get("offers", [])
                return [(o["peer"], o["status"]) for o in offers] == [(peer, "withdrawn")]

            await eventually(offer_withdrawn, seconds=15, what="matching withdraws the offer")
            view = await explanation()
            assert peer not in [c["peer"] for c in view["candidates"]]
            assert "certification is not current" in excluded_because(view, peer)
            again = await matching.post(f"/v1/cases/{case_id}/search", headers=coordinator)
            assert again.status_code == 200, again.text
            assert again.json()["offered_to"] is None
            mine = await matching.get("/v1/offers", headers=bearer("peer", "PEER-LAPSE-1", None))
            assert mine.json() == []

            async def other_lapse_published() -> bool:
                return bool(await lapses_of(topics, other_peer))

            await eventually(other_lapse_published, seconds=10, what="the running lapse")
            [other_record] = await lapses_of(topics, other_peer)
            other_lapse = CertificationLapsed.model_validate_json(other_record.value)
            assert other_lapse.lapsed_at == other_valid_until
            # On time: the scheduler polls every LAPSE_POLL_SECONDS (the default is a minute).
            late = datetime.fromtimestamp(other_record.timestamp / 1000, UTC) - other_valid_until
            assert timedelta(0) <= late < timedelta(seconds=2), late

            # -- a second restart publishes nothing more -------------------------------------
            # A clean stop this time: after a SIGKILL the new process waits out the dead
            # member's Kafka session (10 s) before it starts, which adds time and proves nothing
            # more about the scheduler, whose state is in PostgreSQL either way.
            assert training.terminate() in (0, -signal.SIGTERM), training.log_tail()
            training.start()
            await eventually(lapsed_in_training, seconds=30, what="training back after a restart")
            # Several lapse rounds of the restarted scheduler, then whatever they wrote is sent.
            await asyncio.sleep(4 * LAPSE_POLL_SECONDS)
            await eventually(
                lambda: outbox_drained(database_url, peer, other_peer),
                seconds=10,
                what="training's outbox drained after the restart",
            )
            assert [r.offset for r in await lapses_of(topics, peer)] == [record.offset]
            assert [r.offset for r in await lapses_of(topics, other_peer)] == [other_record.offset]

        assert training.terminate() in (0, -signal.SIGTERM), training.log_tail()
        assert "lapse round failed" not in training.log_path.read_text(errors="replace")
    finally:
        training.terminate()


def excluded_because(view: dict[str, Any], peer: str) -> list[str]:
    return [r for e in view["excluded"] if e["peer"] == peer for r in e["reasons"]]


async def outbox_drained(database_url: str, *peers: str) -> bool:
    """No row for these peers is waiting in training's outbox (the relay has sent them)."""
    conn = await asyncpg.connect(database_url)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM training.outbox WHERE key = ANY($1::bytea[])",
            [p.encode() for p in peers],
        )
    finally:
        await conn.close()
    return bool(waiting == 0)


async def lapses_of(bootstrap: str, peer: str) -> list[ConsumerRecord]:
    """Every CertificationLapsed record keyed by this peer, from the beginning of the topic to
    its current end (other tests' peers have other keys: pseudonyms differ per network)."""
    consumer = AIOKafkaConsumer(
        PEER_CERTIFICATION.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()  # without a group: every partition of the topic, from the beginning
    found: list[ConsumerRecord] = []
    try:
        partitions = consumer.assignment()
        assert partitions, "no partition of the topic assigned"
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                found += [
                    r
                    for r in records
                    if r.offset < ends[tp]
                    and r.key == peer.encode()
                    and dict(r.headers).get("ce_type") == LAPSED.encode()
                ]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found
