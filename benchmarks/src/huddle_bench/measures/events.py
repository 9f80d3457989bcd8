"""Real contract events, encoded exactly as the outbox stores them (CloudEvent headers included)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from huddle_contracts.events import OfferMade
from huddle_contracts.topics import topic_for_event_type
from huddle_contracts.vocabulary import Urgency
from huddle_runtime.outbox import OutboxMessage, outbox_message

from huddle_bench.context import Context

SOURCE = "/huddle/matching"
NETWORK = "bench-network"
# Matching's OfferMade: the event a surge publishes thousands of, on huddle.peer-matched.v1.
TOPIC = topic_for_event_type(OfferMade.event_type)


def offer_made(rng: random.Random, now: datetime) -> OfferMade:
    return OfferMade(
        network_id=NETWORK,
        hospital_id=f"hospital-{rng.randrange(100):03d}",
        case_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        offer_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        peer=f"p_{rng.getrandbits(128):032x}",
        urgency=rng.choice(list(Urgency)),
        offered_at=now,
        respond_by=now + timedelta(minutes=10),
    )


def offer_messages(ctx: Context, count: int) -> list[OutboxMessage]:
    """``count`` distinct OfferMade records (distinct keys), seeded; built once per session."""
    key = f"offer_messages:{count}"
    if key not in ctx.cache:
        rng = random.Random(ctx.seed)
        now = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
        ctx.cache[key] = [outbox_message(offer_made(rng, now), source=SOURCE) for _ in range(count)]
    messages: list[OutboxMessage] = ctx.cache[key]
    return messages


def record_bytes(message: OutboxMessage) -> int:
    """Bytes on the wire that the application controls: key, value and headers."""
    headers = sum(len(n) + len(v) for n, v in message.headers)
    return len(message.key or b"") + len(message.value) + headers
