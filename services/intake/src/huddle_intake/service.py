"""Intake: the front door for support requests, and the workforce directory they resolve through."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from huddle_runtime.notifications import NotificationSettings, notification_dispatcher
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import ServiceSettings

from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.application import paging, tier_one
from huddle_intake.application import request_journey as journey
from huddle_intake.application.paging import Pager
from huddle_intake.application.workforce_directory import DirectoryKeys
from huddle_intake.entrypoints import adverse_events, directory, http, inbound_reports, scim
from huddle_intake.settings import IntakeSettings


def configure(app: FastAPI, settings: ServiceSettings) -> None:
    intake = IntakeSettings()
    if settings.environment == "production":
        intake.refuse_development_defaults()
    app.state.contact_vault = ContactVault(intake.contact_key)
    app.state.intake_settings = intake
    app.state.runtime.state["intake_settings"] = intake
    notify_settings = app.state.runtime.state["notification_settings"] = NotificationSettings()
    if settings.environment == "production":
        notify_settings.refuse_development_defaults()
    app.state.pager = app.state.runtime.state["pager"] = Pager(
        vault=app.state.contact_vault, channel_key=notify_settings.channel_fernet()
    )
    app.state.directory_keys = DirectoryKeys(settings.pseudonym_key, app.state.contact_vault)
    inbound_reports.INBOUND_REPORTS.bind(settings.pseudonym_key)


DEFINITION = ServiceDefinition(
    name="intake",
    title="Huddle intake",
    description="Support requests from workers, colleagues and managers, and the workforce "
    "directory (SCIM 2.0 provisioning at /scim/v2, or a CSV import). Stores contact details "
    "encrypted and publishes SupportRequested through its outbox.",
    default_port=8001,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    routers=(
        http.router,
        http.crisis_router,
        http.check_in_router,
        http.notification_router,
        directory.router,
        scim.router,
        adverse_events.router,
    ),
    raw_handlers={inbound_reports.INBOUND_ADVERSE_EVENT: inbound_reports.INBOUND_REPORTS},
    bind_handlers=lambda runtime: paging.handlers(runtime.state["pager"]),
    tasks=(
        journey.purge_contact_details,
        tier_one.send_prompts,
        paging.send_reminders,
        notification_dispatcher(),
    ),
    configure=configure,
)
