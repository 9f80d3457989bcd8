"""The search for a peer: offer the best candidate, move on when an offer is declined or lapses,
widen to the network and alert coordinators when the hospital has no one left."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from huddle_contracts.events import MatchEscalated, OfferMade, PeerMatched, SupportRequested
from huddle_contracts.vocabulary import EscalationReason
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_matching.adapters import repository as repo
from huddle_matching.adapters.repository import Offer, Search
from huddle_matching.domain.eligibility import eligible, exclusions
from huddle_matching.domain.matching_policy import (
    MatchingPolicy,
    matched_mode,
    offer_respond_by,
)
from huddle_matching.domain.preferences import PreferenceWeights, score
from huddle_matching.domain.response_times import first_contact_deadline
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.selection import (
    Candidate,
    Ranking,
    Scope,
    better,
    longest_wait_first,
    rank,
    tiers,
)
from huddle_matching.domain.selection import best as best_of
from huddle_matching.domain.support_need import SupportNeed
from huddle_matching.domain.surge import assign_batch

OPEN = ("searching", "offered", "escalated")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HeldPeerWait:
    """How long a search waits for a peer whose row another search holds (an offer about to
    commit): a small batch's offer commits well within ``wait_ms``. A wait that runs out means
    large batches hold the peers (the consumers are under load); searches then stop waiting for
    ``rest_s``, as each wait would hold its own batch and peers longer too."""

    wait_ms: int = 50
    rest_s: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    waited: int = 0
    ran_out: int = 0
    _ran_out_at: float = float("-inf")

    def may_wait(self) -> bool:
        return self.monotonic() - self._ran_out_at >= self.rest_s

    def record(self, *, got: bool) -> None:
        self.waited += 1
        if not got:
            self.ran_out += 1
            self._ran_out_at = self.monotonic()


@dataclass(frozen=True)
class Matching:
    """What the use cases need besides the unit of work: the default policy, a clock, and the
    process's patience with peers held by other searches."""

    default_policy: MatchingPolicy = field(default_factory=MatchingPolicy)
    clock: Callable[[], datetime] = utc_now
    held_peer_wait: HeldPeerWait = field(default_factory=HeldPeerWait)


class OfferRefused(Exception):
    """The offer cannot be answered (gone, not yours, no longer open, or you are full)."""


async def first_contact_due(
    uow: UnitOfWork, matching: Matching, request: SupportRequested
) -> tuple[MatchingPolicy, datetime]:
    """The network's policy, and by when a new request's first contact is due (in its
    hospital's working hours, for a routine one)."""
    policy, calendar = await repo.policy_and_calendar(
        uow.conn, matching.default_policy, request.hospital_id
    )
    deadline = first_contact_deadline(
        request.requested_at, request.urgency, calendar, policy.response
    )
    return policy, deadline


async def ranking_for(uow: UnitOfWork, matching: Matching, case_id: UUID) -> Ranking | None:
    """Who would be offered the case now, and why the others would not (for coordinators)."""
    search = await repo.get_search(uow.conn, case_id)
    if search is None:
        return None
    policy = await repo.matching_policy(uow.conn, matching.default_policy)
    offered = frozenset(o.peer for o in await repo.offers_for_case(uow.conn, case_id))
    now = matching.clock()
    return rank(
        search.need,
        await repo.roster(uow.conn, now),
        now,
        scope=Scope(search.scope),
        weights=policy.weights,
        skip=offered,
    )


