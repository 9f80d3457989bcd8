"""Training: peer nominations, courses, certification."""

from __future__ import annotations

from pathlib import Path

from huddle_runtime.service import ServiceDefinition

# Runs on the shared runtime (schema, outbox, health, metrics); its domain arrives with a later
# issue. It subscribes to nothing yet: committing offsets now would skip events its handlers need.
DEFINITION = ServiceDefinition(
    name="training",
    title="Huddle training",
    description=("Peer nominations, courses, enrolments, completions and certification."),
    default_port=8004,
    migrations=Path(__file__).parent / "adapters" / "migrations",
)
