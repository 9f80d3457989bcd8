"""Exactly once, proven by killing things: 2,000 support requests in flight while matching is
SIGKILLed twice and the intake relay once; every acknowledged request is recorded by matching
exactly once. A poison record lands in the dead-letter topic and the consumer carries on."""

from __future__ import annotations

import asyncio
import signal
import socket
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from huddle_contracts.topics import SUPPORT_REQUESTED
from huddle_e2e.harness import ServiceProcess, eventually, migrate_service, service_settings
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING

pytestmark = pytest.mark.e2e

REQUESTS = 2_000
CONCURRENCY = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_every_acknowledged_request_is_recorded_exactly_once_through_crashes(
    database_url: str, topics: str, local_issuer: LocalIssuer, tmp_path: Path
) -> None:
    for definition in (INTAKE, MATCHING):
        await migrate_service(
            definition,
            service_settings(
                definition,
                database_url=database_url,
                kafka_bootstrap=topics,
                jwks_file=local_issuer.jwks_path,
            ),
        )
    intake_port, matching_port = free_port(), free_port()
    common = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": topics,
        "HUDDLE_AUTH_JWKS_FILE": str(local_issuer.jwks_path),
        "HUDDLE_ENVIRONMENT": "test",
        "HUDDLE_DELIVERY_RELAY_POLL_SECONDS": "0.2",
    }
    api = ServiceProcess(
        "intake",
        "serve",
        {**common, "HUDDLE_HTTP_PORT": str(intake_port), "HUDDLE_DELIVERY_RELAY_ENABLED": "false"},
        tmp_path,
    )
    relay = ServiceProcess("intake", "relay", common, tmp_path)
    matching = ServiceProcess(
        "matching", "serve", {**common, "HUDDLE_HTTP_PORT": str(matching_port)}, tmp_path
    )
    processes = [api, relay, matching]
    for p in processes:
        p.start()
    try:
        await eventually(lambda: ready(intake_port), seconds=60, what="intake ready")
        await eventually(lambda: ready(matching_port), seconds=60, what="matching ready")

        acknowledged: list[uuid.UUID] = []
        secrets = {"phone": "+1 555 0199 7788", "email": "casey.morgan@hospital.example"}
        token = local_issuer.mint(
            role="worker", network="north", hospital="st-mary", subject="E-KILLTEST-1"
        )
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(REQUESTS):
            queue.put_nowait(i)

        async def worker(client: httpx.AsyncClient) -> None:
            while not queue.empty():
                i = queue.get_nowait()
                response = await client.post(
                    "/v1/support-requests",
                    json={
                        "unit_id": f"unit-{i % 7}",
                        "discipline": "nurse",
                        "urgency": "routine",
                        "contact": secrets,
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 201, response.text
                acknowledged.append(uuid.UUID(response.json()["case_id"]))

        async def chaos() -> None:
            steps = [
                (300, matching, "matching"),
                (800, relay, "relay"),
                (1300, matching, "matching"),
                (1000, None, "poison"),
            ]
            for threshold, victim, _ in sorted(steps, key=lambda s: s[0]):
                while len(acknowledged) < threshold:
                    await asyncio.sleep(0.01)
                if victim is None:
                    await send_poison(topics)
                    continue
                victim.kill()
                await asyncio.sleep(0.5)
                victim.start()

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{intake_port}", timeout=30) as c:
            await asyncio.gather(chaos(), *(worker(c) for _ in range(CONCURRENCY)))
        assert len(acknowledged) == REQUESTS

        conn = await asyncpg.connect(database_url)
        try:

            async def recorded() -> int:
                return await conn.fetchval(
                    "SELECT count(*) FROM matching.support_request WHERE case_id = ANY($1)",
                    acknowledged,
                )

            await eventually(
                lambda: _at_least(recorded, REQUESTS),
                seconds=180,
                what="matching records every request",
            )
            # A certain redelivery on top of whatever the crashes caused: replay 200 records,
            # byte for byte, and watch matching's inbox turn every one of them away.
            replayed = await replay(topics, {str(c).encode() for c in acknowledged[:200]})
            assert replayed == 200

            async def absorbed() -> bool:
                return await duplicates_absorbed(matching_port) >= replayed

            await eventually(absorbed, seconds=60, what="matching absorbs the replayed records")
            assert await recorded() == REQUESTS
        finally:
            await conn.close()

        dead = await dead_letters(topics)
        ours = {str(c).encode() for c in acknowledged}
        assert not [r for r in dead if r.key in ours], "a good request was dead-lettered"
        [poison] = [
            dict(r.headers)
            for r in dead
            if r.key == b"poison" and dict(r.headers)["dlt.consumer.group"] == b"huddle.matching"
        ]
        assert poison["dlt.reason"].startswith(b"undecodable: not a CloudEvent")
        assert await ready(matching_port), "the consumer carried on after the poison record"

        # SIGTERM is a clean stop: each process drains and closes in order (uvicorn then exits
        # with the signal it received, as a supervisor expects).
        for p in (matching, relay, api):
            assert p.terminate() in (0, -signal.SIGTERM), p.log_tail()
            assert p.log_tail(3).count('"event": "service stopped"') == 1, p.log_tail()

        logs = "".join(p.log_path.read_text(errors="replace") for p in processes)
        for value in (*secrets.values(), "E-KILLTEST-1"):
            assert value not in logs, f"{value!r} reached a log"
    finally:
        for p in processes:
            p.terminate()


async def _at_least(probe, n: int) -> bool:
    return await probe() >= n


async def send_poison(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(SUPPORT_REQUESTED.name, b"{not a cloud event", key=b"poison")
    finally:
        await producer.stop()


async def replay(bootstrap: str, keys: set[bytes]) -> int:
    """Produce again, byte for byte, the records with these keys: a redelivery."""
    consumer = AIOKafkaConsumer(
        SUPPORT_REQUESTED.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    originals: dict[bytes, object] = {}
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for records in batches.values():
                for r in records:
                    if r.key in keys:
                        originals.setdefault(r.key, r)
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for r in originals.values():
            await producer.send_and_wait(
                SUPPORT_REQUESTED.name, r.value, key=r.key, headers=list(r.headers)
            )
    finally:
        await producer.stop()
    return len(originals)


async def duplicates_absorbed(port: int) -> float:
    """matching's own count of redeliveries its inbox turned away (since its last start)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("huddle_events_handled_total{")
        and 'outcome="duplicate"' in line
        and "huddle.support_requested.v1" in line
    )


async def dead_letters(bootstrap: str) -> list:
    consumer = AIOKafkaConsumer(
        SUPPORT_REQUESTED.dead_letter,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list = []
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for records in batches.values():
                found.extend(records)
    finally:
        await consumer.stop()
    return found
