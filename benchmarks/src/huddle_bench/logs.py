"""The benchmark's processes log only warnings: progress bars, not log lines."""

from __future__ import annotations

import logging

import structlog


def quiet_logs() -> None:
    """Only warnings from the runtime and the clients."""
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
