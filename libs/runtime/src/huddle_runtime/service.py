"""Composition root shared by the five services: the lifespan owns every connection and task."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from huddle_contracts.topics import topic_for_event_type
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from huddle_runtime import database, health
from huddle_runtime.auth import TokenVerifier
from huddle_runtime.consumer import EventConsumer, Handler, RawHandler, RetryPolicy
from huddle_runtime.kafka import new_consumer, new_producer
from huddle_runtime.metrics import Metrics
from huddle_runtime.outbox import OutboxRelay
from huddle_runtime.problems import install_problem_handlers
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import UnitOfWork, unit_of_work

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes a service itself; everything else is the shared runtime."""

    name: str
    title: str
    description: str
    default_port: int
    migrations: Path
    routers: Sequence[APIRouter] = ()
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # CloudEvents from outside Huddle (e.g. incident systems' raw reports), keyed by type.
    raw_handlers: Mapping[str, RawHandler] = field(default_factory=dict)
    # Handlers that need what `configure` built (runtime.state); bound when the service starts.
    bind_handlers: Callable[[Runtime], Mapping[str, Handler]] | None = None
    publishes: bool = True
    # Builds service-specific state (its own settings, adapters) onto app.state, once.
    configure: Callable[[FastAPI, ServiceSettings], None] | None = None
    # Background loops (schedulers) the lifespan runs and stops: each gets the live runtime.
    tasks: Sequence[Callable[[Runtime], Awaitable[None]]] = ()

    @property
    def consumes(self) -> bool:
        return bool(self.handlers or self.raw_handlers or self.bind_handlers)

    def topics_for(self, handlers: Mapping[str, object]) -> list[str]:
        return sorted({topic_for_event_type(t).name for t in (*handlers, *self.raw_handlers)})


class Runtime:
    """The live parts of a running service, built in the lifespan and closed in reverse."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.metrics = Metrics()
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: EventConsumer | None = None
        self.failure: str | None = None
        # Set on shutdown: background tasks finish their round and return.
        self.stopping = asyncio.Event()
        # Service-specific objects that `configure` builds once, for tasks and handlers to use.
        self.state: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def source(self) -> str:
        """CloudEvents ``source`` of everything this service publishes."""
        return f"/huddle/{self.definition.name}"

    def unit_of_work(
        self, tenant: Tenant | None
    ) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        assert self.pool is not None, "the runtime is not started"
        return unit_of_work(self.pool, tenant, source=self.source)

    async def connect_admin(self) -> asyncpg.Connection:
        return await database.connect(self.settings)

    async def start(self) -> None:
        s, d = self.settings, self.definition
        self.pool = await database.create_pool(s)
        self.producer = new_producer(s.kafka, client_id=d.name)
        await self.producer.start()
        if d.publishes and s.delivery.relay_enabled:
            self.relay = OutboxRelay(
                schema=s.schema_name,
                pool=self.pool,
                producer=self.producer,
                connect=self.connect_admin,
                metrics=self.metrics,
                batch_size=s.delivery.relay_batch_size,
                poll_seconds=s.delivery.relay_poll_seconds,
                gather_seconds=s.delivery.relay_gather_ms / 1000,
            )
            self._spawn("outbox relay", self.relay.run)
        handlers = {**d.handlers, **(d.bind_handlers(self) if d.bind_handlers else {})}
        if d.consumes and s.delivery.consumer_enabled:
            self.consumer = EventConsumer(
                consumer=new_consumer(
                    s.kafka,
                    group_id=s.consumer_group,
                    client_id=d.name,
                    max_poll_records=s.delivery.consumer_batch_size,
                ),
                producer=self.producer,
                pool=self.pool,
                group_id=s.consumer_group,
                source=self.source,
                topics=d.topics_for(handlers),
                handlers=handlers,
                raw_handlers=d.raw_handlers,
                batch_size=s.delivery.consumer_batch_size,
                commit_interval_s=s.delivery.consumer_commit_interval_ms / 1000,
                # At most half the pool in consumer batches at once: the rest serve HTTP.
                partitions_at_once=max(1, s.database.pool_max_size // 2),
                metrics=self.metrics,
                retry=RetryPolicy(
                    s.delivery.consumer_max_attempts,
                    s.delivery.consumer_backoff_seconds,
                    s.delivery.consumer_backoff_max_seconds,
                ),
            )
            await self.consumer.start()
            self._spawn("event consumer", self.consumer.run)
        for task in d.tasks:
            self._spawn(getattr(task, "__name__", "task"), functools.partial(task, self))
        log.info("service started", consumes=d.topics_for(handlers), relay=self.relay is not None)

    async def stop(self) -> None:
        """Reverse order: the consumer finishes and commits its batch (its handlers may still
        write outbox rows), then schedulers, then the relay finishes its batch in hand (rows left
        are published by the next relay), then the producer and the pool."""
        grace = self.settings.delivery.shutdown_grace_seconds
        if self.consumer is not None:
            self.consumer.stop()
            await self._wait_for(["event consumer"], grace)
            with contextlib.suppress(Exception):
                await self.consumer.close(timeout_s=grace)
        self.stopping.set()
        await self._wait_for(
            [t.get_name() for t in self._tasks if t.get_name() != "outbox relay"], grace
        )
        if self.relay is not None:
            self.relay.stop()
        await self._wait_for(["outbox relay"], grace)
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()
        log.info("service stopped")

    async def _wait_for(self, names: list[str], grace: float) -> None:
        tasks = [t for t in self._tasks if t.get_name() in names and not t.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        if self.failure:
            checks["runtime"] = f"failed: {self.failure}"
        checks["database"] = (
            await health.check(self.pool.fetchval("SELECT 1")) if self.pool else "not started"
        )
        checks["kafka_producer"] = (
            await health.check(self.producer.client.force_metadata_update())
            if self.producer
            else "not started"
        )
        if self.definition.consumes and self.settings.delivery.consumer_enabled:
            checks["kafka_consumer"] = (
                "ok"
                if self.consumer is not None and self.consumer.ready
                else "waiting for partition assignment"
            )
        return checks

    async def refresh_gauges(self) -> None:
        if self.pool is not None and self.definition.publishes:
            with contextlib.suppress(Exception):
                backlog = await self.pool.fetchval("SELECT count(*) FROM outbox")
                self.metrics.outbox_backlog.labels(self.settings.schema_name).set(backlog)

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(run(), name=name)  # type: ignore[arg-type]

        def done(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                self.failure = f"{name} stopped: {t.exception()!r}"
                log.error("background task failed", task=name, error=repr(t.exception()))

        task.add_done_callback(done)
        self._tasks.append(task)


def build_app(
    definition: ServiceDefinition,
    settings: ServiceSettings,
    *,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    runtime = Runtime(definition, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # What start-up built (modules, routes, schemas, clients) lives as long as the process:
        # out of the collector's sight, a full collection no longer stalls requests to walk it.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await runtime.stop()

    app = FastAPI(
        title=definition.title,
        description=definition.description,
        version="1",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings.auth) if settings.auth.configured else None
    install_problem_handlers(app)
    if definition.configure is not None:
        definition.configure(app, settings)
    app.include_router(health.router)
    for router in definition.routers:
        app.include_router(router)
    # One server span per request: a span per ASGI message (body chunk) costs more than it says.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        excluded_urls="livez,readyz,metrics",
        exclude_spans=["receive", "send"],
    )
    return app
