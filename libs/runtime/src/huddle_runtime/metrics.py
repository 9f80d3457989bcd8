"""Prometheus metrics, one registry per service instance (tests run several in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.consumer_lag = Gauge(
            "huddle_consumer_lag",
            "Records not yet consumed (high watermark minus position)",
            ["topic", "partition"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "huddle_outbox_backlog", "Outbox rows waiting to be published", ["schema"], registry=r
        )
        self.outbox_published = Counter(
            "huddle_outbox_published", "Outbox rows published to Kafka", ["schema"], registry=r
        )
        self.handler_seconds = Histogram(
            "huddle_handler_seconds",
            "Time to handle one event, database commit included",
            ["event_type"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.events_handled = Counter(
            "huddle_events_handled", "Events handled", ["event_type", "outcome"], registry=r
        )
        self.dead_letters = Counter(
            "huddle_dead_letters", "Records sent to a dead-letter topic", ["topic"], registry=r
        )