async def offer_next(
    uow: UnitOfWork,
    matching: Matching,
    case_id: UUID,
    *,
    new: tuple[Search, MatchingPolicy] | None = None,
) -> Offer | None:
    """Offer the case to the best peer not yet asked; widen or escalate when there is none.
    ``new``: a search this unit of work has just recorded, and the policy it read: nothing to
    read again (no other transaction sees the row yet, and it has no offers)."""
    if new is None:
        search = await repo.get_search(uow.conn, case_id, lock=True)
        if search is None or search.status not in OPEN:
            return None
        policy = await repo.matching_policy(uow.conn, matching.default_policy)
        offers = await repo.offers_for_case(uow.conn, case_id)
    else:
        (search, policy), offers = new, []
    now = matching.clock()
    if any(o.status == "open" for o in offers):
        return None  # one open offer per case: wait for its answer or its lapse
    asked = frozenset(o.peer for o in offers)
    scope = Scope(search.scope)
    deadline = search.first_contact_by or now

    wait = matching.held_peer_wait
    best = await _choose_and_hold(uow.conn, search.need, now, scope, policy.weights, asked, wait)
    # Widen before the first-contact deadline is lost: when another offer window no longer fits.
    at_risk = bool(asked) and deadline - now < policy.offer_window(search.need.urgency)
    if scope is Scope.HOSPITAL and (best is None or at_risk):
        reason = (
            EscalationReason.DEADLINE_AT_RISK
            if best is not None
            else EscalationReason.OFFERS_EXHAUSTED
            if asked
            else EscalationReason.NO_ELIGIBLE_PEER
        )
        scope = Scope.NETWORK
        await repo.update_search(uow.conn, case_id, scope=scope.value)
        _escalate(uow, search, reason, offers_made=len(offers), deadline=deadline, now=now)
        best = await _choose_and_hold(
            uow.conn, search.need, now, scope, policy.weights, asked, wait
        )
    if best is None:
        await repo.update_search(uow.conn, case_id, status="escalated", escalated_at=now)
        if search.scope == Scope.NETWORK.value:  # widened earlier: alert coordinators again
            reason = (
                EscalationReason.OFFERS_EXHAUSTED if asked else EscalationReason.NO_ELIGIBLE_PEER
            )
            _escalate(uow, search, reason, offers_made=len(offers), deadline=deadline, now=now)
        return None
    [offer] = await _make_offers(uow, [(search, best)], policy, now)
    return offer


async def choose(
    conn: asyncpg.Connection,
    need: SupportNeed,
    now: datetime,
    scope: Scope,
    weights: PreferenceWeights,
    *,
    skip: frozenset[str] = frozenset(),
) -> Candidate | None:
    """The peer ``rank`` would put first, reading the candidates tier by tier (of each, only the
    first of each standing) and stopping once nobody further on can score higher (usually after
    the first tier)."""
    hospital = need.hospital_id if scope is Scope.HOSPITAL else None
    leaders = longest_wait_first(weights)
    top: Candidate | None = None
    for tier in tiers(need, weights):
        if top is not None and top.score.total > tier.bound:
            break
        peers = await repo.candidates(
            conn, now, need, hospital_id=hospital, tier=tier, skip=skip, leaders=leaders
        )
        top = better(top, best_of(need, peers, now, scope=scope, weights=weights, skip=skip))
    return top


async def _choose_and_hold(
    conn: asyncpg.Connection,
    need: SupportNeed,
    now: datetime,
    scope: Scope,
    weights: PreferenceWeights,
    skip: frozenset[str],
    wait: HeldPeerWait,
) -> Candidate | None:
    """``choose``, then hold the peer's row until the offer commits: another search may have
    taken their last free place since the candidates were read, and then the next one is chosen."""
    may_wait = True
    while (candidate := await choose(conn, need, now, scope, weights, skip=skip)) is not None:
        held = await repo.hold_peers(conn, now, pseudonyms=[candidate.peer.pseudonym])
        if not held and may_wait and wait.may_wait():
            # Being offered another case right now: that offer usually commits within moments,
            # and the peer may have room for both (skipping them would give a worse match).
            # Once per search: under load, a wait that times out would only repeat.
            may_wait = False
            held = await repo.wait_for_peer(
                conn, now, candidate.peer.pseudonym, wait_ms=wait.wait_ms
            )
            wait.record(got=bool(held))
        if held and eligible(held[0], need, now):
            return Candidate(held[0], score(held[0], need, now, weights))
        skip = skip | {candidate.peer.pseudonym}  # full now, or being offered elsewhere
    return None


