"""The newcomer's path: `huddle up --detach`, a token, a request over HTTP, its CloudEvent read
back from Kafka with a plain client, `huddle status`, `huddle down`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from huddle_local._util import free_ports
from huddle_local.testing import scratch_dir

pytestmark = pytest.mark.e2e


def huddle(
    *args: str, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "huddle_local.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def test_up_token_request_kafka_status_down() -> None:
    home = scratch_dir("huddle-cli-")
    kafka, controller, postgres, *services = free_ports(8)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env |= {
        "HUDDLE_HOME": str(home),
        "HUDDLE_KAFKA_PORT": str(kafka),
        "HUDDLE_KAFKA_CONTROLLER_PORT": str(controller),
        "HUDDLE_POSTGRES_PORT": str(postgres),
        **{
            f"HUDDLE_{n.upper()}_PORT": str(p)
            for n, p in zip(
                ("intake", "matching", "sessions", "training", "analytics"), services, strict=True
            )
        },
    }
    try:
        started = huddle("up", "--detach", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        for port in services:
            assert f"http://127.0.0.1:{port}" in started.stdout

        status = huddle("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("ready") == 5

        token = huddle(
            "token",
            "--role",
            "worker",
            "--network",
            "demo",
            "--hospital",
            "general",
            "--subject",
            "E1001",
            env=env,
        )
        assert token.returncode == 0, token.stderr
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{services[0]}") as client:
            created = await client.post(
                "/v1/support-requests",
                json={"unit_id": "icu", "discipline": "nurse", "urgency": "urgent"},
                headers={"Authorization": f"Bearer {token.stdout.strip()}"},
            )
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"].encode()

        consumer = AIOKafkaConsumer(
            "huddle.support-requested.v1",
            bootstrap_servers=f"127.0.0.1:{kafka}",
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            record = None
            for _ in range(40):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    record = next((r for r in batch if r.key == case_id), record)
                if record:
                    break
        finally:
            await consumer.stop()
        assert record is not None, "the CloudEvent did not reach Kafka"
        headers = dict(record.headers)
        assert headers["ce_type"] == b"huddle.support_requested.v1"
        assert headers["ce_source"] == b"/huddle/intake"
        assert b'"urgency":"urgent"' in record.value

        refused = huddle("token", "--role", "wizard", "--network", "demo", env=env)
        assert refused.returncode == 2 and "Unknown role" in refused.stderr
    finally:
        stopped = huddle("down", env=env)
        shutil.rmtree(home, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr
    assert huddle("status", env=env).returncode == 1
