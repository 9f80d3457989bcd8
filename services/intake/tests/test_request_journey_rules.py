"""DOMAIN.md: a crisis never waits for a peer; the requester sees where their request stands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from huddle_contracts.vocabulary import Discipline, Origin, ReferralResource, Tier, Urgency
from huddle_intake.domain.request_journey import (
    a_crisis_never_waits_for_a_peer,
    crisis_referral,
    status_after,
)
from huddle_intake.domain.support_request import SupportRequest


def test_a_crisis_never_waits_for_a_peer() -> None:
    assert a_crisis_never_waits_for_a_peer(Urgency.CRISIS)
    assert not a_crisis_never_waits_for_a_peer(Urgency.URGENT)
    request = SupportRequest(
        case_id=uuid.uuid4(),
        network_id="north",
        hospital_id="h1",
        unit_id="icu",
        requester="p_" + "1" * 32,
        submitted_by="p_" + "1" * 32,
        discipline=Discipline.NURSE,
        origin=Origin.SELF,
        urgency=Urgency.CRISIS,
        requested_at=datetime.now(UTC),
    )
    referral = crisis_referral(request, request.requested_at)
    assert (referral.tier, referral.urgency, referral.resource) == (
        Tier.PROFESSIONAL,
        Urgency.URGENT,
        ReferralResource.CRISIS_LINE,
    )
    assert referral.referred_by is None and referral.case_id == request.case_id


def test_the_requester_sees_each_step_of_the_journey() -> None:
    status = "requested"
    for step, expected in [
        ("offered", "finding a peer"),
        ("matched", "peer assigned"),
        ("offered", "peer assigned"),
        ("contact", "in contact"),
        ("referred", "referred"),
        ("closed", "closed"),
        ("contact", "closed"),
    ]:
        status = status_after(status, step)
        assert status == expected, step


def test_withdrawal_is_final() -> None:
    assert status_after(status_after("finding a peer", "withdrawn"), "matched") == "withdrawn"