async def _make_offers(
    uow: UnitOfWork, chosen: list[tuple[Search, Candidate]], policy: MatchingPolicy, now: datetime
) -> list[Offer]:
    """One offer per search to its chosen peer, written together (a surge makes thousands)."""
    offers = [
        Offer(
            offer_id=uuid.uuid4(),
            case_id=search.need.case_id,
            peer=candidate.peer.pseudonym,
            offered_at=now,
            respond_by=offer_respond_by(
                now, search.need.urgency, search.first_contact_by or now, policy
            ),
            status="open",
            score=candidate.score.total,
            reasons=candidate.score.reasons,
        )
        for search, candidate in chosen
    ]
    if not offers:
        return offers
    await repo.add_offers(uow.conn, chosen[0][0].need.network_id, offers)
    for (search, _), offer in zip(chosen, offers, strict=True):
        uow.publish(
            OfferMade(
                network_id=search.need.network_id,
                hospital_id=search.need.hospital_id,
                case_id=offer.case_id,
                offer_id=offer.offer_id,
                peer=offer.peer,
                urgency=search.need.urgency,
                offered_at=offer.offered_at,
                respond_by=offer.respond_by,
            )
        )
    await repo.mark_offered(uow.conn, [offer.case_id for offer in offers], now)
    return offers


def _escalate(
    uow: UnitOfWork,
    search: Search,
    reason: EscalationReason,
    *,
    offers_made: int,
    deadline: datetime,
    now: datetime,
) -> None:
    uow.publish(
        MatchEscalated(
            network_id=search.need.network_id,
            hospital_id=search.need.hospital_id,
            case_id=search.need.case_id,
            reason=reason,
            urgency=search.need.urgency,
            offers_made=offers_made,
            respond_by=deadline,
            widened_to_network=True,
            escalated_at=now,
        )
    )


async def _lock_offer(uow: UnitOfWork, offer_id: UUID) -> tuple[Offer, Search] | None:
    """The search row first, then the offer: every path locks in this order (no deadlock)."""
    search = await repo.lock_search_of_offer(uow.conn, offer_id)
    if search is None:
        return None
    offer = await repo.get_offer(uow.conn, offer_id, lock=True)
    return None if offer is None else (offer, search)


async def accept(
    uow: UnitOfWork, matching: Matching, *, offer_id: UUID, peer: str
) -> PeerMatched | str:
    """PeerMatched, or why the peer can no longer take the case (the offer is then withdrawn
    and the next peer asked, in this same transaction)."""
    now = matching.clock()
    locked = await _lock_offer(uow, offer_id)
    if locked is None or locked[0].peer != peer:
        raise LookupError(f"no offer {offer_id} for you")
    offer, search = locked
    if offer.status != "open":
        raise OfferRefused(f"this offer is {offer.status}")
    if offer.respond_by <= now:
        raise OfferRefused("this offer has lapsed; the case has moved on to another peer")
    # The peer must still be eligible now (certification current, not paused, same rules).
    current = await repo.get_peer(uow.conn, peer, now)
    still = exclusions(current, search.need, now) if current is not None else ["not on the roster"]
    still = [
        r for r in still if not r.startswith("at capacity") and not r.startswith("not on call")
    ]
    if still:
        await repo.answer_offer(uow.conn, offer_id, "withdrawn", now)
        await offer_next(uow, matching, offer.case_id)
        return "you can no longer take this case: " + "; ".join(still)
    peer_hospital = await repo.take_case(
        uow.conn, peer, now, offer_id=offer_id, case_id=offer.case_id
    )
    if peer_hospital is None:
        raise OfferRefused("you are at your active-case capacity; decline or close a case first")
    remote = peer_hospital != search.need.hospital_id
    matched = PeerMatched(
        network_id=search.need.network_id,
        hospital_id=search.need.hospital_id,
        case_id=search.need.case_id,
        offer_id=offer_id,
        peer=peer,
        requester=search.need.requester,
        mode=matched_mode(search.need.preferred_mode, remote=remote),
        matched_at=now,
        first_offered_at=search.first_offered_at,
        respond_by=search.first_contact_by,
    )
    uow.publish(matched)
    return matched


async def decline(uow: UnitOfWork, matching: Matching, *, offer_id: UUID, peer: str) -> None:
    locked = await _lock_offer(uow, offer_id)
    if locked is None or locked[0].peer != peer:
        raise LookupError(f"no offer {offer_id} for you")
    offer, _ = locked
    if offer.status != "open":
        raise OfferRefused(f"this offer is {offer.status}")
    await repo.answer_offer(uow.conn, offer_id, "declined", matching.clock())
    await offer_next(uow, matching, offer.case_id)


