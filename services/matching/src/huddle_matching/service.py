"""Matching: pairs a request with a trained peer under the programme's rules."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from huddle_runtime.service import ServiceDefinition
from huddle_runtime.settings import ServiceSettings

from huddle_matching.application.search import Matching
from huddle_matching.entrypoints import http
from huddle_matching.entrypoints.events import subscriptions
from huddle_matching.entrypoints.scheduler import deadlines
from huddle_matching.observability import HeldPeerWaits

MATCHING = Matching()


def configure(app: FastAPI, _: ServiceSettings) -> None:
    runtime = app.state.runtime
    app.state.matching = runtime.state["matching"] = MATCHING
    # Read at each scrape from whichever Matching the process runs (tests swap in their own).
    runtime.metrics.registry.register(
        HeldPeerWaits(lambda: runtime.state["matching"].held_peer_wait)
    )


DEFINITION = ServiceDefinition(
    name="matching",
    title="Huddle matching",
    description="Matches each support request with a trained peer under the programme's hard "
    "rules and scored preferences, offers it with a deadline, moves on when a peer declines or "
    "stays silent, widens to the network and alerts coordinators when needed.",
    default_port=8002,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    routers=(http.router,),
    handlers=subscriptions(MATCHING),
    configure=configure,
    tasks=(deadlines,),
)
