"""Analytics: anonymised projections, surveys, programme metrics and the analysts' stream."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from huddle_runtime.service import Runtime, ServiceDefinition
from huddle_runtime.settings import ServiceSettings

from huddle_analytics.application.projections import HANDLERS
from huddle_analytics.application.releases import release_closed_months
from huddle_analytics.application.results import warm_published_results
from huddle_analytics.entrypoints import http
from huddle_analytics.observability import AnalyticsMetrics
from huddle_analytics.settings import AnalyticsSettings


def configure(app: FastAPI, _: ServiceSettings) -> None:
    runtime: Runtime = app.state.runtime
    runtime.state["settings"] = AnalyticsSettings()
    runtime.state["metrics"] = AnalyticsMetrics(runtime.metrics.registry)


DEFINITION = ServiceDefinition(
    name="analytics",
    title="Huddle analytics",
    description=(
        "Consumes every programme event into anonymised projections; publishes programme "
        "metrics and pre/post outcomes with small cells suppressed, and the analysts' stream "
        "(random surrogates, months only, small groups coarsened)."
    ),
    default_port=8005,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    routers=(http.router, http.surveys_router),
    handlers=HANDLERS,
    configure=configure,
    tasks=(release_closed_months, warm_published_results),
)