async def lapse(uow: UnitOfWork, matching: Matching, offer_id: UUID) -> bool:
    """Silence past respond_by: the offer lapses and the next peer is asked."""
    now = matching.clock()
    locked = await _lock_offer(uow, offer_id)
    if locked is None:
        return False
    offer, _ = locked
    if offer.status != "open" or offer.respond_by > now:
        return False
    await repo.answer_offer(uow.conn, offer_id, "expired", now)
    await offer_next(uow, matching, offer.case_id)
    return True


async def offer_surge(uow: UnitOfWork, matching: Matching, adverse_event_id: UUID) -> int:
    """Everyone involved in one event, matched as one optimal assignment per hospital; those it
    leaves without a peer widen to the network together, as a second assignment; whoever is
    still left is escalated (once)."""
    searches = await repo.searches_for_event(uow.conn, adverse_event_id, status="batching")
    if not searches:
        return 0
    now = matching.clock()
    policy = await repo.matching_policy(uow.conn, matching.default_policy)
    await repo.update_searches(uow.conn, [s.need.case_id for s in searches], status="searching")
    by_hospital: dict[str, list[Search]] = {}
    for search in searches:  # an event can involve staff of several hospitals
        by_hospital.setdefault(search.need.hospital_id, []).append(search)
    left_out: list[Search] = []
    for hospital in sorted(by_hospital):  # hospitals in one order: holders never wait in a cycle
        # Held until the offers commit: no ordinary search can offer these peers meanwhile.
        peers = await repo.hold_peers(uow.conn, now, hospital_id=hospital)
        left, _ = await _offer_batch(uow, policy, by_hospital[hospital], peers, now)
        left_out += left
    made = len(searches) - len(left_out)
    if not left_out:
        return made
    # Each batch is optimal, so nobody it left out has an eligible peer with a free place in
    # their hospital any more: each widens to the network, as offer_next would widen it.
    widen = [search.need.case_id for search in left_out]
    await repo.update_searches(uow.conn, widen, scope=Scope.NETWORK.value)
    for search in left_out:
        deadline = search.first_contact_by or now
        reason = EscalationReason.NO_ELIGIBLE_PEER
        _escalate(uow, search, reason, offers_made=0, deadline=deadline, now=now)
    # Only once every place the first batches took is written does the roster show it taken.
    network = await repo.roster(uow.conn, now)
    nobody, crowded = await _offer_batch(uow, policy, left_out, network, now, hold=True)
    made += len(left_out) - len(nobody) - len(crowded)
    # No one eligible anywhere: the coordinators were alerted above, once.
    await repo.update_searches(
        uow.conn, [s.need.case_id for s in nobody], status="escalated", escalated_at=now
    )
    for search in crowded:  # their peer's last place went to another search meanwhile
        await offer_next(uow, matching, search.need.case_id)
    return made


async def _offer_batch(
    uow: UnitOfWork,
    policy: MatchingPolicy,
    searches: list[Search],
    peers: list[Peer],
    now: datetime,
    *,
    hold: bool = False,
) -> tuple[list[Search], list[Search]]:
    """Offer each search the peer one optimal assignment gives it. Returns the searches it
    found no one for, and (``hold``: the peers were read without their rows held, so the
    chosen ones are held now and read afresh) those whose peer no longer has room."""
    assigned = assign_batch([s.need for s in searches], peers, now, policy.weights)
    if hold:
        names = [peer.pseudonym for peer in assigned.values() if peer is not None]
        fresh = {p.pseudonym: p for p in await repo.hold_peers(uow.conn, now, pseudonyms=names)}
        room = {name: peer.free_slots for name, peer in fresh.items()}
    chosen, nobody, crowded = [], [], []
    for search in searches:
        peer = assigned[search.need.case_id]
        if peer is None:
            nobody.append(search)
            continue
        if hold:
            if room.get(peer.pseudonym, 0) <= 0:  # full now, or held by another offer
                crowded.append(search)
                continue
            room[peer.pseudonym] -= 1
            peer = fresh[peer.pseudonym]
        chosen.append((search, Candidate(peer, score(peer, search.need, now, policy.weights))))
    await _make_offers(uow, chosen, policy, now)
    return nobody, crowded
