"""Analytics: anonymised projections, outcome surveys and programme metrics."""

from __future__ import annotations

from pathlib import Path

from huddle_runtime.service import ServiceDefinition

# Runs on the shared runtime (schema, outbox, health, metrics); its domain arrives with a later
# issue. It subscribes to nothing yet: committing offsets now would skip events its handlers need.
DEFINITION = ServiceDefinition(
    name="analytics",
    title="Huddle analytics",
    description=("Anonymised projections, outcome surveys and programme metrics."),
    default_port=8005,
    migrations=Path(__file__).parent / "adapters" / "migrations",
)
