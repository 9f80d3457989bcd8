"""What every service's HTTP edge needs: the runtime, the caller's pseudonym, the hospital scope
of the caller's token, and the problem for a programme rule that refuses a request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from huddle_runtime.auth import Forbidden, Principal, Role
from huddle_runtime.problems import Problem
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.settings import ServiceSettings

if TYPE_CHECKING:
    from huddle_runtime.service import Runtime


class RuleRefused(Problem):
    status = 422
    title = "Refused by programme rules"
    type_suffix = "programme-rule"


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def caller_pseudonym(request: Request, principal: Principal) -> str:
    """The caller as every service knows them: the pseudonym of their token subject."""
    settings: ServiceSettings = request.app.state.settings
    return pseudonym_for(settings.pseudonym_key, principal.network_id, principal.subject)


def ensure_hospital(principal: Principal, hospital_id: str) -> None:
    """A token bound to a hospital acts for that hospital only; network admins for all."""
    if Role.NETWORK_ADMIN in principal.roles or principal.hospital_id is None:
        return
    if principal.hospital_id != hospital_id:
        raise Forbidden(
            f"your token is for hospital {principal.hospital_id!r}, not {hospital_id!r}"
        )
