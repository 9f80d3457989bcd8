"""Matching: pairs a request with a trained peer under the programme's rules."""

from __future__ import annotations

from pathlib import Path

from huddle_runtime.service import ServiceDefinition

from huddle_matching.entrypoints.events import HANDLERS

DEFINITION = ServiceDefinition(
    name="matching",
    title="Huddle matching",
    description="Receives support requests through its inbox (exactly once) and will match "
    "trained peers to them under the programme's rules.",
    default_port=8002,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    handlers=HANDLERS,
)
