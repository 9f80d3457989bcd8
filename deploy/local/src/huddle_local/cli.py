"""``huddle``: run the whole platform on this machine, and mint tokens it accepts."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from huddle_runtime.settings import TelemetrySettings
from huddle_runtime.telemetry import configure_logging
from rich.console import Console
from rich.live import Live
from rich.table import Table

from huddle_local._util import pid_alive
from huddle_local.demo import seed as seed_demo
from huddle_local.stack import SERVICES, LocalStack, Ports, StackState, wait_for_signal

app = typer.Typer(
    help="Huddle's local stack: Apache Kafka (KRaft), PostgreSQL and the five services.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

Home = Annotated[
    Path,
    typer.Option(envvar="HUDDLE_HOME", help="Where the stack keeps its data, logs and keys."),
]
DEFAULT_HOME = Path(".huddle")


def _stack(home: Path, ports: Ports | None = None) -> LocalStack:
    return LocalStack(home, ports or Ports())


@app.command()
def up(
    home: Home = DEFAULT_HOME,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Start, wait until ready, then return.")
    ] = False,
    kafka_port: Annotated[int, typer.Option(envvar="HUDDLE_KAFKA_PORT")] = 9092,
    kafka_controller_port: Annotated[
        int, typer.Option(envvar="HUDDLE_KAFKA_CONTROLLER_PORT")
    ] = 9093,
    postgres_port: Annotated[int, typer.Option(envvar="HUDDLE_POSTGRES_PORT")] = 5432,
    intake_port: Annotated[int, typer.Option(envvar="HUDDLE_INTAKE_PORT")] = 8001,
    matching_port: Annotated[int, typer.Option(envvar="HUDDLE_MATCHING_PORT")] = 8002,
    sessions_port: Annotated[int, typer.Option(envvar="HUDDLE_SESSIONS_PORT")] = 8003,
    training_port: Annotated[int, typer.Option(envvar="HUDDLE_TRAINING_PORT")] = 8004,
    analytics_port: Annotated[int, typer.Option(envvar="HUDDLE_ANALYTICS_PORT")] = 8005,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every /readyz.")] = 120,
    demo: Annotated[
        bool, typer.Option(help="Seed the demo network (peers on call, referral catalogues).")
    ] = True,
) -> None:
    """Start Kafka, PostgreSQL and the five services; wait until all are ready."""
    ports = Ports(
        kafka=kafka_port,
        kafka_controller=kafka_controller_port,
        postgres=postgres_port,
        services={
            "intake": intake_port,
            "matching": matching_port,
            "sessions": sessions_port,
            "training": training_port,
            "analytics": analytics_port,
        },
    )
    # The launcher migrates in-process; its own logs stay quiet unless something is wrong.
    configure_logging(TelemetrySettings(log_level="WARNING", log_json=False), service="huddle")
    stack = _stack(home, ports)
    existing = StackState.load(stack.state_file)
    if existing and any(pid_alive(int(s["pid"])) for s in existing.services.values()):
        console.print(f"[yellow]The stack in {stack.home} is already running; `huddle status`.")
        raise typer.Exit(1)
    started = time.monotonic()
    stack.issuer.ensure_keys()
    with (
        console.status("Starting Apache Kafka (KRaft) and PostgreSQL…"),
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        kafka_job = pool.submit(stack.start_kafka)
        postgres_job = pool.submit(stack.start_postgres)
        try:
            kafka_bootstrap, kafka_managed = kafka_job.result()
            database_url, postgres_managed = postgres_job.result()
        except Exception as exc:
            console.print(f"[red]Could not start the servers: {exc}")
            stack.stop(None, say=lambda m: console.print(m))
            raise typer.Exit(1) from exc
    console.print(f"[green]✓[/] Kafka at {kafka_bootstrap}, PostgreSQL ready")
    with console.status("Creating topics and migrating every service's schema…"):
        stack.prepare(kafka_bootstrap, database_url)
    console.print("[green]✓[/] topics created, schemas migrated")

    state = StackState(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        kafka_managed=kafka_managed,
        postgres_managed=postgres_managed,
        jwks_file=str(stack.issuer.jwks_path),
    )
    for name in SERVICES:
        pid = stack.start_service(name, stack.service_env(name, kafka_bootstrap, database_url))
        state.services[name] = {"pid": pid, "port": ports.services[name]}
    state.save(stack.state_file)

    statuses = dict.fromkeys(SERVICES, "starting")
    with Live(_status_table(statuses), console=console, transient=True) as live:

        def changed(name: str, status: str) -> None:
            statuses[name] = status
            live.update(_status_table(statuses))

        not_ready = stack.wait_ready(state, timeout=timeout, on_change=changed)
    if not_ready:
        console.print(_status_table(statuses))
        console.print(f"[red]Not ready: {', '.join(not_ready)}; logs in {stack.logs}")
        stack.stop(state, say=lambda m: console.print(m))
        raise typer.Exit(1)

    if demo:
        with console.status("Seeding the demo network…"):
            try:
                for line in seed_demo(stack.issuer, ports.services, database_url):
                    console.print(f"[green]✓[/] demo: {line}")
            except Exception as exc:
                console.print(f"[red]Seeding the demo network failed: {exc}")
                stack.stop(state, say=lambda m: console.print(m))
                raise typer.Exit(1) from exc
    _print_addresses(state, stack, seconds=time.monotonic() - started)
    if detach:
        return
    console.print("Press Ctrl-C to stop everything.")
    wait_for_signal()
    stack.stop(state, say=lambda m: console.print(m))
    console.print("[green]Stopped.")


@app.command()
def status(home: Home = DEFAULT_HOME) -> None:
    """Show what is running and whether each service is ready (exit 1 if not all)."""
    stack = _stack(home)
    state = StackState.load(stack.state_file)
    if state is None:
        console.print(f"Nothing started from {stack.home}. Run `huddle up`.")
        raise typer.Exit(1)
    table = Table("component", "address", "state")
    healthy = True
    table.add_row(
        "kafka", state.kafka_bootstrap, _infra(state.kafka_managed, stack.kafka.is_running())
    )
    table.add_row(
        "postgresql",
        _redact(state.database_url),
        _infra(state.postgres_managed, stack.postgres.is_running()),
    )
    for name, info in state.services.items():
        alive = pid_alive(int(info["pid"]))
        ok, detail = stack.readyz(int(info["port"])) if alive else (False, "not running")
        healthy &= ok
        table.add_row(name, f"http://127.0.0.1:{info['port']}", "ready" if ok else detail)
    Console().print(table)
    if not healthy:
        raise typer.Exit(1)


@app.command()
def down(home: Home = DEFAULT_HOME) -> None:
    """Stop the services, then Kafka and PostgreSQL (data is kept in the home folder)."""
    stack = _stack(home)
    stack.stop(StackState.load(stack.state_file), say=lambda m: console.print(m))
    console.print("[green]Stopped.")


@app.command()
def token(
    role: Annotated[
        str, typer.Option(help="worker, peer, coordinator, network_admin, analyst, reporter")
    ],
    network: Annotated[str, typer.Option(help="Network id, e.g. demo")],
    hospital: Annotated[str | None, typer.Option(help="Hospital id")] = None,
    subject: Annotated[str | None, typer.Option(help="Staff identifier of the caller")] = None,
    hours: Annotated[float, typer.Option(help="Validity in hours")] = 8,
    home: Home = DEFAULT_HOME,
) -> None:
    """Print a bearer token that the local stack accepts (signed by its own issuer)."""
    from huddle_runtime.auth import Role

    if role not in {r.value for r in Role}:
        console.print(f"[red]Unknown role {role!r}; one of: {', '.join(r.value for r in Role)}")
        raise typer.Exit(2)
    stack = _stack(home)
    sys.stdout.write(
        stack.issuer.mint(
            role=role,
            network=network,
            hospital=hospital,
            subject=subject,
            ttl=timedelta(hours=hours),
        )
        + "\n"
    )


def _status_table(statuses: dict[str, str]) -> Table:
    table = Table("service", "state")
    for name, status in statuses.items():
        colour = "green" if status == "ready" else "yellow"
        table.add_row(name, f"[{colour}]{status}")
    return table


def _print_addresses(state: StackState, stack: LocalStack, *, seconds: float) -> None:
    table = Table("component", "address", title=f"Huddle is ready ({seconds:.0f}s)")
    table.add_row("kafka", state.kafka_bootstrap)
    table.add_row("postgresql", _redact(state.database_url))
    for name, info in state.services.items():
        table.add_row(name, f"http://127.0.0.1:{info['port']}  (docs: /docs)")
    table.add_row("logs", str(stack.logs))
    Console().print(table)
    console.print(
        "Try: TOKEN=$(.venv/bin/huddle token --role worker --network demo --hospital general "
        "--subject E1001)"
    )


def _infra(managed: bool, running: bool) -> str:
    if not managed:
        return "external"
    return "running" if running else "stopped"


def _redact(url: str) -> str:
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split("@")[0].split(":")[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url


if __name__ == "__main__":  # pragma: no cover
    app()
    os._exit(0)
