"""Event subscriptions: CloudEvents type -> application handler."""

from huddle_contracts.events import SupportRequested
from huddle_runtime.consumer import Handler

from huddle_matching.application.support_requests import on_support_requested

HANDLERS: dict[str, Handler] = {
    SupportRequested.event_type: on_support_requested,
}
