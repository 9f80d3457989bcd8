"""Event subscriptions: CloudEvents type -> application handler (run in the inbox transaction)."""

from __future__ import annotations

from huddle_runtime.consumer import Handler

from huddle_training.application.peer_care import PeerCareHandlers
from huddle_training.settings import TrainingSettings


def subscriptions(settings: TrainingSettings) -> dict[str, Handler]:
    """SessionCompleted drives peer care; CaseClosed, beside it on the topic, is skipped."""
    return PeerCareHandlers(settings.debrief_after_sessions).subscriptions()
