"""The five services as processes, started the way `huddle up` starts them, on the run's servers.

`huddle_local.stack.LocalStack` does the work (topics, migrations, processes, /readyz, SIGTERM);
this module adds what a benchmark needs around it: free loopback ports, a scratch home, a fresh
database of its own on the harness's PostgreSQL (other measures fill schemas of the same names),
every consumer group placed at the head of its topics (other measures leave backlogs behind),
extra replicas, and each process's memory from /proc.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from huddle_contracts.topics import consumed_by
from huddle_local._util import free_ports, pid_alive, terminate_pid
from huddle_local.issuer import LocalIssuer
from huddle_local.stack import SERVICES, LocalStack, Ports, StackState

READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Replica:
    service: str
    pid: int
    port: int


@dataclass(frozen=True)
class Memory:
    """VmRSS (resident now) and VmHWM (the peak since the process started), in MB."""

    rss_mb: float
    hwm_mb: float


def memory_of(pid: int) -> Memory | None:
    """From /proc/<pid>/status; None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    values = {
        name: int(rest.split()[0]) / 1024
        for name, _, rest in (line.partition(":") for line in lines)
        if name in ("VmRSS", "VmHWM")
    }
    if len(values) < 2:
        return None
    return Memory(rss_mb=values["VmRSS"], hwm_mb=values["VmHWM"])


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def servers_cpu_seconds(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds used so far by the servers this run started and by the generator:
    ``kafka`` (the broker's JVM), ``postgres`` (the postmaster and every live backend, its
    children) and ``generator`` (this process; the services it started count as services).
    A server given by the environment (no pid) is not counted."""
    used = {"generator": cpu_seconds(os.getpid())}
    if "kafka" in pids:
        used["kafka"] = cpu_seconds(pids["kafka"])
    if "postgres" in pids:
        postmaster = pids["postgres"]
        used["postgres"] = cpu_seconds(postmaster) + sum(
            cpu_seconds(child) for child in _children(postmaster)
        )
    return used


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == parent:
            found.append(int(entry.name))
    return found


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent not idle (whoever used it)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / TICKS_PER_S


def database_url_for(server_url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + database))


async def fresh_database(server_url: str, prefix: str = "huddle_stack") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url_for(server_url, name)


async def drop_database(server_url: str, database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def skip_history(bootstrap: str, services: Sequence[str] = SERVICES) -> None:
    """Commit each service's consumer group at the end of every topic it consumes: a fresh
    deployment on a shared broker starts at the head, not in other measures' backlogs."""
    for service in services:
        partitions = await topic_partitions(bootstrap, [t.name for t in consumed_by(service)])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"huddle.{service}",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
        finally:
            await consumer.stop()


async def topic_partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
    )


@dataclass
class RunningStack:
    """What `start_stack` started; `stop` ends every process and removes the scratch home."""

    local: LocalStack
    server_url: str
    database_url: str
    kafka_bootstrap: str
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    started_s: float = 0.0

    @property
    def issuer(self) -> LocalIssuer:
        return self.local.issuer

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.replicas[service][0].port}{path}"

    def pids(self) -> dict[str, list[int]]:
        return {name: [r.pid for r in replicas] for name, replicas in self.replicas.items()}

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each service, its replicas together."""
        return {
            name: sum(cpu_seconds(r.pid) for r in replicas)
            for name, replicas in self.replicas.items()
        }

    def memory(self) -> dict[str, list[Memory]]:
        return {
            name: [m for r in replicas if (m := memory_of(r.pid)) is not None]
            for name, replicas in self.replicas.items()
        }

    async def remove_replica(self, replica: Replica) -> None:
        """SIGTERM: the consumer leaves its group, which rebalances onto the others."""
        await asyncio.to_thread(terminate_pid, replica.pid, 30)
        self.replicas[replica.service].remove(replica)

    def stop(self, *, keep_logs: bool = False) -> None:
        """SIGTERM every process (graceful), newest service first; the scratch home goes too
        unless its logs are kept for a failure."""
        for name in reversed(list(self.replicas)):
            for replica in self.replicas[name]:
                if pid_alive(replica.pid):
                    terminate_pid(replica.pid, timeout=30)
        self.replicas.clear()
        if not keep_logs:
            shutil.rmtree(self.local.home, ignore_errors=True)

    def _state(self, replicas: dict[str, Replica]) -> StackState:
        return StackState(
            kafka_bootstrap=self.kafka_bootstrap,
            database_url=self.database_url,
            kafka_managed=False,
            postgres_managed=False,
            jwks_file=str(self.local.issuer.jwks_path),
            services={k: {"pid": r.pid, "port": r.port} for k, r in replicas.items()},
        )


async def start_stack(
    kafka_bootstrap: str,
    server_url: str,
    replicas: dict[str, int] | None = None,
    env: Mapping[str, Mapping[str, str]] | None = None,
) -> RunningStack:
    """Topics, a fresh database migrated, groups at the head, five services ready (``replicas``
    asks for more than one process of a service, all started side by side; ``env`` adds
    settings to a service's processes)."""
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="huddle-bench-stack-"))
    ports = Ports(services=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)))
    local = LocalStack(home, ports)
    local.issuer.ensure_keys()
    database_url = await fresh_database(server_url)
    running = RunningStack(local, server_url, database_url, kafka_bootstrap)
    try:
        await asyncio.to_thread(local.prepare, kafka_bootstrap, database_url)
        await skip_history(kafka_bootstrap)
        for name in SERVICES:
            for i in range((replicas or {}).get(name, 1)):
                port = ports.services[name] if i == 0 else free_ports(1)[0]
                settings = local.service_env(name, kafka_bootstrap, database_url)
                settings.update((env or {}).get(name, {}))
                settings["HUDDLE_HTTP_PORT"] = str(port)
                pid = local.start_service(name, settings)
                running.replicas.setdefault(name, []).append(Replica(name, pid, port))
        state = running._state(
            {f"{r.service}-{r.pid}": r for rs in running.replicas.values() for r in rs}
        )
        not_ready = await asyncio.to_thread(
            local.wait_ready, state, timeout=READY_TIMEOUT_S, on_change=lambda *_: None
        )
        if not_ready:
            raise RuntimeError(f"not ready: {', '.join(not_ready)}; logs in {local.logs}")
    except BaseException:
        running.stop(keep_logs=True)
        await drop_database(server_url, database_url)
        raise
    running.started_s = time.monotonic() - started
    return running
