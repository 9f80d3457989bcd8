"""The servers a run needs (Kafka, PostgreSQL) and the machine it runs on, for the report."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import asyncpg
from huddle_local.kafka import KAFKA_VERSION
from huddle_local.testing import DATABASE_ENV, KAFKA_ENV, SessionServers

LIBRARIES = ("aiokafka", "asyncpg", "fastapi", "numpy", "scipy", "pydantic", "matplotlib")


@dataclass
class Servers:
    kafka_bootstrap: str | None = None
    database_url: str | None = None
    # How each server came to be: started here (embedded) or given by the environment.
    origin: dict[str, str] = field(default_factory=dict)
    startup_s: dict[str, float] = field(default_factory=dict)
    # The processes of the servers started here, to count their CPU (none for given ones).
    pids: dict[str, int] = field(default_factory=dict)


POSTGRES_SETTINGS = {
    "shared_buffers": "2GB",
    "max_wal_size": "8GB",
    "track_commit_timestamp": "on",
}
"""Under a tenth of this machine's 24 GB (PostgreSQL's guide starts at a quarter): a back-fill's
inbox, outbox and event indexes outgrow the default 128 MB, and its WAL the default 1 GB between
checkpoints. Commit timestamps tell the stack measure when sessions committed a case without
asking every 2 ms (which cost PostgreSQL and the generator more CPU than some services)."""


@contextmanager
def servers(kafka: bool, postgres: bool) -> Iterator[Servers]:
    """Start what is needed on free loopback ports, unless KAFKA_BOOTSTRAP_SERVERS /
    DATABASE_URL point at servers already running; stop what was started."""
    base = Path(tempfile.mkdtemp(prefix="huddle-bench-"))
    # fast=False: PostgreSQL keeps fsync and synchronous commit on, as in production, and its
    # memory is sized for the machine, as a production server's is (not initdb's 128 MB).
    session = SessionServers(base, fast=False, postgres_settings=POSTGRES_SETTINGS)
    found = Servers()
    try:
        session.prestart(kafka=kafka, postgres=postgres)
        if kafka:
            found.kafka_bootstrap = session.kafka_bootstrap()
            found.origin["kafka"] = (
                f"given by {KAFKA_ENV}"
                if os.environ.get(KAFKA_ENV)
                else f"Apache Kafka {KAFKA_VERSION} (KRaft, one broker) started on loopback"
            )
        if postgres:
            found.database_url = session.database_url()
            found.origin["postgres"] = (
                f"given by {DATABASE_ENV}"
                if os.environ.get(DATABASE_ENV)
                else "embedded PostgreSQL started on loopback (fsync and synchronous_commit on; "
                + ", ".join(f"{k} {v}" for k, v in POSTGRES_SETTINGS.items())
                + ")"
            )
        found.startup_s = dict(session.timings)
        for name, server in (("kafka", session.kafka), ("postgres", session.postgres)):
            if server is not None and server.pid is not None:
                found.pids[name] = server.pid
        yield found
    finally:
        session.close()
        shutil.rmtree(base, ignore_errors=True)


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


async def postgres_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def machine(found: Servers) -> dict[str, object]:
    memory = _memory_gib()
    info: dict[str, object] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1) if memory else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "kafka": found.origin.get("kafka", "not used"),
        "postgres": found.origin.get("postgres", "not used"),
        "server_startup_s": {k: round(v, 1) for k, v in found.startup_s.items()},
    }
    if found.database_url:
        info["postgres_version"] = await postgres_version(found.database_url)
    if found.kafka_bootstrap and "kafka" in found.startup_s:
        info["kafka_version"] = KAFKA_VERSION
    return info
