"""Who a support request is for, by origin (domain/support_request.py)."""

from __future__ import annotations

import pytest
from huddle_contracts.vocabulary import Origin
from huddle_intake.domain.support_request import ContactDetails, RequestRefused, requester_of


def test_a_self_referral_is_for_the_submitter() -> None:
    assert requester_of(origin=Origin.SELF, submitter="p_me", referred=None) == "p_me"


def test_a_self_referral_cannot_name_someone_else() -> None:
    with pytest.raises(RequestRefused, match="cannot name another person"):
        requester_of(origin=Origin.SELF, submitter="p_me", referred="p_you")


@pytest.mark.parametrize("origin", [Origin.COLLEAGUE, Origin.MANAGER])
def test_a_colleague_or_manager_referral_is_for_the_person_named(origin: Origin) -> None:
    assert requester_of(origin=origin, submitter="p_me", referred="p_you") == "p_you"


@pytest.mark.parametrize("origin", [Origin.COLLEAGUE, Origin.MANAGER])
def test_a_referral_must_name_the_person(origin: Origin) -> None:
    with pytest.raises(RequestRefused, match="must name the person"):
        requester_of(origin=origin, submitter="p_me", referred=None)


def test_a_referral_cannot_name_yourself() -> None:
    with pytest.raises(RequestRefused, match="someone other than yourself"):
        requester_of(origin=Origin.MANAGER, submitter="p_me", referred="p_me")


def test_outreach_is_offered_by_huddle_never_requested_by_a_caller() -> None:
    with pytest.raises(RequestRefused, match="set by Huddle"):
        requester_of(origin=Origin.OUTREACH, submitter="p_me", referred=None)


def test_contact_details_without_phone_or_email_are_empty() -> None:
    assert ContactDetails().empty
    assert not ContactDetails(email="a@b.example").empty
