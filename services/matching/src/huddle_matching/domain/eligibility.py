"""Hard rules of matching (DOMAIN.md, "Matching a peer"): a peer who breaks one is never offered.

Each rule returns why the peer is excluded, or None; the reasons are shown to coordinators.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from huddle_contracts.vocabulary import Urgency

from huddle_matching.domain.roster import Peer
from huddle_matching.domain.support_need import SupportNeed

Rule = Callable[[Peer, SupportNeed, datetime], str | None]


def only_peers_whose_training_is_current(peer: Peer, _: SupportNeed, now: datetime) -> str | None:
    return None if peer.certified_until > now else "certification is not current"


def never_the_requester(peer: Peer, need: SupportNeed, _: datetime) -> str | None:
    return "is the requester" if peer.pseudonym == need.requester else None


def never_someone_involved_in_the_same_event(
    peer: Peer, need: SupportNeed, _: datetime
) -> str | None:
    return "was involved in the same adverse event" if peer.pseudonym in need.involved else None


def not_from_the_requesters_own_unit_unless_asked(
    peer: Peer, need: SupportNeed, _: datetime
) -> str | None:
    same_unit = peer.hospital_id == need.hospital_id and peer.unit_id == need.unit_id
    if same_unit and need.preferences.own_unit is not True:
        return "works in the requester's unit (the requester did not ask for it)"
    return None


def never_in_the_requesters_reporting_line(
    peer: Peer, need: SupportNeed, _: datetime
) -> str | None:
    return "is in the requester's reporting line" if peer.pseudonym in need.reporting_line else None


def within_capacity(peer: Peer, _: SupportNeed, __: datetime) -> str | None:
    if peer.free_slots == 0:
        pending = f", {peer.pending_offers} offers pending" if peer.pending_offers else ""
        return f"at capacity ({peer.active_cases} of {peer.capacity} active cases{pending})"
    return None


def available_and_on_call_for_urgent_requests(
    peer: Peer, need: SupportNeed, _: datetime
) -> str | None:
    if peer.paused:
        return "has paused or withdrawn"
    if need.urgency is not Urgency.ROUTINE and not peer.on_call:
        return "not on call (urgent requests go to the on-call rota)"
    return None


def same_network(peer: Peer, need: SupportNeed, _: datetime) -> str | None:
    return None if peer.network_id == need.network_id else "belongs to another network"


HARD_RULES: tuple[Rule, ...] = (
    same_network,
    only_peers_whose_training_is_current,
    never_the_requester,
    never_someone_involved_in_the_same_event,
    not_from_the_requesters_own_unit_unless_asked,
    never_in_the_requesters_reporting_line,
    within_capacity,
    available_and_on_call_for_urgent_requests,
)


def exclusions(peer: Peer, need: SupportNeed, now: datetime) -> list[str]:
    """Every hard rule the peer breaks for this need (empty: eligible)."""
    return [reason for rule in HARD_RULES if (reason := rule(peer, need, now)) is not None]


def eligible(peer: Peer, need: SupportNeed, now: datetime) -> bool:
    """Whether the peer breaks no hard rule (stops at the first broken one, explains nothing)."""
    return all(rule(peer, need, now) is None for rule in HARD_RULES)
