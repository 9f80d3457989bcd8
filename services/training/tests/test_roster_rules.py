"""The roster's rules (domain/certification.py and domain/roster.py), without servers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from huddle_contracts.events import CertificationLapsed, PeerCertified
from huddle_contracts.vocabulary import Discipline, Gender
from huddle_training.domain.certification import (
    Certification,
    CertificationRefused,
    add_calendar_months,
    certification_valid_until,
)
from huddle_training.domain.roster import Peer, PeerStatus, RosterRuleBroken, register_peer
from hypothesis import given
from hypothesis import strategies as st

PEER = "p_" + "a" * 32
NOW = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)


def a_peer(**changes: object) -> Peer:
    peer = register_peer(
        pseudonym=PEER,
        network_id="north",
        hospital_id="st-mary",
        unit_id="icu",
        discipline=Discipline.NURSE,
        languages=["en", "fr"],
        clinical_area="icu",
        gender=Gender.WOMAN,
        registered_at=NOW - timedelta(days=30),
    )
    return replace(peer, **changes)  # type: ignore[arg-type]


def a_certification(
    certified_at: datetime = NOW, valid_until: datetime | None = None, recorded_at: datetime = NOW
) -> Certification:
    return Certification(
        certification_id=uuid.uuid4(),
        network_id="north",
        peer=PEER,
        certified_at=certified_at,
        valid_until=valid_until or certification_valid_until(certified_at),
        recorded_at=recorded_at,
    )


# Certification validity ---------------------------------------------------------------------------


def test_certification_valid_for_twelve_months_by_default() -> None:
    assert certification_valid_until(NOW) == datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def test_certification_validity_is_configurable() -> None:
    assert certification_valid_until(NOW, months=6) == datetime(2025, 9, 10, 9, 30, tzinfo=UTC)
    assert certification_valid_until(NOW, months=24) == datetime(2027, 3, 10, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("certified", "months", "valid_until"),
    [
        (datetime(2025, 1, 31, tzinfo=UTC), 1, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), 12, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2025, 8, 31, tzinfo=UTC), 1, datetime(2025, 9, 30, tzinfo=UTC)),
        (datetime(2025, 11, 15, tzinfo=UTC), 3, datetime(2026, 2, 15, tzinfo=UTC)),
        (datetime(2025, 12, 31, tzinfo=UTC), 2, datetime(2026, 2, 28, tzinfo=UTC)),
    ],
)
def test_certification_validity_counts_calendar_months(
    certified: datetime, months: int, valid_until: datetime
) -> None:
    assert certification_valid_until(certified, months=months) == valid_until


def test_certification_is_valid_for_at_least_one_month() -> None:
    with pytest.raises(CertificationRefused, match="at least one month"):
        certification_valid_until(NOW, months=0)


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    months=st.integers(min_value=1, max_value=120),
)
def test_calendar_months_keep_the_day_or_end_the_month(moment: datetime, months: int) -> None:
    later = add_calendar_months(moment, months)
    assert later > moment
    assert (later.year - moment.year) * 12 + later.month - moment.month == months
    assert later.day == moment.day or (later + timedelta(days=1)).month != later.month
    assert later.time() == moment.time() and later.tzinfo == moment.tzinfo


def test_a_certification_ends_after_it_begins() -> None:
    with pytest.raises(CertificationRefused, match="after certified_at"):
        a_certification(valid_until=NOW)


def test_a_certification_cannot_be_dated_in_the_future() -> None:
    with pytest.raises(CertificationRefused, match="future"):
        a_certification(certified_at=NOW + timedelta(days=1))
    a_certification(certified_at=NOW + timedelta(minutes=1))  # a client clock a little ahead


def test_a_certification_already_expired_is_not_recorded() -> None:
    with pytest.raises(CertificationRefused, match="already passed"):
        a_certification(certified_at=NOW - timedelta(days=400))


# Roster -------------------------------------------------------------------------------------------


def test_a_new_peer_is_registered_not_certified() -> None:
    peer = a_peer()
    assert peer.status is PeerStatus.REGISTERED
    assert not peer.may_be_matched(NOW)


def test_a_peer_offers_support_in_at_least_one_language() -> None:
    with pytest.raises(RosterRuleBroken, match="at least one language"):
        a_peer(languages=())


def test_each_language_is_kept_once_in_the_order_given() -> None:
    peer = register_peer(
        pseudonym=PEER,
        network_id="north",
        hospital_id="st-mary",
        unit_id="icu",
        discipline=Discipline.NURSE,
        languages=["fr", "en", "fr"],
        registered_at=NOW,
    )
    assert peer.languages == ("fr", "en")


def test_certifying_a_registered_peer_announces_peer_certified() -> None:
    certification = a_certification()
    certified, event = a_peer().certify(certification)
    assert certified.status is PeerStatus.CERTIFIED
    assert certified.valid_until == certification.valid_until
    assert event == PeerCertified(
        network_id="north",
        hospital_id="st-mary",
        peer=PEER,
        unit_id="icu",
        discipline=Discipline.NURSE,
        languages=("en", "fr"),
        clinical_area="icu",
        gender=Gender.WOMAN,
        certified_at=certification.certified_at,
        valid_until=certification.valid_until,
    )


@pytest.mark.parametrize("status", [PeerStatus.CERTIFIED, PeerStatus.LAPSED])
def test_a_refresher_certifies_a_certified_or_lapsed_peer_again(status: PeerStatus) -> None:
    certified, _ = a_peer(status=status).certify(a_certification())
    assert certified.status is PeerStatus.CERTIFIED


def test_a_withdrawn_peer_cannot_be_certified() -> None:
    with pytest.raises(RosterRuleBroken, match="withdrawn"):
        a_peer(status=PeerStatus.WITHDRAWN).certify(a_certification())


def test_a_certification_is_for_its_own_peer() -> None:
    with pytest.raises(RosterRuleBroken, match="another peer"):
        a_peer(pseudonym="p_" + "b" * 32).certify(a_certification())


def test_only_peers_whose_training_is_current_are_matched() -> None:
    certified, _ = a_peer().certify(a_certification())
    assert certified.may_be_matched(NOW)
    assert not certified.may_be_matched(certification_valid_until(NOW))


def test_a_withdrawn_peer_is_not_matched() -> None:
    certified, _ = a_peer().certify(a_certification())
    withdrawn, _ = certified.withdraw(NOW)
    assert withdrawn.status is PeerStatus.WITHDRAWN
    assert not withdrawn.may_be_matched(NOW)


def test_withdrawing_a_certified_peer_announces_the_lapse() -> None:
    certified, _ = a_peer().certify(a_certification())
    _, lapse = certified.withdraw(NOW)
    assert lapse == CertificationLapsed(
        network_id="north", hospital_id="st-mary", peer=PEER, lapsed_at=NOW
    )


def test_withdrawal_is_idempotent() -> None:
    certified, _ = a_peer().certify(a_certification())
    withdrawn, _ = certified.withdraw(NOW)
    again, lapse = withdrawn.withdraw(NOW + timedelta(hours=1))
    assert again == withdrawn and lapse is None


@pytest.mark.parametrize("status", [PeerStatus.REGISTERED, PeerStatus.LAPSED])
def test_withdrawing_a_peer_matching_cannot_offer_announces_nothing(status: PeerStatus) -> None:
    withdrawn, lapse = a_peer(status=status).withdraw(NOW)
    assert withdrawn.status is PeerStatus.WITHDRAWN and lapse is None


def test_a_certification_lapses_when_its_validity_ends() -> None:
    from datetime import UTC, datetime, timedelta

    from huddle_training.domain.roster import Peer, PeerStatus

    now = datetime(2026, 11, 26, tzinfo=UTC)
    peer = Peer(
        pseudonym="p_" + "a" * 32,
        network_id="north",
        hospital_id="h1",
        unit_id="icu",
        discipline="nurse",
        languages=("en",),
        registered_at=now - timedelta(days=400),
        status=PeerStatus.CERTIFIED,
        certified_at=now - timedelta(days=366),
        valid_until=now - timedelta(days=1),
    )
    lapsed, event = peer.lapse(now)
    assert lapsed.status is PeerStatus.LAPSED and event is not None
    assert event.lapsed_at == peer.valid_until
    assert lapsed.lapse(now) == (lapsed, None)  # once
    current = Peer(**{**peer.__dict__, "valid_until": now + timedelta(days=1)})
    assert current.lapse(now) == (current, None)
