"""Event subscriptions: CloudEvents type -> application handler."""

from huddle_runtime.consumer import Handler

from huddle_matching.application.events import Handlers
from huddle_matching.application.search import Matching


def subscriptions(matching: Matching) -> dict[str, Handler]:
    return Handlers(matching).subscriptions()
