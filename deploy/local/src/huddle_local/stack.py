"""The local stack: Kafka, PostgreSQL, the issuer and the five services, with a state file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from huddle_contracts.topics import all_topic_names, topic_configs
from huddle_runtime.migrations import migrate_service
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import DatabaseSettings, ServiceSettings

from huddle_local._util import pid_alive, terminate_pid
from huddle_local.issuer import LocalIssuer
from huddle_local.kafka import KafkaBroker, create_topics
from huddle_local.postgres import EmbeddedPostgres

SERVICES = ("intake", "matching", "sessions", "training", "analytics")


def definitions() -> dict[str, ServiceDefinition]:
    from huddle_analytics.service import DEFINITION as analytics
    from huddle_intake.service import DEFINITION as intake
    from huddle_matching.service import DEFINITION as matching
    from huddle_sessions.service import DEFINITION as sessions
    from huddle_training.service import DEFINITION as training

    return {d.name: d for d in (intake, matching, sessions, training, analytics)}


@dataclass
class Ports:
    kafka: int = 9092
    kafka_controller: int = 9093
    postgres: int = 5432
    services: dict[str, int] = field(
        default_factory=lambda: {
            "intake": 8001,
            "matching": 8002,
            "sessions": 8003,
            "training": 8004,
            "analytics": 8005,
        }
    )


@dataclass
class StackState:
    """What ``huddle up`` started, so that ``status`` and ``down`` work from another shell."""

    kafka_bootstrap: str
    database_url: str
    kafka_managed: bool
    postgres_managed: bool
    jwks_file: str
    services: dict[str, dict[str, int | str]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


class LocalStack:
    def __init__(self, home: Path, ports: Ports) -> None:
        self.home = home.resolve()
        self.ports = ports
        self.issuer = LocalIssuer(self.home / "issuer")
        self.kafka = KafkaBroker(
            self.home / "kafka", port=ports.kafka, controller_port=ports.kafka_controller
        )
        self.postgres = EmbeddedPostgres(self.home / "postgres", port=ports.postgres)
        self.state_file = self.home / "state.json"
        self.logs = self.home / "logs"

    # -- infrastructure ------------------------------------------------------------------
    def start_kafka(self) -> tuple[str, bool]:
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if external:
            return external, False
        if not self.kafka.is_running():
            self.kafka.start()
        self.kafka.wait_ready(180)
        return self.kafka.bootstrap, True

    def start_postgres(self) -> tuple[str, bool]:
        external = os.environ.get("DATABASE_URL")
        if external:
            return external, False
        if not self.postgres.is_running():
            self.postgres.start()
        self.postgres.wait_ready(60)
        return self.postgres.url, True

    def prepare(self, kafka_bootstrap: str, database_url: str) -> None:
        """Topics for every event and dead letters; every service's schema, migrated."""
        asyncio.run(self._prepare(kafka_bootstrap, database_url))

    async def _prepare(self, kafka_bootstrap: str, database_url: str) -> None:
        await create_topics(
            kafka_bootstrap, all_topic_names(), partitions=6, configs=topic_configs()
        )
        for definition in definitions().values():
            settings = ServiceSettings(
                service=definition.name,
                environment="local",
                database=DatabaseSettings(url=database_url),
            )
            await migrate_service(settings, definition.migrations)

    # -- services ------------------------------------------------------------------------
    def service_env(self, name: str, kafka_bootstrap: str, database_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": database_url,
            "HUDDLE_HTTP_PORT": str(self.ports.services[name]),
            "HUDDLE_AUTH_JWKS_FILE": str(self.issuer.jwks_path),
            "HUDDLE_ENVIRONMENT": "local",
        }

    def start_service(self, name: str, env: dict[str, str]) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", f"huddle_{name}", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the launcher, which stops them in order
            )
        return process.pid

    @staticmethod
    def readyz(port: int) -> tuple[bool, str]:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        except httpx.HTTPError as exc:
            return False, f"not answering ({type(exc).__name__})"
        if response.status_code == 200:
            return True, "ready"
        checks = response.json().get("checks", {})
        return False, "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")

    def wait_ready(
        self,
        state: StackState,
        *,
        timeout: float,
        on_change: Callable[[str, str], None],
    ) -> list[str]:
        """Poll every /readyz until all are ready; returns the names that never got ready."""
        pending = dict.fromkeys(state.services, "starting")
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                info = state.services[name]
                if not pid_alive(int(info["pid"])):
                    on_change(name, f"exited; see {self.logs / (name + '.log')}")
                    pending.pop(name)
                    continue
                ok, detail = self.readyz(int(info["port"]))
                if ok:
                    on_change(name, "ready")
                    pending.pop(name)
                elif detail != pending[name]:
                    pending[name] = detail
                    on_change(name, detail)
            time.sleep(0.3)
        return [n for n in state.services if not self.readyz(int(state.services[n]["port"]))[0]]

    # -- stopping ------------------------------------------------------------------------
    def stop(self, state: StackState | None, *, say: Callable[[str], None]) -> None:
        """Reverse order: services (graceful SIGTERM), then Kafka, then PostgreSQL."""
        if state is not None:
            for name in reversed(list(state.services)):
                pid = int(state.services[name]["pid"])
                if pid_alive(pid):
                    say(f"stopping {name}")
                    terminate_pid(pid, timeout=30)
        if (state is None or state.kafka_managed) and self.kafka.is_running():
            say("stopping Kafka")
            self.kafka.stop()
        if (state is None or state.postgres_managed) and self.postgres.is_running():
            say("stopping PostgreSQL")
            self.postgres.stop()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()


def wait_for_signal() -> int:
    """Block until SIGINT or SIGTERM; later ones are ignored so that the shutdown can finish.

    Ctrl-C reaches the whole process group (make, uv and this process), and uv forwards it once
    more: a second signal must not interrupt the orderly stop.
    """
    received: list[int] = []

    def handler(signum: int, _: object) -> None:
        received.append(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)
    while not received:
        signal.pause()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    return received[0]
