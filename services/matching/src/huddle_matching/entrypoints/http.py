"""HTTP: peers answer offers and set their availability; coordinators run the rota, see why a
peer was chosen, and work their lists; network admins set the policy."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from huddle_contracts.vocabulary import HospitalId, Mode, Pseudonym
from huddle_runtime.auth import Principal, Role, require_roles
from huddle_runtime.edge import RuleRefused, caller_pseudonym, ensure_hospital, runtime_of
from huddle_runtime.problems import Conflict, NotFound
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from huddle_matching.adapters import repository as repo
from huddle_matching.application.search import (
    Matching,
    OfferRefused,
    accept,
    decline,
    offer_next,
    ranking_for,
)
from huddle_matching.domain.matching_policy import MatchingPolicy
from huddle_matching.domain.response_times import HospitalCalendar, ResponsePolicy

router = APIRouter(prefix="/v1", tags=["matching"])
_STRICT = ConfigDict(extra="forbid")

PeerCaller = Annotated[Principal, Depends(require_roles(Role.PEER))]
Coordinator = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.NETWORK_ADMIN))]
NetworkAdmin = Annotated[Principal, Depends(require_roles(Role.NETWORK_ADMIN))]


def _matching(request: Request) -> Matching:
    matching: Matching = request.app.state.matching
    return matching


# -- peers: offers and availability ---------------------------------------------------------


class OfferRead(BaseModel):
    offer_id: UUID
    case_id: UUID
    respond_by: datetime
    status: str
    link: str = Field(description="Where the peer answers; offers carry nothing clinical.")


@router.get("/offers", response_model=list[OfferRead], summary="Your open offers")
async def my_offers(request: Request, principal: PeerCaller) -> list[OfferRead]:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        offers = await repo.open_offers_for_peer(uow.conn, caller_pseudonym(request, principal))
    return [
        OfferRead(
            offer_id=o.offer_id,
            case_id=o.case_id,
            respond_by=o.respond_by,
            status=o.status,
            link=f"/v1/offers/{o.offer_id}",
        )
        for o in offers
    ]


class Accepted(BaseModel):
    case_id: UUID
    offer_id: UUID
    mode: Mode
    first_contact_by: datetime | None


@router.post("/offers/{offer_id}/accept", response_model=Accepted, summary="Take the case")
async def accept_offer(offer_id: UUID, request: Request, principal: PeerCaller) -> Accepted:
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            matched = await accept(
                uow,
                _matching(request),
                offer_id=offer_id,
                peer=caller_pseudonym(request, principal),
            )
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    except OfferRefused as exc:
        raise Conflict(str(exc)) from exc
    if isinstance(matched, str):
        raise Conflict(matched)
    return Accepted(
        case_id=matched.case_id,
        offer_id=offer_id,
        mode=matched.mode,
        first_contact_by=matched.respond_by,
    )


@router.post(
    "/offers/{offer_id}/decline",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Decline (no reason needed); the next peer is asked",
)
async def decline_offer(offer_id: UUID, request: Request, principal: PeerCaller) -> Response:
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            await decline(
                uow,
                _matching(request),
                offer_id=offer_id,
                peer=caller_pseudonym(request, principal),
            )
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    except OfferRefused as exc:
        raise Conflict(str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class Availability(BaseModel):
    model_config = _STRICT
    paused: bool | None = Field(default=None, description="Pause or resume taking new cases.")
    capacity: int | None = Field(default=None, ge=0, le=20, description="Active-case cap.")


@router.put(
    "/peers/me/availability",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Pause, resume or change your case cap (a peer may withdraw at any time)",
)
async def my_availability(body: Availability, request: Request, principal: PeerCaller) -> Response:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        policy = await repo.matching_policy(uow.conn, _matching(request).default_policy)
        if body.capacity is not None and body.capacity > policy.default_capacity:
            raise RuleRefused(
                f"you can lower your cap, not raise it above the network's "
                f"{policy.default_capacity} active cases"
            )
        found = await repo.set_availability(
            uow.conn,
            caller_pseudonym(request, principal),
            paused=body.paused,
            capacity=body.capacity,
        )
    if not found:
        raise NotFound("you are not on the certified roster yet")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- coordinators: rota, explanations, work lists --------------------------------------------


class ShiftCreate(BaseModel):
    model_config = _STRICT
    peer: Pseudonym
    hospital_id: HospitalId
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> ShiftCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > timedelta(days=14):
            raise ValueError("a shift lasts at most 14 days")
        return self


@router.post("/rota/shifts", status_code=status.HTTP_201_CREATED, summary="Put a peer on call")
async def add_shift(body: ShiftCreate, request: Request, principal: Coordinator) -> dict[str, int]:
    ensure_hospital(principal, body.hospital_id)
    matching = _matching(request)
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        peer = await repo.get_peer(uow.conn, body.peer, matching.clock())
        if peer is None:
            raise NotFound(f"no certified peer {body.peer}")
        if peer.hospital_id != body.hospital_id:
            raise RuleRefused(
                f"the peer works at {peer.hospital_id!r}: rota them there (other hospitals reach "
                "them when the search widens to the network)"
            )
        shift_id = await repo.add_shift(
            uow.conn,
            network_id=principal.network_id,
            hospital_id=body.hospital_id,
            peer=body.peer,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
        )
    return {"shift_id": shift_id}


class CalendarBody(BaseModel):
    model_config = _STRICT
    time_zone: str = "UTC"
    working_days: list[Annotated[int, Field(ge=0, le=6)]] = [0, 1, 2, 3, 4]
    day_start: time = time(0)
    day_end: time | None = None
    holidays: list[date] = []

    @model_validator(mode="after")
    def _known_zone(self) -> CalendarBody:
        from zoneinfo import available_timezones

        if self.time_zone not in available_timezones():
            raise ValueError(f"unknown time zone {self.time_zone!r}")
        return self


@router.put(
    "/hospitals/{hospital_id}/calendar",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="The hospital's working days, hours and holidays (for the 24-working-hour deadline)",
)
async def put_calendar(
    hospital_id: HospitalId, body: CalendarBody, request: Request, principal: Coordinator
) -> Response:
    ensure_hospital(principal, hospital_id)
    calendar = HospitalCalendar(
        time_zone=body.time_zone,
        working_days=frozenset(body.working_days),
        day_start=body.day_start,
        day_end=body.day_end,
        holidays=frozenset(body.holidays),
    )
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        await repo.put_hospital_calendar(uow.conn, principal.network_id, hospital_id, calendar)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class PolicyBody(BaseModel):
    model_config = _STRICT
    urgent_first_contact_minutes: float = Field(default=30, gt=0, le=24 * 60)
    routine_working_hours: float = Field(default=24, gt=0, le=24 * 14)
    urgent_offer_minutes: float = Field(default=10, gt=0, le=24 * 60)
    routine_offer_minutes: float = Field(default=240, gt=0, le=24 * 60 * 7)
    default_capacity: int = Field(default=3, ge=1, le=20)


@router.put("/policy", status_code=status.HTTP_204_NO_CONTENT, summary="The network's policy")
async def put_policy(body: PolicyBody, request: Request, principal: NetworkAdmin) -> Response:
    policy = MatchingPolicy(
        response=ResponsePolicy(
            urgent_first_contact=timedelta(minutes=body.urgent_first_contact_minutes),
            routine_working_hours=body.routine_working_hours,
        ),
        urgent_offer_window=timedelta(minutes=body.urgent_offer_minutes),
        routine_offer_window=timedelta(minutes=body.routine_offer_minutes),
        default_capacity=body.default_capacity,
    )
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        await repo.put_matching_policy(uow.conn, principal.network_id, policy)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/policy", response_model=PolicyBody, summary="The network's policy")
async def get_policy(request: Request, principal: Coordinator) -> PolicyBody:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        policy = await repo.matching_policy(uow.conn, _matching(request).default_policy)
    return PolicyBody(
        urgent_first_contact_minutes=policy.response.urgent_first_contact.total_seconds() / 60,
        routine_working_hours=policy.response.routine_working_hours,
        urgent_offer_minutes=policy.urgent_offer_window.total_seconds() / 60,
        routine_offer_minutes=policy.routine_offer_window.total_seconds() / 60,
        default_capacity=policy.default_capacity,
    )


@router.get(
    "/cases/{case_id}/candidates",
    summary="Why a peer was chosen, and why each other peer was not",
)
async def candidates(case_id: UUID, request: Request, principal: Coordinator) -> dict[str, Any]:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        search = await repo.get_search(uow.conn, case_id)
        if search is None:
            raise NotFound(f"no support request {case_id}")
        ensure_hospital(principal, search.need.hospital_id)
        ranking = await ranking_for(uow, _matching(request), case_id)
        offers = await repo.offers_for_case(uow.conn, case_id)
    assert ranking is not None
    return {
        "case_id": str(case_id),
        "status": search.status,
        "scope": search.scope,
        "first_contact_by": search.first_contact_by,
        "offers": [
            {
                "peer": o.peer,
                "status": o.status,
                "score": o.score,
                "reasons": list(o.reasons),
                "offered_at": o.offered_at,
                "respond_by": o.respond_by,
            }
            for o in offers
        ],
        "candidates": [
            {"peer": c.peer.pseudonym, "score": c.score.total, "reasons": list(c.score.reasons)}
            for c in ranking.candidates
        ],
        "excluded": [
            {"peer": e.peer.pseudonym, "reasons": list(e.reasons)} for e in ranking.excluded
        ],
    }


@router.post(
    "/cases/{case_id}/search",
    summary="Search again now (e.g. after new peers came on call)",
)
async def search_again(case_id: UUID, request: Request, principal: Coordinator) -> dict[str, Any]:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        search = await repo.get_search(uow.conn, case_id)
        if search is None:
            raise NotFound(f"no support request {case_id}")
        ensure_hospital(principal, search.need.hospital_id)
        offer = await offer_next(uow, _matching(request), case_id)
        status_now = (await repo.get_search(uow.conn, case_id)).status  # type: ignore[union-attr]
    return {
        "case_id": str(case_id),
        "status": status_now,
        "offered_to": offer.peer if offer else None,
    }


@router.get("/worklists", summary="Open requests by age, offers awaiting answer, escalations")
async def worklists(
    request: Request, principal: Coordinator, hospital_id: HospitalId | None = None
) -> dict[str, Any]:
    hospital = hospital_id or principal.hospital_id
    if hospital is not None:
        ensure_hospital(principal, hospital)
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        rows = await uow.conn.fetch(
            """SELECT case_id, hospital_id, urgency, status, requested_at, first_contact_by
                 FROM support_request
                WHERE status IN ('searching', 'batching', 'offered', 'escalated')
                  AND ($1::text IS NULL OR hospital_id = $1)
                ORDER BY requested_at""",
            hospital,
        )
        waiting = await uow.conn.fetch(
            """SELECT o.case_id, o.peer, o.respond_by FROM offer o
                 JOIN support_request r USING (case_id)
                WHERE o.status = 'open' AND ($1::text IS NULL OR r.hospital_id = $1)
                ORDER BY o.respond_by""",
            hospital,
        )
    now = _matching(request).clock()
    return {
        "open_requests": [
            {**dict(r), "age_minutes": round((now - r["requested_at"]).total_seconds() / 60, 1)}
            for r in rows
        ],
        "offers_awaiting_answer": [dict(r) for r in waiting],
        "escalations": [dict(r) for r in rows if r["status"] == "escalated"],
    }
