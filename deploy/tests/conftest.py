"""What the deployment tests share: the services' shutdown chain, modelled from the code."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import DeliverySettings

#: HUDDLE_DELIVERY_SHUTDOWN_GRACE_SECONDS when nothing sets it.
DEFAULT_SHUTDOWN_GRACE: float = DeliverySettings.model_fields["shutdown_grace_seconds"].default
#: After the last grace: the producer's flush of what the relay handed it (acks=all), the consumer
#: leaving its group, the pool closing and the tracer's last export.
FLUSH_MARGIN_SECONDS = 15.0


def definition(service: str) -> ServiceDefinition:
    module = importlib.import_module(f"huddle_{service}.service")
    found: ServiceDefinition = module.DEFINITION
    return found


def shutdown_seconds(service: str, grace: float | None) -> float:
    """The longest a `serve` process may take from SIGTERM to exit, one step after the other:
    uvicorn's graceful shutdown (huddle_runtime.cli: timeout_graceful_shutdown=int(grace)), then
    Runtime.stop: the consumer's batch, the schedulers' round, the relay's batch (each up to the
    grace, and only if the service has it), then the producer and the pool."""
    grace = DEFAULT_SHUTDOWN_GRACE if grace is None else grace
    spec = definition(service)
    steps = [float(int(grace))]  # uvicorn
    if spec.consumes:
        steps.append(grace)  # the event consumer
    if spec.tasks:
        steps.append(grace)  # the schedulers (every task at once, one wait)
    if spec.publishes:
        steps.append(grace)  # the outbox relay
    return sum(steps) + FLUSH_MARGIN_SECONDS


@pytest.fixture(scope="session")
def shutdown_chain() -> Callable[[str, float | None], float]:
    return shutdown_seconds
