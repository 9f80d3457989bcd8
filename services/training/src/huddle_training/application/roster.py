"""Use cases of the peer roster, each one unit of work (state and outbox commit together).

``hospital`` narrows a use case to one hospital's peers (a coordinator bound to a hospital); a peer
outside it is treated as unknown, so its existence is not disclosed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from huddle_contracts.vocabulary import Discipline, Gender
from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_training.adapters import courses, repository
from huddle_training.domain.certification import Certification, certification_valid_until
from huddle_training.domain.roster import Peer, PeerStatus, register_peer


class AlreadyOnRoster(Exception):
    """The member of staff is already a peer in this network."""

    def __init__(self, pseudonym: str) -> None:
        super().__init__(f"this member of staff is already on the roster as peer {pseudonym}")
        self.pseudonym = pseudonym


class UnknownPeer(LookupError):
    """No such peer in the caller's network (or hospital)."""

    def __init__(self, pseudonym: str) -> None:
        super().__init__(f"no peer {pseudonym} on your roster")


@dataclass(frozen=True)
class RegisterPeer:
    pseudonym: str
    """The staff member's pseudonym; their staff reference never reaches this layer."""
    hospital_id: str
    unit_id: str
    discipline: Discipline
    languages: tuple[str, ...]
    clinical_area: str | None = None
    gender: Gender | None = None


@dataclass(frozen=True)
class CertifyPeer:
    pseudonym: str
    validity_months: int
    """The default validity period, used when ``valid_until`` is not given and the network has
    no certification rule of its own."""
    certified_at: datetime | None = None
    valid_until: datetime | None = None


async def register(*, runtime: Runtime, principal: Principal, command: RegisterPeer) -> Peer:
    peer = register_peer(
        pseudonym=command.pseudonym,
        network_id=principal.network_id,
        hospital_id=command.hospital_id,
        unit_id=command.unit_id,
        discipline=command.discipline,
        languages=command.languages,
        clinical_area=command.clinical_area,
        gender=command.gender,
        registered_at=datetime.now(UTC),
    )
    async with runtime.unit_of_work(principal.tenant) as uow:
        await enrol_on_roster(uow, peer)
    return peer


async def enrol_on_roster(uow: UnitOfWork, peer: Peer) -> None:
    """Put a new peer on the roster (registered by a coordinator, or an approved nomination)."""
    if not await repository.add(uow.conn, peer):
        raise AlreadyOnRoster(peer.pseudonym)


async def find_peer(
    *, runtime: Runtime, principal: Principal, hospital: str | None, pseudonym: str
) -> Peer:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return _visible(await repository.get(uow.conn, pseudonym), hospital, pseudonym)


async def list_roster(
    *,
    runtime: Runtime,
    principal: Principal,
    hospital: str | None,
    status: PeerStatus | None,
    after: str | None,
    limit: int,
) -> list[Peer]:
    async with runtime.unit_of_work(principal.tenant) as uow:
        return await repository.list_peers(
            uow.conn, hospital_id=hospital, status=status, after=after, limit=limit
        )


async def certify(
    *, runtime: Runtime, principal: Principal, hospital: str | None, command: CertifyPeer
) -> tuple[Peer, Certification]:
    """Record the certification and queue PeerCertified, in one transaction.

    Without a ``valid_until``, the certification lasts the network's validity period: its
    certification rule's, else ``command.validity_months``.
    """
    recorded_at = datetime.now(UTC)
    certified_at = command.certified_at or recorded_at
    async with runtime.unit_of_work(principal.tenant) as uow:
        peer = _visible(
            await repository.get(uow.conn, command.pseudonym, for_update=True),
            hospital,
            command.pseudonym,
        )
        rule = await courses.certification_rule(uow.conn)
        months = rule.validity_months if rule is not None else command.validity_months
        certification = Certification(
            certification_id=uuid.uuid4(),
            network_id=principal.network_id,
            peer=command.pseudonym,
            certified_at=certified_at,
            valid_until=command.valid_until
            or certification_valid_until(certified_at, months=months),
            recorded_at=recorded_at,
        )
        certified = await record_certification(uow, peer, certification)
    return certified, certification


async def record_certification(uow: UnitOfWork, peer: Peer, certification: Certification) -> Peer:
    """The one certify path (by hand or by completing the course): the certification, the
    peer's status and PeerCertified, in the caller's unit of work."""
    certified, event = peer.certify(certification)
    await repository.add_certification(uow.conn, certification)
    await repository.set_status(uow.conn, certified)
    uow.publish(event)
    return certified


async def withdraw(
    *, runtime: Runtime, principal: Principal, hospital: str | None, pseudonym: str
) -> Peer:
    """Withdraw the peer and queue CertificationLapsed if matching may still offer them cases."""
    async with runtime.unit_of_work(principal.tenant) as uow:
        peer = _visible(
            await repository.get(uow.conn, pseudonym, for_update=True), hospital, pseudonym
        )
        withdrawn, lapse = peer.withdraw(datetime.now(UTC))
        if withdrawn != peer:
            await repository.set_status(uow.conn, withdrawn)
        if lapse is not None:
            uow.publish(lapse)
    return withdrawn


def _visible(peer: Peer | None, hospital: str | None, pseudonym: str) -> Peer:
    if peer is None or (hospital is not None and peer.hospital_id != hospital):
        raise UnknownPeer(pseudonym)
    return peer
