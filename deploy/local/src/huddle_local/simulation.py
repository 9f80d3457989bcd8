"""A seeded simulation of a health network's peer-support programme: the events its services
would have published over some months, and the outcome surveys its staff would have answered.

It feeds analytics (the demo network of `huddle up`, the end-to-end test of a simulated quarter,
the benchmarks) without waiting months. The same seed gives the same programme. Rates follow
DOMAIN.md: tier-2 contacts 1 to 3 of 15 to 45 minutes, about a third referred on, outreach to
everyone involved in a qualifying event, a few calls a month per peer.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from huddle_contracts.cloudevents import to_headers
from huddle_contracts.events import (
    AdverseEventReported,
    CaseClosed,
    CertificationLapsed,
    Event,
    InvolvedStaff,
    MatchEscalated,
    OfferMade,
    PeerCertified,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportRequested,
    SupportWithdrawn,
)
from huddle_contracts.pseudonyms import pseudonymise
from huddle_contracts.registry import encode_event, topic_for
from huddle_contracts.vocabulary import (
    Discipline,
    EscalationReason,
    EventClass,
    HarmCategory,
    HarmLevel,
    Mode,
    Origin,
    ReferralResource,
    Tier,
    Urgency,
    Withdrawal,
)

UNITS = ("emergency", "icu", "surgery", "medicine", "paediatrics", "oncology")
DISCIPLINES = (Discipline.NURSE, Discipline.PHYSICIAN, Discipline.ALLIED_HEALTH)
DISCIPLINE_WEIGHTS = (6, 3, 1)


@dataclass
class Survey:
    """One respondent's pre and (maybe) post answers to an instrument."""

    instrument: str
    hospital: str
    pre_month: str
    pre: list[int]
    post_month: str | None
    post: list[int] | None


@dataclass
class Simulation:
    network: str
    hospitals: tuple[str, ...]
    months: tuple[str, ...]
    events: list[Event] = field(default_factory=list)
    surveys: list[Survey] = field(default_factory=list)

    def of_type(self, model: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, model)]


def _month_start(month: str) -> datetime:
    year, number = month.split("-")
    return datetime(int(year), int(number), 1, tzinfo=UTC)


def _months(first: str, count: int) -> tuple[str, ...]:
    start = _month_start(first)
    months = []
    for i in range(count):
        year = start.year + (start.month - 1 + i) // 12
        month = (start.month - 1 + i) % 12 + 1
        months.append(f"{year:04d}-{month:02d}")
    return tuple(months)


