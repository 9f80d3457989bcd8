"""The topic registry: topic names are part of Huddle's public contract (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICES = ("intake", "matching", "sessions", "training", "analytics")

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    event_types: tuple[str, ...]
    publishers: frozenset[str]
    consumers: frozenset[str]
    partitions: int = 6
    retention_ms: int = 30 * DAY_MS
    # The inbound topic carries raw reports (possibly identifying), so it is kept briefly.
    description: str = ""
    keyed: bool = field(default=True)

    @property
    def dead_letter(self) -> str:
        return dead_letter_topic(self.name)

    @property
    def configs(self) -> dict[str, str]:
        """Topic settings; a dead-letter topic keeps its records as long as its source does
        (the raw inbound topic's dead letters hold raw reports: one day, like the source)."""
        return {"retention.ms": str(self.retention_ms)}


def topic_configs() -> dict[str, dict[str, str]]:
    """Settings of every topic and dead-letter topic, for creating them."""
    configs: dict[str, dict[str, str]] = {}
    for topic in TOPICS:
        configs[topic.name] = configs[topic.dead_letter] = topic.configs
    return configs


def dead_letter_topic(name: str) -> str:
    return f"{name}.dlt"


INBOUND_ADVERSE_EVENTS = Topic(
    name="huddle.inbound.adverse-events.v1",
    key="reporter's event id",
    event_types=("huddle.inbound.adverse_event.v1",),
    publishers=frozenset({"incident-systems"}),
    consumers=frozenset({"intake"}),
    retention_ms=1 * DAY_MS,
    description="Raw reports from incident systems; intake-only, short retention.",
)
ADVERSE_EVENT_REPORTED = Topic(
    name="huddle.adverse-event-reported.v1",
    key="adverse event id",
    event_types=("huddle.adverse_event_reported.v1",),
    publishers=frozenset({"intake"}),
    # Not matching: SupportRequested carries who was involved (docs/architecture.md).
    consumers=frozenset({"sessions", "analytics"}),
    description="De-identified adverse events that may trigger outreach.",
)
SUPPORT_REQUESTED = Topic(
    name="huddle.support-requested.v1",
    key="case id",
    event_types=("huddle.support_requested.v1", "huddle.support_withdrawn.v1"),
    publishers=frozenset({"intake"}),
    consumers=frozenset({"matching", "sessions", "analytics"}),
    description="A worker asked for support, or was offered it after an event.",
)
PEER_MATCHED = Topic(
    name="huddle.peer-matched.v1",
    key="case id",
    event_types=("huddle.offer_made.v1", "huddle.peer_matched.v1"),
    publishers=frozenset({"matching"}),
    consumers=frozenset({"intake", "sessions", "analytics"}),
    description="A case was offered to a peer, and a peer accepted it.",
)
SESSION_COMPLETED = Topic(
    name="huddle.session-completed.v1",
    key="case id",
    event_types=("huddle.session_completed.v1", "huddle.case_closed.v1"),
    publishers=frozenset({"sessions"}),
    consumers=frozenset({"intake", "matching", "training", "analytics"}),
    description="A one-to-one or group session took place (no narrative).",
)
MATCH_ESCALATED = Topic(
    name="huddle.match-escalated.v1",
    key="case id",
    event_types=("huddle.match_escalated.v1",),
    publishers=frozenset({"matching"}),
    consumers=frozenset({"intake", "analytics"}),
    description="Matching could not find a peer in time: the hospital's coordinators are alerted.",
)
REFERRAL_MADE = Topic(
    name="huddle.referral-made.v1",
    key="case id",
    event_types=("huddle.referral_made.v1",),
    publishers=frozenset({"intake", "sessions"}),
    consumers=frozenset({"intake", "analytics"}),
    description="Tier 3: a referral to professional help.",
)
PEER_CERTIFICATION = Topic(
    name="huddle.peer-certification.v1",
    key="peer id",
    event_types=("huddle.peer_certified.v1", "huddle.certification_lapsed.v1"),
    publishers=frozenset({"training"}),
    consumers=frozenset({"matching", "analytics"}),
    description="A peer's certification began or lapsed.",
)
ANALYTICS_ANONYMISED = Topic(
    name="huddle.analytics.anonymised.v1",
    key="none (random)",
    event_types=("huddle.analytics.programme_event.v1",),
    publishers=frozenset({"analytics"}),
    consumers=frozenset({"analysts"}),
    keyed=False,
    description="The analysts' stream: random surrogates, coarsened times, small cells suppressed.",
)

TOPICS: tuple[Topic, ...] = (
    INBOUND_ADVERSE_EVENTS,
    ADVERSE_EVENT_REPORTED,
    SUPPORT_REQUESTED,
    PEER_MATCHED,
    MATCH_ESCALATED,
    SESSION_COMPLETED,
    REFERRAL_MADE,
    PEER_CERTIFICATION,
    ANALYTICS_ANONYMISED,
)


def all_topic_names(*, with_dead_letters: bool = True) -> list[str]:
    """Every topic the platform uses, dead-letter topics included, for creating them."""
    names = [t.name for t in TOPICS]
    if with_dead_letters:
        names += [t.dead_letter for t in TOPICS]
    return names


def topic_for_event_type(event_type: str) -> Topic:
    for topic in TOPICS:
        if event_type in topic.event_types:
            return topic
    raise KeyError(f"no topic carries event type {event_type!r}")


def published_by(service: str) -> list[Topic]:
    return [t for t in TOPICS if service in t.publishers]


def consumed_by(service: str) -> list[Topic]:
    return [t for t in TOPICS if service in t.consumers]
