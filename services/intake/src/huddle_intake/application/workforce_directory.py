"""The workforce directory as other use cases read it, and the one way entries are written.

``resolve`` and ``reporting_line`` run on the connection of the caller's unit of work, so the
directory is read in the same transaction (and row-level security scope) as the caller's work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from huddle_contracts.vocabulary import Discipline
from huddle_runtime.pseudonyms import pseudonym_for
from pydantic import SecretStr

from huddle_intake.adapters import directory_repository as repository
from huddle_intake.adapters.contact_vault import ContactVault
from huddle_intake.adapters.directory_repository import StaffRecord, lookup_digest
from huddle_intake.domain import workforce_directory as rules
from huddle_intake.domain.support_request import ContactDetails
from huddle_intake.domain.workforce_directory import StaffMember


async def resolve(
    conn: asyncpg.Connection, *, pseudonym_key: SecretStr, network_id: str, staff_ref: str
) -> StaffMember | None:
    """The directory's entry for a staff identifier (employee number, token subject), if any.

    Deprovisioned and inactive people are returned too (``active`` says which): someone who has
    just left may still be owed support.
    """
    pseudonym = pseudonym_for(pseudonym_key, network_id, staff_ref)
    return (await lines_of(conn, network_id=network_id, pseudonyms=[pseudonym])).member(pseudonym)


async def reporting_line(
    conn: asyncpg.Connection, *, network_id: str, pseudonym: str
) -> tuple[str, ...]:
    """The managers above ``pseudonym``, nearest first (never matched as their peer)."""
    lines = await lines_of(conn, network_id=network_id, pseudonyms=[pseudonym])
    return lines.reporting_line(pseudonym)


@dataclass(frozen=True)
class Lines:
    """People of the directory with everyone above them, as one query found them."""

    members: dict[str, StaffMember]

    def member(self, pseudonym: str) -> StaffMember | None:
        return self.members.get(pseudonym)

    def reporting_line(self, pseudonym: str) -> tuple[str, ...]:
        return rules.reporting_line(pseudonym, self.members)


async def lines_of(
    conn: asyncpg.Connection, *, network_id: str, pseudonyms: Iterable[str]
) -> Lines:
    """Many people and everyone above them, in one query (a back-fill's run reads them all)."""
    members = await repository.members_up_the_lines(
        conn, network_id=network_id, pseudonyms=list(pseudonyms), depth=rules.MAX_REPORTING_DEPTH
    )
    return Lines({member.pseudonym: member for member in members})


@dataclass(frozen=True)
class DirectoryKeys:
    """The secrets the directory writes with: pseudonyms and lookup digests, and the vault."""

    pseudonym_key: SecretStr
    vault: ContactVault

    def pseudonym(self, network_id: str, staff_ref: str) -> str:
        return pseudonym_for(self.pseudonym_key, network_id, staff_ref)

    def user_name_digest(self, network_id: str, user_name: str) -> str:
        # SCIM compares userName without case (RFC 7643 §4.1.1), so the digest does too.
        return lookup_digest(self.pseudonym_key, network_id, "userName", user_name.casefold())

    def external_id_digest(self, network_id: str, external_id: str) -> str:
        return lookup_digest(self.pseudonym_key, network_id, "externalId", external_id)


@dataclass(frozen=True)
class StaffEntry:
    """What a directory source (SCIM or CSV) says about one person, still in clear."""

    staff_ref: str
    """Employee number (or user name): becomes the pseudonym and is never stored in clear."""
    user_name: str
    external_id: str | None
    hospital_id: str
    unit_id: str
    discipline: Discipline
    manager_pseudonym: str | None
    active: bool
    contact: ContactDetails
    display_name: str | None
    profile: dict[str, Any]
    """The record as provisioned (a SCIM User document), kept sealed to answer SCIM reads."""


def staff_record(
    entry: StaffEntry,
    *,
    keys: DirectoryKeys,
    network_id: str,
    scim_id: UUID,
    clinical_area: str | None = None,
) -> StaffRecord:
    """Pseudonymise and seal an entry into the row the directory stores."""
    if not entry.staff_ref.strip():
        raise rules.DirectoryRefused("the staff identifier must not be empty")
    return StaffRecord(
        member=StaffMember(
            network_id=network_id,
            pseudonym=keys.pseudonym(network_id, entry.staff_ref),
            hospital_id=entry.hospital_id,
            unit_id=entry.unit_id,
            discipline=entry.discipline,
            clinical_area=clinical_area,
            manager_pseudonym=entry.manager_pseudonym,
            active=entry.active,
        ),
        scim_id=scim_id,
        user_name_digest=keys.user_name_digest(network_id, entry.user_name),
        external_id_digest=(
            keys.external_id_digest(network_id, entry.external_id) if entry.external_id else None
        ),
        sealed_profile=keys.vault.seal_document(entry.profile),
        sealed_contact=None if entry.contact.empty else keys.vault.seal(entry.contact),
        sealed_name=keys.vault.seal_text(entry.display_name) if entry.display_name else None,
    )
