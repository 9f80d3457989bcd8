"""Analytics' own Prometheus metrics, on the service's registry (nothing here names a person)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AnalyticsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records_released = Counter(
            "huddle_analytics_records_released",
            "Programme records published on the analysts' stream",
            registry=registry,
        )
        self.survey_responses = Counter(
            "huddle_analytics_survey_responses",
            "Outcome-survey responses scored",
            ["instrument", "phase"],
            registry=registry,
        )
        self.results = Counter(
            "huddle_analytics_results",
            "Published results served: stored (materialised) or computed on the request",
            ["source"],
            registry=registry,
        )
        self.query_seconds = Histogram(
            "huddle_analytics_query_seconds",
            "Time to compute one published aggregate, suppression included",
            ["measure"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5),
            registry=registry,
        )
