"""Use cases of nominations, each one unit of work. An approval enrols the nominee on the roster
through the roster's own registration, in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from huddle_contracts.vocabulary import Discipline, Gender
from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime

from huddle_training.adapters import nominations, repository
from huddle_training.application.roster import AlreadyOnRoster, enrol_on_roster
from huddle_training.domain.nomination import Nomination, NominationStatus, nominate
from huddle_training.domain.roster import Peer


class UnknownNomination(LookupError):
    """No such nomination that the caller may see."""

    def __init__(self, nomination_id: UUID) -> None:
        super().__init__(f"no nomination {nomination_id} for you")


class AlreadyNominated(Exception):
    def __init__(self) -> None:
        super().__init__("this colleague already has an open nomination")


class NotTheNominee(PermissionError):
    def __init__(self) -> None:
        super().__init__("only the nominee can consent to or refuse a nomination")


@dataclass(frozen=True)
class Viewer:
    """Who acts on a nomination: their pseudonym, and the roster they keep, if any."""

    pseudonym: str
    keeps_roster: bool
    """A coordinator or network admin."""
    hospital: str | None = None
    """The one hospital whose nominations a coordinator keeps (None: the whole network)."""

    def sees(self, nomination: Nomination) -> bool:
        if nomination.nominee == self.pseudonym:
            return True
        return self.keeps_roster and self.hospital in (None, nomination.hospital_id)


@dataclass(frozen=True)
class Nominate:
    nominee: str
    """The colleague's pseudonym; their staff reference never reaches this layer."""
    hospital_id: str
    unit_id: str
    discipline: Discipline
    clinical_area: str | None = None


async def nominate_colleague(
    *, runtime: Runtime, principal: Principal, nominated_by: str, command: Nominate
) -> Nomination:
    nomination = nominate(
        nomination_id=uuid.uuid4(),
        network_id=principal.network_id,
        hospital_id=command.hospital_id,
        unit_id=command.unit_id,
        discipline=command.discipline,
        nominee=command.nominee,
        nominated_by=nominated_by,
        nominated_at=datetime.now(UTC),
        clinical_area=command.clinical_area,
    )
    async with runtime.unit_of_work(principal.tenant) as uow:
        if await repository.get(uow.conn, command.nominee) is not None:
            raise AlreadyOnRoster(command.nominee)
        if not await nominations.add(uow.conn, nomination):
            raise AlreadyNominated()
    return nomination


async def find(
    *, runtime: Runtime, principal: Principal, viewer: Viewer, nomination_id: UUID
) -> Nomination:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return _visible(await nominations.get(uow.conn, nomination_id), viewer, nomination_id)


async def listing(
    *,
    runtime: Runtime,
    principal: Principal,
    hospital: str | None = None,
    nominee: str | None = None,
    status: NominationStatus | None = None,
    limit: int = 100,
) -> list[Nomination]:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await nominations.list_nominations(
            uow.conn, hospital_id=hospital, nominee=nominee, status=status, limit=limit
        )


async def consent(
    *,
    runtime: Runtime,
    principal: Principal,
    viewer: Viewer,
    nomination_id: UUID,
    languages: tuple[str, ...],
    gender: Gender | None,
) -> Nomination:
    async with runtime.unit_of_work(principal.tenant) as uow:
        nomination = await _answerable(uow.conn, viewer, nomination_id)
        consented = nomination.consent(
            by=viewer.pseudonym, languages=languages, gender=gender, at=datetime.now(UTC)
        )
        await nominations.save(uow.conn, consented)
    return consented


async def refuse(
    *, runtime: Runtime, principal: Principal, viewer: Viewer, nomination_id: UUID
) -> Nomination:
    async with runtime.unit_of_work(principal.tenant) as uow:
        nomination = await _answerable(uow.conn, viewer, nomination_id)
        refused = nomination.refuse(by=viewer.pseudonym, at=datetime.now(UTC))
        await nominations.save(uow.conn, refused)
    return refused


async def approve(
    *, runtime: Runtime, principal: Principal, viewer: Viewer, nomination_id: UUID
) -> tuple[Nomination, Peer]:
    """Approve (the nominee consented) and enrol the nominee on the roster, in one transaction."""
    async with runtime.unit_of_work(principal.tenant) as uow:
        nomination = await _decidable(uow.conn, viewer, nomination_id)
        approved, peer = nomination.approve(by=viewer.pseudonym, at=datetime.now(UTC))
        await enrol_on_roster(uow, peer)
        await nominations.save(uow.conn, approved)
    return approved, peer


async def decline(
    *, runtime: Runtime, principal: Principal, viewer: Viewer, nomination_id: UUID
) -> Nomination:
    async with runtime.unit_of_work(principal.tenant) as uow:
        nomination = await _decidable(uow.conn, viewer, nomination_id)
        declined = nomination.decline(by=viewer.pseudonym, at=datetime.now(UTC))
        await nominations.save(uow.conn, declined)
    return declined


async def _answerable(conn: asyncpg.Connection, viewer: Viewer, nomination_id: UUID) -> Nomination:
    nomination = _visible(
        await nominations.get(conn, nomination_id, for_update=True),
        viewer,
        nomination_id,
    )
    if nomination.nominee != viewer.pseudonym:
        raise NotTheNominee()
    return nomination


async def _decidable(conn: asyncpg.Connection, viewer: Viewer, nomination_id: UUID) -> Nomination:
    """A coordinator decides on the nominations of their hospital (the network's: an admin)."""
    nomination = await nominations.get(conn, nomination_id, for_update=True)
    if (
        nomination is None
        or not viewer.keeps_roster
        or viewer.hospital not in (None, nomination.hospital_id)
    ):
        raise UnknownNomination(nomination_id)
    return nomination


def _visible(nomination: Nomination | None, viewer: Viewer, nomination_id: UUID) -> Nomination:
    if nomination is None or not viewer.sees(nomination):
        raise UnknownNomination(nomination_id)
    return nomination
