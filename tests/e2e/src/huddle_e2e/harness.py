"""Run Huddle services in-process (ASGI + lifespan) or as processes, against the real servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from huddle_runtime import migrations
from huddle_runtime.service import ServiceDefinition, build_app
from huddle_runtime.settings import (
    AuthSettings,
    DatabaseSettings,
    DeliverySettings,
    KafkaSettings,
    ServiceSettings,
)
from opentelemetry.sdk.trace import TracerProvider


def service_settings(
    definition: ServiceDefinition,
    *,
    database_url: str,
    kafka_bootstrap: str,
    jwks_file: Path,
    **delivery: Any,
) -> ServiceSettings:
    return ServiceSettings(
        service=definition.name,
        http_port=definition.default_port,
        environment="test",
        database=DatabaseSettings(url=database_url),
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        auth=AuthSettings(jwks_file=str(jwks_file)),
        delivery=DeliverySettings(relay_poll_seconds=0.2, **delivery),
    )


async def migrate_service(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    await migrations.migrate_service(settings, definition.migrations)


async def held_service_settings(
    definition: ServiceDefinition, *, database_url: str, kafka_bootstrap: str, jwks_file: Path
) -> ServiceSettings:
    """A service's settings with its relay and consumer off, its schema migrated: tests hand
    events to its handlers, and what it publishes stays in its outbox to be read back."""
    settings = service_settings(
        definition,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        jwks_file=jwks_file,
        relay_enabled=False,
        consumer_enabled=False,
    )
    await migrate_service(definition, settings)
    return settings


@contextlib.asynccontextmanager
async def running_app(
    definition: ServiceDefinition,
    settings: ServiceSettings,
    *,
    tracer_provider: TracerProvider | None = None,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service's app with its lifespan running, and a client that talks to it in-process."""
    app = build_app(definition, settings, tracer_provider=tracer_provider)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{definition.name}"
        ) as client,
    ):
        yield app, client


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, seconds: float = 30, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {seconds}s")
        await asyncio.sleep(0.1)


class ServiceProcess:
    """A service run as its own OS process (``python -m huddle_<name> <command>``)."""

    def __init__(self, name: str, command: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.command, self.env = name, command, env
        self.log_path = log_dir / f"{name}-{command}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"huddle_{self.name}", self.command],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or committed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""
