"""Factories for tests: valid domain objects with one or two fields changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from huddle_contracts.vocabulary import Discipline, Urgency
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def make_peer(name: str, **changes: Any) -> Peer:
    fields: dict[str, Any] = {
        "pseudonym": f"p_{name}",
        "network_id": "north",
        "hospital_id": "st-mary",
        "unit_id": "surgery",
        "discipline": Discipline.NURSE,
        "certified_until": NOW + timedelta(days=200),
        "languages": frozenset({"en"}),
        "on_call": True,
    }
    return Peer(**{**fields, **changes})


def make_need(**changes: Any) -> SupportNeed:
    fields: dict[str, Any] = {
        "case_id": uuid.uuid4(),
        "network_id": "north",
        "hospital_id": "st-mary",
        "unit_id": "icu",
        "requester": "p_requester",
        "discipline": Discipline.NURSE,
        "urgency": Urgency.ROUTINE,
        "requested_at": NOW,
    }
    return SupportNeed(**{**fields, **changes})
