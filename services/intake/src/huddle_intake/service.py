"""Intake: the front door for support requests (and, next, adverse-event reports)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import ServiceSettings

from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.entrypoints import http
from huddle_intake.settings import IntakeSettings


def configure(app: FastAPI, settings: ServiceSettings) -> None:
    intake = IntakeSettings()
    if settings.environment == "production":
        intake.refuse_development_defaults()
    app.state.contact_vault = ContactVault(intake.contact_key)


DEFINITION = ServiceDefinition(
    name="intake",
    title="Huddle intake",
    description="Support requests from workers, colleagues and managers. Stores contact details "
    "encrypted and publishes SupportRequested through its outbox.",
    default_port=8001,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    routers=(http.router,),
    configure=configure,
)