def simulate(
    *,
    network: str,
    hospitals: Sequence[str],
    first_month: str,
    months: int = 3,
    requests_per_hospital_month: int = 40,
    peers_per_hospital: int = 24,
    survey_pairs_per_hospital: int = 30,
    seed: int = 7,
    secret: bytes = b"huddle-simulation-network-secret",
) -> Simulation:
    """The programme's events, oldest first, and its surveys."""
    rng = random.Random(seed)
    sim = Simulation(network, tuple(hospitals), _months(first_month, months))

    def pseudonym(ref: str) -> str:
        return pseudonymise(secret, ref)

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    start = _month_start(sim.months[0])
    end = _month_start(_months(sim.months[-1], 2)[1])
    span = (end - start).total_seconds()

    peers: dict[str, list[tuple[str, Discipline]]] = {}
    for hospital in sim.hospitals:
        roster = []
        for i in range(peers_per_hospital):
            peer = pseudonym(f"{hospital}-peer-{i}")
            discipline = rng.choices(DISCIPLINES, DISCIPLINE_WEIGHTS)[0]
            certified = start - timedelta(days=rng.uniform(30, 300))
            sim.events.append(
                PeerCertified(
                    network_id=network,
                    hospital_id=hospital,
                    peer=peer,
                    unit_id=rng.choice(UNITS),
                    discipline=discipline,
                    languages=("en",),
                    clinical_area=rng.choice(UNITS),
                    certified_at=certified,
                    valid_until=certified + timedelta(days=365),
                )
            )
            roster.append((peer, discipline))
        peers[hospital] = roster
        # A few lapse during the period (no refresher yet).
        for peer, _ in rng.sample(roster, k=max(1, peers_per_hospital // 12)):
            sim.events.append(
                CertificationLapsed(
                    network_id=network,
                    hospital_id=hospital,
                    peer=peer,
                    lapsed_at=start + timedelta(seconds=rng.uniform(0, span)),
                )
            )

    staff_counter = 0

    def new_staff(hospital: str) -> tuple[str, Discipline, str]:
        nonlocal staff_counter
        staff_counter += 1
        discipline = rng.choices(DISCIPLINES, DISCIPLINE_WEIGHTS)[0]
        return pseudonym(f"{hospital}-staff-{staff_counter}"), discipline, rng.choice(UNITS)

    for hospital in sim.hospitals:
        total = requests_per_hospital_month * months
        # About a quarter of requests come from outreach after adverse events.
        outreach_budget = total // 4
        while outreach_budget > 0:
            involved_count = min(outreach_budget, rng.randint(2, 7))
            outreach_budget -= involved_count
            reported = start + timedelta(seconds=rng.uniform(0, span * 0.95))
            involved = [new_staff(hospital) for _ in range(involved_count)]
            event_id = new_id()
            harm = rng.choice((HarmLevel.MODERATE, HarmLevel.SEVERE, HarmLevel.DEATH))
            sim.events.append(
                AdverseEventReported(
                    network_id=network,
                    hospital_id=hospital,
                    adverse_event_id=event_id,
                    unit_ids=tuple(sorted({u for _, _, u in involved})),
                    event_class=EventClass.INCIDENT,
                    harm_level=harm,
                    categories=(
                        rng.choice(
                            (
                                HarmCategory.UNEXPECTED_DEATH,
                                HarmCategory.MEDICATION_ERROR,
                                HarmCategory.SERIOUS_SAFETY_EVENT,
                                HarmCategory.VIOLENCE_AGAINST_STAFF,
                            )
                        ),
                    ),
                    occurred_at=reported - timedelta(hours=rng.uniform(1, 12)),
                    reported_at=reported,
                    involved=tuple(
                        InvolvedStaff(pseudonym=p, discipline=d, unit_id=u) for p, d, u in involved
                    ),
                    outreach_triggered=True,
                    group_debrief_requested=involved_count > 5,
                )
            )
            for who in involved:
                _journey(
                    sim,
                    rng,
                    new_id,
                    hospital,
                    peers[hospital],
                    who,
                    Origin.OUTREACH,
                    reported + timedelta(minutes=rng.uniform(1, 20)),
                    event_id,
                )
        for _ in range(total - total // 4):
            origin = rng.choices((Origin.SELF, Origin.COLLEAGUE, Origin.MANAGER), (6, 2, 2))[0]
            requested = start + timedelta(seconds=rng.uniform(0, span * 0.97))
            _journey(
                sim,
                rng,
                new_id,
                hospital,
                peers[hospital],
                new_staff(hospital),
                origin,
                requested,
                None,
            )
        for i in range(survey_pairs_per_hospital):
            sim.surveys.append(_survey(rng, hospital, sim.months, "phq9", 9, 0, 3, i))
            sim.surveys.append(_survey(rng, hospital, sim.months, "proqol5", 30, 1, 5, i))
    sim.events.sort(key=lambda e: e.event_time)
    return sim


def _journey(
    sim: Simulation,
    rng: random.Random,
    new_id: Callable[[], uuid.UUID],
    hospital: str,
    roster: list[tuple[str, Discipline]],
    who: tuple[str, Discipline, str],
    origin: Origin,
    requested: datetime,
    adverse_event: uuid.UUID | None,
) -> None:
    """One support case: request, offers, match or escalation, sessions, referral, closure."""
    requester, discipline, unit = who
    network = sim.network
    case_id = new_id()
    urgency = rng.choices((Urgency.URGENT, Urgency.ROUTINE), (3, 7))[0]
    common = {"network_id": network, "hospital_id": hospital}
    sim.events.append(
        SupportRequested(
            **common,
            case_id=case_id,
            unit_id=unit,
            requester=requester,
            discipline=discipline,
            origin=origin,
            urgency=urgency,
            adverse_event_id=adverse_event,
            requested_at=requested,
            clinical_area=unit,
        )
    )
    # Outreach is an offer: many decline it (DOMAIN.md); few withdraw a request they made.
    if rng.random() < (0.25 if origin is Origin.OUTREACH else 0.04):
        sim.events.append(
            SupportWithdrawn(
                **common,
                case_id=case_id,
                reason=Withdrawal.DECLINED_OFFER,
                withdrawn_at=requested + timedelta(minutes=rng.uniform(2, 60)),
            )
        )
        return
    deadline = requested + (
        timedelta(minutes=30) if urgency is Urgency.URGENT else timedelta(hours=36)
    )
    offered = requested + timedelta(minutes=rng.uniform(0.2, 3))
    same = [p for p, d in roster if d == discipline] or [p for p, _ in roster]
    offers = rng.choices((1, 2, 3), (7, 2, 1))[0]
    moment = offered
    peer = same[0]
    first_offer_id = None
    for _ in range(offers):
        peer = rng.choice(same)
        offer_id = new_id()
        first_offer_id = first_offer_id or offer_id
        sim.events.append(
            OfferMade(
                **common,
                case_id=case_id,
                offer_id=offer_id,
                peer=peer,
                urgency=urgency,
                offered_at=moment,
                respond_by=moment + timedelta(minutes=10),
            )
        )
        moment += timedelta(minutes=rng.uniform(1, 9))
    if offers == 3 and rng.random() < 0.5:
        sim.events.append(
            MatchEscalated(
                **common,
                case_id=case_id,
                reason=EscalationReason.OFFERS_EXHAUSTED,
                urgency=urgency,
                offers_made=3,
                respond_by=deadline,
                widened_to_network=True,
                escalated_at=moment,
            )
        )
        moment += timedelta(minutes=rng.uniform(2, 15))
    mode = rng.choices((Mode.PHONE, Mode.IN_PERSON, Mode.VIDEO), (5, 4, 1))[0]
    sim.events.append(
        PeerMatched(
            **common,
            case_id=case_id,
            offer_id=offer_id,
            peer=peer,
            requester=requester,
            tier=Tier.PEER,
            mode=mode,
            matched_at=moment,
            first_offered_at=offered,
            respond_by=deadline,
        )
    )
    # Most first contacts meet the deadline; some do not.
    if urgency is Urgency.URGENT:
        contact = moment + timedelta(minutes=rng.uniform(2, 20 if rng.random() < 0.85 else 90))
    else:
        contact = moment + timedelta(hours=rng.uniform(1, 30 if rng.random() < 0.75 else 70))
    sessions = rng.choices((1, 2, 3), (5, 3, 2))[0]
    referral = rng.random() < 0.3
    opened = moment
    for n in range(sessions):
        minutes = rng.randint(15, 45)
        last = n == sessions - 1
        refer_now = referral and last
        sim.events.append(
            SessionCompleted(
                **common,
                case_id=case_id,
                session_id=new_id(),
                peer=peer,
                mode=mode,
                tier=Tier.PROFESSIONAL if refer_now else Tier.PEER,
                started_at=contact,
                duration_minutes=minutes,
                participants=1,
                follow_up_planned=not last or rng.random() < 0.15,
                referral_made=refer_now,
                completed_at=contact + timedelta(minutes=minutes),
            )
        )
        if refer_now:
            sim.events.append(
                ReferralMade(
                    **common,
                    case_id=case_id,
                    referral_id=new_id(),
                    urgency=urgency,
                    resource=rng.choice(
                        (
                            ReferralResource.EAP,
                            ReferralResource.PSYCHOLOGIST,
                            ReferralResource.OCCUPATIONAL_HEALTH,
                        )
                    ),
                    referred_by=peer,
                    made_at=contact + timedelta(minutes=minutes + 1),
                )
            )
        contact += timedelta(days=rng.uniform(1, 4))
    sim.events.append(
        CaseClosed(
            **common,
            case_id=case_id,
            peer=peer,
            sessions=sessions,
            referral_made=referral,
            opened_at=opened,
            closed_at=contact,
        )
    )


def _survey(
    rng: random.Random,
    hospital: str,
    months: tuple[str, ...],
    instrument: str,
    items: int,
    low: int,
    high: int,
    index: int,
) -> Survey:
    """Answers that improve a little after support (lower distress, on average)."""
    pre = [rng.randint(low + (high - low) // 3, high) for _ in range(items)]
    if instrument == "phq9":
        pre[8] = 0  # item 9 is answered on its own below: only a few endorse it
    post = [max(low, min(high, a - rng.choice((0, 0, 1, 1, 2)))) for a in pre]
    completes = rng.random() < 0.85 or index < 12
    return Survey(
        instrument=instrument,
        hospital=hospital,
        pre_month=months[0],
        pre=pre,
        post_month=months[-1] if completes else None,
        post=post if completes else None,
    )


SOURCE = "/huddle/simulation"


async def publish(bootstrap: str, events: Sequence[Event]) -> None:
    """Put the simulated events on the bus as the services would have (CloudEvents, keyed)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sends = []
        for event in events:
            cloud_event = encode_event(event, source=SOURCE)
            sends.append(
                await producer.send(
                    topic_for(event).name,
                    value=cloud_event.data,
                    key=event.subject.encode(),
                    headers=to_headers(cloud_event),
                )
            )
        for sent in sends:
            await sent
    finally:
        await producer.stop()
