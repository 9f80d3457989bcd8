"""Who may call what, shared by the HTTP modules: roles, the hospital a coordinator keeps, and
request bodies that refuse unknown fields."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from huddle_runtime.auth import Forbidden, Principal, Role, require_roles
from huddle_runtime.edge import RuleRefused
from pydantic import ConfigDict

STRICT = ConfigDict(extra="forbid")

Coordinator = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.NETWORK_ADMIN))]
"""Keeps the roster and the programme: a coordinator (their hospital) or a network admin."""
NetworkAdmin = Annotated[Principal, Depends(require_roles(Role.NETWORK_ADMIN))]
"""Keeps what is the network's own: its course catalogue and certification rule."""
Staff = Annotated[
    Principal,
    Depends(require_roles(Role.WORKER, Role.PEER, Role.COORDINATOR, Role.NETWORK_ADMIN)),
]
"""Any member of staff (not an analyst, not an incident-reporting system)."""


def keeps_roster(principal: Principal) -> bool:
    return principal.has_any((Role.COORDINATOR, Role.NETWORK_ADMIN))


def hospital_scope(principal: Principal) -> str | None:
    """The one hospital whose peers the caller may act on, or None for the whole network."""
    if Role.NETWORK_ADMIN in principal.roles:
        return None
    if principal.hospital_id is None:
        # A token without a hospital must not widen a coordinator's view to the network.
        raise Forbidden("your token names no hospital: only a network admin acts network-wide")
    return principal.hospital_id


def within_scope(principal: Principal, hospital_id: str | None) -> str | None:
    """The hospital a listing shows: the one asked for, if the caller may see it."""
    scope = hospital_scope(principal)
    if scope is not None and hospital_id not in (None, scope):
        raise Forbidden(f"your token is for hospital {scope!r}, not {hospital_id!r}")
    return scope or hospital_id


def target_hospital(principal: Principal, hospital_id: str | None) -> str:
    """The hospital a new record belongs to: the one named, else the token's, if in scope."""
    hospital = hospital_id or principal.hospital_id
    if hospital is None:
        raise RuleRefused("hospital_id is required when your token names no hospital")
    within_scope(principal, hospital)
    return hospital
