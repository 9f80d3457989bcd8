"""Who reads what: analysts see the network's aggregates, coordinators their own hospital's."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from huddle_runtime.auth import Forbidden, Principal, Role, require_roles
from huddle_runtime.edge import runtime_of
from pydantic import ConfigDict

from huddle_analytics.observability import AnalyticsMetrics
from huddle_analytics.settings import AnalyticsSettings

STRICT = ConfigDict(extra="forbid")

Reader = Annotated[
    Principal,
    Depends(require_roles(Role.ANALYST, Role.COORDINATOR, Role.NETWORK_ADMIN)),
]
"""Reads aggregates: an analyst or network admin (the network), a coordinator (their hospital)."""
Analyst = Annotated[Principal, Depends(require_roles(Role.ANALYST, Role.NETWORK_ADMIN))]
"""Reads the network's anonymised records (the exports of the analysts' stream)."""
Respondent = Annotated[
    Principal,
    Depends(require_roles(Role.WORKER, Role.PEER, Role.COORDINATOR, Role.NETWORK_ADMIN)),
]
"""Answers an outcome survey: any member of staff (never recorded who)."""
NetworkAdmin = Annotated[Principal, Depends(require_roles(Role.NETWORK_ADMIN))]


def hospital_scope(principal: Principal) -> str | None:
    """The hospital whose aggregates the caller sees, or None for the whole network."""
    if principal.has_any((Role.ANALYST, Role.NETWORK_ADMIN)):
        return None
    if principal.hospital_id is None:
        raise Forbidden("a coordinator's token must name their hospital")
    return principal.hospital_id


def analytics_settings(request: Request) -> AnalyticsSettings:
    settings: AnalyticsSettings = runtime_of(request).state["settings"]
    return settings


def analytics_metrics(request: Request) -> AnalyticsMetrics:
    metrics: AnalyticsMetrics = runtime_of(request).state["metrics"]
    return metrics
