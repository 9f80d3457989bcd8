"""Sessions: support cases, one-to-one and group sessions, referrals (no clinical content)."""

from __future__ import annotations

from pathlib import Path

from huddle_runtime.service import ServiceDefinition

# Runs on the shared runtime (schema, outbox, health, metrics); its domain arrives with a later
# issue. It subscribes to nothing yet: committing offsets now would skip events its handlers need.
DEFINITION = ServiceDefinition(
    name="sessions",
    title="Huddle sessions",
    description=(
        "Support cases, one-to-one and group sessions, follow-ups and referrals, "
        "recorded without clinical content."
    ),
    default_port=8003,
    migrations=Path(__file__).parent / "adapters" / "migrations",
)
