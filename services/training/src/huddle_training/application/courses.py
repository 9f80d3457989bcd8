"""Use cases of the course catalogue, the certification rule and cohorts, each one unit of work.

Recording attendance certifies, in the same transaction and through the roster's one certify
path (PeerCertified in the outbox), every peer who has now attended what the network's
certification rule asks of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime

from huddle_training.adapters import courses, repository
from huddle_training.application.roster import UnknownPeer, record_certification
from huddle_training.domain.certification import Certification
from huddle_training.domain.certification_rule import (
    CertificationRule,
    a_rule_names_only_modules_of_the_catalogue,
    automatic_certification,
)
from huddle_training.domain.course import (
    Cohort,
    Module,
    a_peer_completes_the_cohort_by_attending_every_module,
    a_withdrawn_peer_is_not_enrolled,
    attendance_falls_within_the_cohort_dates,
    attendance_is_taken_for_a_module_the_cohort_teaches,
    only_enrolled_peers_attend,
    plan_cohort,
)


class UnknownCohort(LookupError):
    def __init__(self, cohort_id: UUID) -> None:
        super().__init__(f"no cohort {cohort_id} for you")


class AlreadyEnrolled(Exception):
    def __init__(self, peer: str) -> None:
        super().__init__(f"peer {peer} is already enrolled in this cohort")


@dataclass(frozen=True)
class PlanCohort:
    hospital_id: str
    label: str
    starts_at: datetime
    ends_at: datetime
    modules: tuple[str, ...]


@dataclass(frozen=True)
class AttendanceTaken:
    """What recording attendance changed."""

    recorded: list[str]
    """Peers whose attendance of the module is new (the others were already recorded)."""
    completed: list[str] = field(default_factory=list)
    """Peers who have now attended every module of the cohort."""
    certified: list[Certification] = field(default_factory=list)
    """Certifications (or refreshers) the network's rule granted by this attendance."""


async def put_module(*, runtime: Runtime, principal: Principal, module: Module) -> bool:
    """Add or update a module of the network's catalogue; True when it is new."""
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await courses.put_module(uow.conn, principal.network_id, module, datetime.now(UTC))


async def catalogue(*, runtime: Runtime, principal: Principal) -> dict[str, Module]:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await courses.catalogue(uow.conn)


async def put_rule(
    *, runtime: Runtime, principal: Principal, rule: CertificationRule
) -> CertificationRule:
    async with runtime.unit_of_work(principal.tenant) as uow:
        a_rule_names_only_modules_of_the_catalogue(rule, await courses.catalogue(uow.conn))
        await courses.put_certification_rule(
            uow.conn, principal.network_id, rule, datetime.now(UTC)
        )
    return rule


async def certification_rule(*, runtime: Runtime, principal: Principal) -> CertificationRule | None:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await courses.certification_rule(uow.conn)


async def plan(*, runtime: Runtime, principal: Principal, command: PlanCohort) -> Cohort:
    async with runtime.unit_of_work(principal.tenant) as uow:
        cohort = plan_cohort(
            cohort_id=uuid.uuid4(),
            network_id=principal.network_id,
            hospital_id=command.hospital_id,
            label=command.label,
            starts_at=command.starts_at,
            ends_at=command.ends_at,
            modules=command.modules,
            catalogue=await courses.catalogue(uow.conn),
            created_at=datetime.now(UTC),
        )
        await courses.add_cohort(uow.conn, cohort)
    return cohort


async def list_cohorts(
    *, runtime: Runtime, principal: Principal, hospital: str | None, limit: int
) -> list[Cohort]:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await courses.list_cohorts(uow.conn, hospital_id=hospital, limit=limit)


async def cohort_with_enrolments(
    *, runtime: Runtime, principal: Principal, hospital: str | None, cohort_id: UUID
) -> tuple[Cohort, list[dict[str, object]]]:
    async with runtime.unit_of_work(principal.tenant) as uow:
        cohort = _visible(await courses.get_cohort(uow.conn, cohort_id), hospital, cohort_id)
        return cohort, await courses.enrolments(uow.conn, cohort_id)


async def enrol(
    *, runtime: Runtime, principal: Principal, hospital: str | None, cohort_id: UUID, peer: str
) -> datetime:
    """Enrol a peer of the caller's roster who has not withdrawn; returns when."""
    now = datetime.now(UTC)
    async with runtime.unit_of_work(principal.tenant) as uow:
        cohort = _visible(await courses.get_cohort(uow.conn, cohort_id), hospital, cohort_id)
        found = await repository.get(uow.conn, peer)
        if found is None or (hospital is not None and found.hospital_id != hospital):
            raise UnknownPeer(peer)
        a_withdrawn_peer_is_not_enrolled(found)
        if not await courses.enrol(uow.conn, cohort, peer, now):
            raise AlreadyEnrolled(peer)
    return now


async def take_attendance(
    *,
    runtime: Runtime,
    principal: Principal,
    hospital: str | None,
    cohort_id: UUID,
    module: str,
    attended_at: datetime,
    peers: Iterable[str],
) -> AttendanceTaken:
    """Record who attended ``module``; complete their enrolment and certify them when due."""
    now = datetime.now(UTC)
    present = sorted(set(peers))
    async with runtime.unit_of_work(principal.tenant) as uow:
        cohort = _visible(await courses.get_cohort(uow.conn, cohort_id), hospital, cohort_id)
        attendance_is_taken_for_a_module_the_cohort_teaches(cohort, module)
        attendance_falls_within_the_cohort_dates(cohort, attended_at, now)
        only_enrolled_peers_attend(await courses.enrolled(uow.conn, cohort_id), present)
        # Each peer's row is locked (in one order) before their attendance is counted, so that
        # attendance of two modules recorded at once never misses a certification.
        locked = {p: await repository.get(uow.conn, p, for_update=True) for p in present}
        taken = AttendanceTaken(
            recorded=await courses.record_attendance(
                uow.conn,
                cohort,
                module=module,
                peers=present,
                attended_at=attended_at,
                recorded_at=now,
            )
        )
        rule = await courses.certification_rule(uow.conn)
        for pseudonym, peer in locked.items():
            attended = await courses.attended_in_cohort(uow.conn, cohort_id, pseudonym)
            completed_at = a_peer_completes_the_cohort_by_attending_every_module(cohort, attended)
            if completed_at is not None and await courses.complete_enrolment(
                uow.conn, cohort_id, pseudonym, completed_at
            ):
                taken.completed.append(pseudonym)
            if rule is None or peer is None:
                continue
            certification = automatic_certification(
                rule,
                peer,
                await courses.attendance_of(uow.conn, pseudonym),
                now=now,
                certification_id=uuid.uuid4(),
            )
            if certification is not None:
                await record_certification(uow, peer, certification)
                taken.certified.append(certification)
    return taken


def _visible(cohort: Cohort | None, hospital: str | None, cohort_id: UUID) -> Cohort:
    if cohort is None or (hospital is not None and cohort.hospital_id != hospital):
        raise UnknownCohort(cohort_id)
    return cohort
