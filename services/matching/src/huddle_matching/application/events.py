"""What matching does with each event it consumes (inside the inbox transaction: exactly once)."""

from __future__ import annotations

from typing import TypeVar

from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import (
    CaseClosed,
    CertificationLapsed,
    Event,
    PeerCertified,
    SupportRequested,
    SupportWithdrawn,
)
from huddle_runtime.consumer import Handler, PermanentFailure
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_matching.adapters import repository as repo
from huddle_matching.application.search import (
    Matching,
    first_contact_due,
    offer_next,
    offer_surge,
)
from huddle_matching.domain.matching_policy import is_surge


class Handlers:
    def __init__(self, matching: Matching) -> None:
        self.matching = matching

    async def support_requested(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        """Start the search; a surge waits until everyone involved has arrived, then batches."""
        request = _expect(event, SupportRequested)
        surge = request.adverse_event_id is not None and is_surge(len(request.involved))
        policy, deadline = await first_contact_due(uow, self.matching, request)
        search = await repo.record_support_request(
            uow.conn,
            request,
            first_contact_by=deadline,
            status="batching" if surge else "searching",
        )
        if not surge:
            await offer_next(uow, self.matching, request.case_id, new=(search, policy))
            return
        assert request.adverse_event_id is not None
        waiting = await repo.searches_for_event(
            uow.conn, request.adverse_event_id, status="batching"
        )
        if len(waiting) >= len(set(request.involved)):
            await offer_surge(uow, self.matching, request.adverse_event_id)

    async def support_withdrawn(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        """Declining or withdrawing has no consequence: stop searching, free any peer."""
        withdrawn = _expect(event, SupportWithdrawn)
        search = await repo.get_search(uow.conn, withdrawn.case_id, lock=True)
        if search is None:
            raise PermanentFailure(f"no support request {withdrawn.case_id} to withdraw")
        for offer in await repo.offers_for_case(uow.conn, withdrawn.case_id):
            await repo.answer_offer(uow.conn, offer.offer_id, "withdrawn", withdrawn.withdrawn_at)
        if search.status == "matched" and search.matched_peer:
            await repo.release_case(uow.conn, search.matched_peer)
        await repo.update_search(uow.conn, withdrawn.case_id, status="withdrawn")

    async def peer_certified(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        certified = _expect(event, PeerCertified)
        policy = await repo.matching_policy(uow.conn, self.matching.default_policy)
        await repo.upsert_peer(uow.conn, certified, capacity=policy.default_capacity)

    async def certification_lapsed(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        lapsed = _expect(event, CertificationLapsed)
        await repo.end_certification(uow.conn, lapsed.peer, lapsed.lapsed_at)
        # Offers waiting on a peer who may no longer be matched go to the next peer now.
        for offer in await repo.open_offers_for_peer(uow.conn, lapsed.peer):
            await repo.get_search(uow.conn, offer.case_id, lock=True)
            await repo.answer_offer(uow.conn, offer.offer_id, "withdrawn", lapsed.lapsed_at)
            await offer_next(uow, self.matching, offer.case_id)

    async def case_closed(self, uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
        """Load is released when the case closes (once: a withdrawn case was released already)."""
        closed = _expect(event, CaseClosed)
        search = await repo.get_search(uow.conn, closed.case_id, lock=True)
        if search is not None and search.status == "matched":
            await repo.release_case(uow.conn, closed.peer)
            await repo.update_search(uow.conn, closed.case_id, status="closed")

    def subscriptions(self) -> dict[str, Handler]:
        return {
            SupportRequested.event_type: self.support_requested,
            SupportWithdrawn.event_type: self.support_withdrawn,
            PeerCertified.event_type: self.peer_certified,
            CertificationLapsed.event_type: self.certification_lapsed,
            CaseClosed.event_type: self.case_closed,
        }


E = TypeVar("E", bound=Event)


def _expect(event: Event, kind: type[E]) -> E:
    if not isinstance(event, kind):
        raise PermanentFailure(f"expected {kind.__name__}, got {type(event).__name__}")
    return event
