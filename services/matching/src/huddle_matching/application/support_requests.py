"""What matching does with a support request; the peer matching rules come with issue #3."""

from __future__ import annotations

from huddle_contracts.cloudevents import CloudEvent
from huddle_contracts.events import Event, SupportRequested
from huddle_runtime.consumer import PermanentFailure
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_matching.adapters import repository


async def on_support_requested(uow: UnitOfWork, event: Event, _: CloudEvent) -> None:
    """Queue the request for matching (inside the inbox transaction: exactly once)."""
    if not isinstance(event, SupportRequested):
        raise PermanentFailure(f"expected SupportRequested, got {type(event).__name__}")
    await repository.record_support_request(uow.conn, event)
