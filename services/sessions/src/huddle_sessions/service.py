"""Sessions: support cases, contacts, follow-ups and referrals (never clinical content)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from huddle_contracts.events import AdverseEventReported, PeerMatched, SupportWithdrawn
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import ServiceSettings

from huddle_sessions.application.cases import Sessions, on_peer_matched, on_support_withdrawn
from huddle_sessions.application.group_sessions import on_adverse_event_reported
from huddle_sessions.entrypoints import groups, http
from huddle_sessions.settings import SessionsSettings


def configure(app: FastAPI, _: ServiceSettings) -> None:
    app.state.sessions = Sessions(schedule=SessionsSettings().follow_up_schedule)


DEFINITION = ServiceDefinition(
    name="sessions",
    title="Huddle sessions",
    description=(
        "Support cases opened by PeerMatched; the peer records when, how long and how each "
        "contact happened (never what was said), follow-ups and tier-3 referrals."
    ),
    default_port=8003,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    routers=(http.router, groups.router),
    handlers={
        PeerMatched.event_type: on_peer_matched,
        AdverseEventReported.event_type: on_adverse_event_reported,
        SupportWithdrawn.event_type: on_support_withdrawn,
    },
    configure=configure,
)
