"""Training: the peer roster (registration, certification, withdrawal); the programme comes next."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import ServiceSettings

from huddle_training.application.lapses import lapse_certifications
from huddle_training.entrypoints import http
from huddle_training.settings import TrainingSettings


def configure(app: FastAPI, settings: ServiceSettings) -> None:
    app.state.training_settings = TrainingSettings()


# It subscribes to nothing yet: committing offsets before its handlers exist would skip the events
# they need (SessionCompleted, for peer care, with issue #4).
DEFINITION = ServiceDefinition(
    name="training",
    title="Huddle training",
    description="The peer roster: registers peers, records their certification and withdrawal, "
    "lapses certifications when they end, and publishes PeerCertified and CertificationLapsed "
    "through its outbox.",
    default_port=8004,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    routers=(http.router, http.coverage_router),
    configure=configure,
    tasks=(lapse_certifications,),
)
