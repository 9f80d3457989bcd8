"""A support request's journey as its requester sees it, and the crisis rule (DOMAIN.md:
"Crisis: never wait for a peer; escalate to professional help at once")."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from types import MappingProxyType

from huddle_contracts.events import ReferralMade
from huddle_contracts.vocabulary import ReferralResource, Urgency

from huddle_intake.domain.support_request import SupportRequest

# Where each step of the journey leaves the request; closed and withdrawn are final.
STATUS_AFTER = {
    "requested": "requested",
    "referred_to_crisis_support": "referred",
    "offered": "finding a peer",
    "escalated": "finding a peer",
    "matched": "peer assigned",
    "contact": "in contact",
    "referred": "referred",
    "closed": "closed",
    "withdrawn": "withdrawn",
    "declined": "withdrawn",
}
FINAL = frozenset({"closed", "withdrawn"})
STATUSES = frozenset(STATUS_AFTER.values())
"""Every status a request can be in (the first step's, then each step's)."""


def status_after(current: str, step: str) -> str:
    """The request's status after a step of its journey (final states stay final)."""
    if current in FINAL:
        return current
    if step == "offered" and current in ("peer assigned", "in contact", "referred"):
        return current  # a late offer notice does not undo a match
    return STATUS_AFTER.get(step, current)


@cache
def statuses_after(step: str) -> Mapping[str, str]:
    """``status_after`` for every status a request can be in, for one step."""
    return MappingProxyType({status: status_after(status, step) for status in STATUSES})


def a_crisis_never_waits_for_a_peer(urgency: Urgency) -> bool:
    return urgency is Urgency.CRISIS


def crisis_referral(request: SupportRequest, now: datetime) -> ReferralMade:
    """Tier 3, urgent, to the crisis line, made by intake itself (no peer in between)."""
    return ReferralMade(
        network_id=request.network_id,
        hospital_id=request.hospital_id,
        case_id=request.case_id,
        referral_id=uuid.uuid4(),
        urgency=Urgency.URGENT,
        resource=ReferralResource.CRISIS_LINE,
        referred_by=None,
        made_at=now,
    )
