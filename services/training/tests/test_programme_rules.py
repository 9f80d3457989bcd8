"""The programme's rules without servers: nominations (domain/nomination.py), the catalogue and
cohorts (domain/course.py) and the certification rule (domain/certification_rule.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from huddle_contracts.events import PeerCertified
from huddle_contracts.vocabulary import Discipline, Gender
from huddle_training.domain.certification import certification_valid_until
from huddle_training.domain.certification_rule import (
    Attendance,
    CertificationRule,
    CertificationRuleBroken,
    a_rule_names_only_modules_of_the_catalogue,
    automatic_certification,
    completing_every_required_module_certifies_the_peer,
)
from huddle_training.domain.course import (
    SUGGESTED_CURRICULUM,
    Cohort,
    CourseRuleBroken,
    Delivery,
    Module,
    a_peer_completes_the_cohort_by_attending_every_module,
    a_withdrawn_peer_is_not_enrolled,
    attendance_falls_within_the_cohort_dates,
    attendance_is_taken_for_a_module_the_cohort_teaches,
    only_enrolled_peers_attend,
    plan_cohort,
)
from huddle_training.domain.nomination import (
    Nomination,
    NominationRuleBroken,
    NominationStatus,
    nominate,
)
from huddle_training.domain.roster import Peer, PeerStatus, register_peer

NOMINEE = "p_" + "a" * 32
COLLEAGUE = "p_" + "b" * 32
COORDINATOR = "p_" + "c" * 32
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
CATALOGUE = {m.code: m for m in SUGGESTED_CURRICULUM}
COURSE = ("peer-support-concepts", "psychological-first-aid", "active-listening")


def a_nomination(**changes: object) -> Nomination:
    nomination = nominate(
        nomination_id=uuid.uuid4(),
        network_id="north",
        hospital_id="st-mary",
        unit_id="icu",
        discipline=Discipline.NURSE,
        nominee=NOMINEE,
        nominated_by=COLLEAGUE,
        nominated_at=NOW - timedelta(days=2),
        clinical_area="icu",
    )
    return replace(nomination, **changes)  # type: ignore[arg-type]


def consented() -> Nomination:
    return a_nomination().consent(by=NOMINEE, languages=["en", "fr", "en"], gender=None, at=NOW)


def a_peer(**changes: object) -> Peer:
    peer = register_peer(
        pseudonym=NOMINEE,
        network_id="north",
        hospital_id="st-mary",
        unit_id="icu",
        discipline=Discipline.NURSE,
        languages=["en"],
        registered_at=NOW - timedelta(days=60),
    )
    return replace(peer, **changes)  # type: ignore[arg-type]


def attended(*modules: str, at: datetime = NOW - timedelta(days=1)) -> list[Attendance]:
    return [Attendance(code, at + timedelta(hours=i)) for i, code in enumerate(modules)]


# Nominations ---------------------------------------------------------------------------------


def test_a_new_nomination_waits_for_the_nominees_answer() -> None:
    nomination = a_nomination()
    assert nomination.status is NominationStatus.PENDING and nomination.is_open


def test_nomination_needs_the_nominees_consent_before_approval() -> None:
    with pytest.raises(NominationRuleBroken, match="has not consented"):
        a_nomination().approve(by=COORDINATOR, at=NOW)
    approved, peer = consented().approve(by=COORDINATOR, at=NOW)
    assert approved.status is NominationStatus.APPROVED and approved.decided_by == COORDINATOR


def test_a_refused_nomination_cannot_be_approved() -> None:
    refused = consented().refuse(by=NOMINEE, at=NOW)  # consent withdrawn before the decision
    assert refused.status is NominationStatus.REFUSED and refused.languages == ()
    with pytest.raises(NominationRuleBroken, match="they refused"):
        refused.approve(by=COORDINATOR, at=NOW)


def test_an_approved_nomination_enrols_the_nominee_as_a_registered_peer() -> None:
    _, peer = consented().approve(by=COORDINATOR, at=NOW)
    assert peer.pseudonym == NOMINEE and peer.status is PeerStatus.REGISTERED
    assert (peer.hospital_id, peer.unit_id, peer.discipline) == ("st-mary", "icu", "nurse")
    assert peer.languages == ("en", "fr") and peer.registered_at == NOW
    assert not peer.may_be_matched(NOW)


def test_only_the_nominee_answers_a_nomination() -> None:
    with pytest.raises(NominationRuleBroken, match="only the nominee"):
        a_nomination().consent(by=COLLEAGUE, languages=["en"], gender=None, at=NOW)
    with pytest.raises(NominationRuleBroken, match="only the nominee"):
        a_nomination().refuse(by=COORDINATOR, at=NOW)


def test_the_nominee_consents_with_at_least_one_language() -> None:
    with pytest.raises(NominationRuleBroken, match="at least one language"):
        a_nomination().consent(by=NOMINEE, languages=[], gender=None, at=NOW)
    answered = a_nomination().consent(by=NOMINEE, languages=["de"], gender=Gender.MAN, at=NOW)
    assert answered.languages == ("de",) and answered.gender is Gender.MAN


def test_a_colleague_is_nominated_not_oneself() -> None:
    with pytest.raises(NominationRuleBroken, match="puts a colleague forward"):
        a_nomination(nominated_by=NOMINEE)


def test_no_one_decides_on_their_own_nomination() -> None:
    with pytest.raises(NominationRuleBroken, match="your own nomination"):
        consented().approve(by=NOMINEE, at=NOW)
    with pytest.raises(NominationRuleBroken, match="your own nomination"):
        consented().decline(by=NOMINEE, at=NOW)


@pytest.mark.parametrize("outcome", ["approve", "decline"])
def test_a_decided_nomination_is_final(outcome: str) -> None:
    nomination = consented()
    decided = (
        nomination.approve(by=COORDINATOR, at=NOW)[0]
        if outcome == "approve"
        else nomination.decline(by=COORDINATOR, at=NOW)
    )
    assert not decided.is_open
    with pytest.raises(NominationRuleBroken, match="already"):
        decided.refuse(by=NOMINEE, at=NOW)
    with pytest.raises(NominationRuleBroken, match="already"):
        decided.consent(by=NOMINEE, languages=["en"], gender=None, at=NOW)
    with pytest.raises(NominationRuleBroken, match="already"):
        decided.decline(by=COORDINATOR, at=NOW)


def test_a_coordinator_may_decline_before_the_nominee_answers() -> None:
    declined = a_nomination().decline(by=COORDINATOR, at=NOW)
    assert declined.status is NominationStatus.DECLINED


def test_a_refusal_is_final_for_that_nomination() -> None:
    refused = a_nomination().refuse(by=NOMINEE, at=NOW)
    with pytest.raises(NominationRuleBroken, match="refused"):
        refused.consent(by=NOMINEE, languages=["en"], gender=None, at=NOW)
    with pytest.raises(NominationRuleBroken, match="refused"):
        refused.decline(by=COORDINATOR, at=NOW)


# Catalogue and cohorts ------------------------------------------------------------------------


def test_the_suggested_curriculum_covers_the_domain() -> None:
    assert set(CATALOGUE) == {
        "peer-support-concepts",
        "psychological-first-aid",
        "active-listening",
        "warning-signs-and-referral",
        "crisis-management",
        "self-care",
    }
    assert {m.delivery for m in SUGGESTED_CURRICULUM} == {Delivery.IN_PERSON, Delivery.ONLINE}


@pytest.mark.parametrize("hours", [0, 0.25, 40.5, -1])
def test_a_module_takes_between_half_an_hour_and_a_working_week(hours: float) -> None:
    with pytest.raises(CourseRuleBroken, match=r"between 0\.5 and 40 hours"):
        Module("self-care", "Self-care", hours, Delivery.ONLINE)
    Module("self-care", "Self-care", 0.5, Delivery.ONLINE)
    Module("psychological-first-aid", "RAPID", 40, Delivery.IN_PERSON)


def a_cohort(modules: tuple[str, ...] = COURSE, **changes: object) -> Cohort:
    cohort = plan_cohort(
        cohort_id=uuid.uuid4(),
        network_id="north",
        hospital_id="st-mary",
        label="spring-2026",
        starts_at=NOW - timedelta(days=7),
        ends_at=NOW + timedelta(days=7),
        modules=modules,
        catalogue=CATALOGUE,
        created_at=NOW - timedelta(days=30),
    )
    return replace(cohort, **changes)  # type: ignore[arg-type]


def test_a_cohort_teaches_only_modules_of_the_catalogue() -> None:
    with pytest.raises(CourseRuleBroken, match="not in your network's course catalogue: yoga"):
        a_cohort(modules=("self-care", "yoga"))


def test_a_cohort_ends_after_it_starts() -> None:
    with pytest.raises(CourseRuleBroken, match="ends_at must be after starts_at"):
        a_cohort(ends_at=NOW - timedelta(days=8))


def test_a_cohort_teaches_at_least_one_module_each_once() -> None:
    with pytest.raises(CourseRuleBroken, match="at least one module"):
        a_cohort(modules=())
    assert a_cohort(modules=("self-care", "self-care")).modules == ("self-care",)


def test_a_cohorts_hours_add_up_its_modules() -> None:
    assert a_cohort().hours(CATALOGUE) == 3 + 12 + 2


def test_attendance_is_taken_for_a_module_the_cohort_teaches() -> None:
    with pytest.raises(CourseRuleBroken, match="does not teach 'self-care'"):
        attendance_is_taken_for_a_module_the_cohort_teaches(a_cohort(), "self-care")


def test_attendance_falls_within_the_cohort_dates() -> None:
    cohort = a_cohort()
    attendance_falls_within_the_cohort_dates(cohort, NOW - timedelta(days=1), NOW)
    with pytest.raises(CourseRuleBroken, match="within the cohort's dates"):
        attendance_falls_within_the_cohort_dates(cohort, NOW - timedelta(days=8), NOW)
    with pytest.raises(CourseRuleBroken, match="future"):
        attendance_falls_within_the_cohort_dates(cohort, NOW + timedelta(days=1), NOW)


def test_only_enrolled_peers_attend() -> None:
    with pytest.raises(CourseRuleBroken, match=f"not enrolled in this cohort: {COLLEAGUE}"):
        only_enrolled_peers_attend([NOMINEE], [NOMINEE, COLLEAGUE])


def test_a_withdrawn_peer_is_not_enrolled() -> None:
    with pytest.raises(CourseRuleBroken, match="withdrawn"):
        a_withdrawn_peer_is_not_enrolled(a_peer(status=PeerStatus.WITHDRAWN))
    a_withdrawn_peer_is_not_enrolled(a_peer(status=PeerStatus.LAPSED))


def test_a_peer_completes_the_cohort_by_attending_every_module() -> None:
    cohort = a_cohort()
    times = {code: NOW - timedelta(days=3 - i) for i, code in enumerate(COURSE)}
    assert a_peer_completes_the_cohort_by_attending_every_module(cohort, times) == max(
        times.values()
    )
    del times["active-listening"]
    assert a_peer_completes_the_cohort_by_attending_every_module(cohort, times) is None


# The certification rule ------------------------------------------------------------------------


def test_validity_defaults_to_12_months() -> None:
    rule = CertificationRule(required_modules=COURSE)
    assert rule.validity_months == 12
    certification = automatic_certification(
        rule, a_peer(), attended(*COURSE), now=NOW, certification_id=uuid.uuid4()
    )
    assert certification is not None
    assert certification.valid_until == certification_valid_until(certification.certified_at, 12)


def test_validity_is_configurable_per_network() -> None:
    rule = CertificationRule(required_modules=COURSE, validity_months=24)
    certification = automatic_certification(
        rule, a_peer(), attended(*COURSE), now=NOW, certification_id=uuid.uuid4()
    )
    assert certification is not None
    assert certification.valid_until.year == certification.certified_at.year + 2


@pytest.mark.parametrize("months", [0, 121])
def test_validity_is_between_one_month_and_ten_years(months: int) -> None:
    with pytest.raises(CertificationRuleBroken, match="1 to 120 months"):
        CertificationRule(required_modules=COURSE, validity_months=months)


def test_a_rule_requires_at_least_one_module() -> None:
    with pytest.raises(CertificationRuleBroken, match="at least one module"):
        CertificationRule(required_modules=())


def test_a_rule_names_only_modules_of_the_catalogue() -> None:
    rule = CertificationRule(required_modules=COURSE, refresher_modules=("recall",))
    with pytest.raises(CertificationRuleBroken, match="catalogue: recall"):
        a_rule_names_only_modules_of_the_catalogue(rule, CATALOGUE)


def test_the_refresher_is_the_course_again_unless_configured() -> None:
    assert CertificationRule(required_modules=COURSE).refresher_modules == COURSE
    rule = CertificationRule(required_modules=COURSE, refresher_modules=("self-care",))
    assert rule.modules_for(a_peer()) == COURSE
    assert rule.modules_for(a_peer(certified_at=NOW - timedelta(days=300))) == ("self-care",)


def test_completing_every_required_module_certifies_the_peer() -> None:
    rule = CertificationRule(required_modules=COURSE)
    record = attended(*COURSE)
    certification = automatic_certification(
        rule, a_peer(), record, now=NOW, certification_id=uuid.uuid4()
    )
    assert certification is not None
    last = max(a.attended_at for a in record)
    assert (certification.peer, certification.certified_at) == (NOMINEE, last)
    assert certification.valid_until == certification_valid_until(last)
    assert certification.recorded_at == NOW
    certified, event = a_peer().certify(certification)  # the one certify path
    assert certified.status is PeerStatus.CERTIFIED and isinstance(event, PeerCertified)
    assert event.valid_until == certification.valid_until


def test_a_module_missing_certifies_no_one() -> None:
    rule = CertificationRule(required_modules=COURSE)
    partial = attended(*COURSE[:-1], "self-care")
    assert completing_every_required_module_certifies_the_peer(rule, a_peer(), partial) is None


def test_a_refresher_renews_the_certification() -> None:
    rule = CertificationRule(required_modules=COURSE)
    first = NOW - timedelta(days=300)
    peer = a_peer(
        status=PeerStatus.CERTIFIED,
        certified_at=first,
        valid_until=certification_valid_until(first),
    )
    before = attended(*COURSE, at=first - timedelta(days=1))
    # The attendance that certified them does not renew it ...
    assert completing_every_required_module_certifies_the_peer(rule, peer, before) is None
    # ... completing again does, from the refresher's last module.
    again = attended(*COURSE)
    renewed = automatic_certification(
        rule, peer, before + again, now=NOW, certification_id=uuid.uuid4()
    )
    assert renewed is not None and renewed.certified_at == max(a.attended_at for a in again)
    assert renewed.valid_until > peer.valid_until  # type: ignore[operator]


def test_a_lapsed_peer_is_certified_again_by_the_refresher() -> None:
    rule = CertificationRule(required_modules=COURSE, refresher_modules=("self-care",))
    first = NOW - timedelta(days=500)
    peer = a_peer(status=PeerStatus.LAPSED, certified_at=first, valid_until=first)
    certification = automatic_certification(
        rule, peer, attended("self-care"), now=NOW, certification_id=uuid.uuid4()
    )
    assert certification is not None and peer.certify(certification)[0].status is (
        PeerStatus.CERTIFIED
    )


def test_a_withdrawn_peer_is_not_certified_by_attending() -> None:
    rule = CertificationRule(required_modules=COURSE)
    withdrawn = a_peer(status=PeerStatus.WITHDRAWN)
    assert (
        completing_every_required_module_certifies_the_peer(rule, withdrawn, attended(*COURSE))
        is None
    )


def test_modules_completed_longer_ago_than_the_validity_certify_no_one() -> None:
    rule = CertificationRule(required_modules=COURSE, validity_months=1)
    old = attended(*COURSE, at=NOW - timedelta(days=60))
    assert automatic_certification(rule, a_peer(), old, now=NOW, certification_id=uuid.uuid4()) is (
        None
    )
