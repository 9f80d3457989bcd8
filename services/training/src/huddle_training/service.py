"""Training: the peer roster, nominations, the course catalogue and cohorts that certify peers by
themselves, certifications that lapse by themselves, and peer care (debrief prompts)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import ServiceSettings

from huddle_training.application.lapses import lapse_certifications
from huddle_training.entrypoints import courses, events, http, nominations, peer_care
from huddle_training.settings import TrainingSettings


def configure(app: FastAPI, settings: ServiceSettings) -> None:
    training = TrainingSettings()
    app.state.training_settings = app.state.runtime.state["training_settings"] = training


DEFINITION = ServiceDefinition(
    name="training",
    title="Huddle training",
    description="The peer programme: nominations (with the nominee's consent), the network's "
    "course catalogue, cohorts with attendance per module, the certification rule that certifies "
    "peers by themselves, certifications that lapse when they end (PeerCertified and "
    "CertificationLapsed through its outbox), and peer care: debrief prompts from "
    "SessionCompleted, supervision and debrief meetings.",
    default_port=8004,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    routers=(
        http.router,
        http.coverage_router,
        nominations.router,
        courses.catalogue_router,
        courses.rule_router,
        courses.cohort_router,
        peer_care.router,
    ),
    # Bound at start: the handlers read the debrief threshold from the service's settings.
    bind_handlers=lambda runtime: events.subscriptions(runtime.state["training_settings"]),
    configure=configure,
    tasks=(lapse_certifications,),
)
