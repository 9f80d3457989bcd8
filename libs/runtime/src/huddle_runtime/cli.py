"""Each service's command line: ``serve``, ``migrate`` and ``relay``."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
import typer
import uvicorn
from opentelemetry import trace

from huddle_runtime.migrations import migrate_service
from huddle_runtime.service import Runtime, ServiceDefinition, build_app
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.telemetry import configure_logging, configure_tracing

log = structlog.get_logger(__name__)


def service_cli(definition: ServiceDefinition) -> typer.Typer:
    cli = typer.Typer(
        help=f"Huddle {definition.name} service: {definition.title}.",
        no_args_is_help=True,
        add_completion=False,
    )

    def load() -> ServiceSettings:
        settings = ServiceSettings.load(definition.name, http_port=definition.default_port)
        configure_logging(settings.telemetry, service=definition.name)
        return settings

    @cli.command()
    def serve() -> None:
        """Serve the HTTP API, publish the outbox and consume events until SIGTERM."""
        settings = load()
        provider = configure_tracing(settings.telemetry, service=definition.name)
        trace.set_tracer_provider(provider)
        app = build_app(definition, settings, tracer_provider=provider)
        uvicorn.run(
            app,
            host=settings.http_host,
            port=settings.http_port,
            # libuv's event loop (by default) and the C HTTP parser: less CPU per request than
            # asyncio and h11.
            loop=settings.event_loop,
            http="httptools",
            timeout_keep_alive=settings.http_keep_alive_seconds,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.delivery.shutdown_grace_seconds),
        )
        provider.shutdown()

    @cli.command(name="migrate")
    def migrate_command() -> None:
        """Create or update this service's schema (run before serve; idempotent)."""
        settings = load()

        applied = asyncio.run(migrate_service(settings, definition.migrations))
        log.info("schema up to date", schema=settings.schema_name, applied=applied)

    @cli.command()
    def relay() -> None:
        """Run only the outbox relay (no HTTP, no consumer) until SIGTERM."""
        settings = load()
        settings.delivery.consumer_enabled = False
        asyncio.run(_run_relay_only(definition, settings))

    return cli


async def _run_relay_only(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    runtime = Runtime(
        ServiceDefinition(
            name=definition.name,
            title=definition.title,
            description=definition.description,
            default_port=definition.default_port,
            migrations=definition.migrations,
        ),
        settings,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        # Exit when told to, or when the relay itself fails (so a supervisor restarts us).
        while not stop.is_set() and runtime.failure is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)
    finally:
        await runtime.stop()
    if runtime.failure is not None:
        raise SystemExit(f"relay failed: {runtime.failure}")
