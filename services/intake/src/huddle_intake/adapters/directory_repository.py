"""The workforce directory in PostgreSQL (row-level security scopes every query to the network)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from huddle_contracts.vocabulary import Discipline
from huddle_runtime.pseudonyms import network_secret
from pydantic import SecretStr

from huddle_intake.domain.workforce_directory import StaffMember, Unit


def lookup_digest(master_key: SecretStr, network_id: str, attribute: str, value: str) -> str:
    """A keyed digest of an identifier, so it can be looked up without being stored."""
    secret = network_secret(master_key, network_id)
    message = f"huddle/directory/{attribute}/{value}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StaffRecord:
    """A directory row: the member, their SCIM id and lookups, and what is kept sealed."""

    member: StaffMember
    scim_id: UUID
    user_name_digest: str
    external_id_digest: str | None
    sealed_profile: bytes
    sealed_contact: bytes | None = None
    sealed_name: bytes | None = None
    deprovisioned: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class UnitRecord:
    unit: Unit
    scim_id: UUID
    external_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Page:
    """One page of a query: where it starts (0-based) and how many rows at most."""

    offset: int
    limit: int


# Rows about to be rewritten are locked; reads (and manager look-ups) are not, to avoid deadlocks.
_LOCK = {True: " FOR UPDATE", False: ""}

_MEMBER_COLUMNS = (
    "network_id, pseudonym, hospital_id, unit_id, discipline, clinical_area, manager_pseudonym,"
    " active"
)


def member_of(row: asyncpg.Record) -> StaffMember:
    return StaffMember(
        network_id=row["network_id"],
        pseudonym=row["pseudonym"],
        hospital_id=row["hospital_id"],
        unit_id=row["unit_id"],
        discipline=Discipline(row["discipline"]),
        clinical_area=row["clinical_area"],
        manager_pseudonym=row["manager_pseudonym"],
        active=row["active"],
    )


def _staff(row: asyncpg.Record) -> StaffRecord:
    return StaffRecord(
        member=member_of(row),
        scim_id=row["scim_id"],
        user_name_digest=row["user_name_digest"],
        external_id_digest=row["external_id_digest"],
        sealed_profile=row["sealed_profile"],
        sealed_contact=row["sealed_contact"],
        sealed_name=row["sealed_name"],
        deprovisioned=row["deprovisioned_at"] is not None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def members_up_the_lines(
    conn: asyncpg.Connection, *, network_id: str, pseudonyms: Sequence[str], depth: int
) -> list[StaffMember]:
    """The people and everyone above them, at most ``depth`` levels (a cycle ends by the bound)."""
    line, members = up_the_line("$1", "ANY($2::text[])", "$3")
    rows = await conn.fetch(
        f"WITH RECURSIVE {line} {members}", network_id, sorted(set(pseudonyms)), depth
    )
    return [member_of(row) for row in rows]


def up_the_line(network_id: str, pseudonym: str, depth: str) -> tuple[str, str]:
    """``members_up_the_lines`` as SQL for a statement of the caller's, given its placeholders:
    the recursive CTE ``line`` and the SELECT of the members in it (rows for ``member_of``)."""
    line = f"""line (pseudonym, manager_pseudonym, depth) AS (
            SELECT pseudonym, manager_pseudonym, 0 FROM staff
             WHERE network_id = {network_id} AND pseudonym = {pseudonym}
            UNION
            SELECT s.pseudonym, s.manager_pseudonym, line.depth + 1
              FROM staff s JOIN line ON s.pseudonym = line.manager_pseudonym
             WHERE s.network_id = {network_id} AND line.depth < {depth})"""
    members = f"""SELECT {_MEMBER_COLUMNS} FROM staff
         WHERE network_id = {network_id} AND pseudonym IN (SELECT pseudonym FROM line)"""
    return line, members


async def staff_by_pseudonym(
    conn: asyncpg.Connection, *, network_id: str, pseudonym: str
) -> StaffRecord | None:
    """The row, deprovisioned or not, locked for the caller's transaction."""
    row = await conn.fetchrow(
        "SELECT * FROM staff WHERE network_id = $1 AND pseudonym = $2 FOR UPDATE",
        network_id,
        pseudonym,
    )
    return _staff(row) if row else None


async def staff_by_scim_id(
    conn: asyncpg.Connection,
    scim_id: UUID,
    *,
    hospital_id: str | None = None,
    for_update: bool = False,
) -> StaffRecord | None:
    """A provisioned (not deprovisioned) person, in ``hospital_id`` when given."""
    row = await conn.fetchrow(
        """SELECT * FROM staff WHERE scim_id = $1 AND deprovisioned_at IS NULL
              AND ($2::text IS NULL OR hospital_id = $2)"""
        + _LOCK[for_update],
        scim_id,
        hospital_id,
    )
    return _staff(row) if row else None


async def find_staff(
    conn: asyncpg.Connection,
    *,
    user_name_digest: str | None = None,
    external_id_digest: str | None = None,
    hospital_id: str | None = None,
    page: Page,
) -> tuple[int, list[StaffRecord]]:
    """Provisioned people matching every given lookup, in a stable order, and their total."""
    where = """deprovisioned_at IS NULL
               AND ($1::text IS NULL OR user_name_digest = $1)
               AND ($2::text IS NULL OR external_id_digest = $2)
               AND ($3::text IS NULL OR hospital_id = $3)"""
    args = (user_name_digest, external_id_digest, hospital_id)
    total: int = await conn.fetchval(f"SELECT count(*) FROM staff WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM staff WHERE {where} ORDER BY created_at, scim_id OFFSET $4 LIMIT $5",
        *args,
        page.offset,
        page.limit,
    )
    return total, [_staff(row) for row in rows]


async def scim_ids(
    conn: asyncpg.Connection, *, network_id: str, pseudonyms: Sequence[str]
) -> dict[str, UUID]:
    """SCIM ids of the provisioned people among ``pseudonyms``."""
    rows = await conn.fetch(
        """SELECT pseudonym, scim_id FROM staff
            WHERE network_id = $1 AND pseudonym = ANY($2::text[]) AND deprovisioned_at IS NULL""",
        network_id,
        list(pseudonyms),
    )
    return {row["pseudonym"]: row["scim_id"] for row in rows}


async def scim_ids_in_unit(
    conn: asyncpg.Connection, *, network_id: str, hospital_id: str, unit_id: str
) -> list[UUID]:
    rows = await conn.fetch(
        """SELECT scim_id FROM staff
            WHERE network_id = $1 AND hospital_id = $2 AND unit_id = $3
              AND deprovisioned_at IS NULL
            ORDER BY created_at, scim_id""",
        network_id,
        hospital_id,
        unit_id,
    )
    return [row["scim_id"] for row in rows]


async def insert_staff(conn: asyncpg.Connection, record: StaffRecord) -> None:
    m = record.member
    await conn.execute(
        """INSERT INTO staff (network_id, pseudonym, hospital_id, unit_id, discipline,
               clinical_area, manager_pseudonym, active, scim_id, user_name_digest,
               external_id_digest, sealed_profile, sealed_contact, sealed_name)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        m.network_id,
        m.pseudonym,
        m.hospital_id,
        m.unit_id,
        m.discipline.value,
        m.clinical_area,
        m.manager_pseudonym,
        m.active,
        record.scim_id,
        record.user_name_digest,
        record.external_id_digest,
        record.sealed_profile,
        record.sealed_contact,
        record.sealed_name,
    )


async def update_staff(
    conn: asyncpg.Connection, record: StaffRecord, *, previous_pseudonym: str
) -> None:
    """Rewrite the row once known as ``previous_pseudonym`` (the staff id itself may change).

    Writing a row provisions it again, so a deprovisioned person comes back.
    """
    m = record.member
    await conn.execute(
        """UPDATE staff SET pseudonym = $3, hospital_id = $4, unit_id = $5, discipline = $6,
               clinical_area = $7, manager_pseudonym = $8, active = $9, scim_id = $10,
               user_name_digest = $11, external_id_digest = $12, sealed_profile = $13,
               sealed_contact = $14, sealed_name = $15, deprovisioned_at = NULL,
               updated_at = clock_timestamp()
            WHERE network_id = $1 AND pseudonym = $2""",
        m.network_id,
        previous_pseudonym,
        m.pseudonym,
        m.hospital_id,
        m.unit_id,
        m.discipline.value,
        m.clinical_area,
        m.manager_pseudonym,
        m.active,
        record.scim_id,
        record.user_name_digest,
        record.external_id_digest,
        record.sealed_profile,
        record.sealed_contact,
        record.sealed_name,
    )
    if previous_pseudonym != m.pseudonym:
        # Reports follow their manager to the new pseudonym, as SCIM names managers by id.
        await conn.execute(
            """UPDATE staff SET manager_pseudonym = $3, updated_at = clock_timestamp()
                WHERE network_id = $1 AND manager_pseudonym = $2""",
            m.network_id,
            previous_pseudonym,
            m.pseudonym,
        )


async def deprovision(conn: asyncpg.Connection, *, scim_id: UUID, sealed_profile: bytes) -> None:
    await conn.execute(
        """UPDATE staff SET active = false, sealed_profile = $2,
               deprovisioned_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE scim_id = $1""",
        scim_id,
        sealed_profile,
    )


def _unit(row: asyncpg.Record) -> UnitRecord:
    return UnitRecord(
        unit=Unit(
            network_id=row["network_id"],
            hospital_id=row["hospital_id"],
            unit_id=row["unit_id"],
            display_name=row["display_name"],
        ),
        scim_id=row["scim_id"],
        external_id=row["external_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def unit_by_scim_id(
    conn: asyncpg.Connection,
    scim_id: UUID,
    *,
    hospital_id: str | None = None,
    for_update: bool = False,
) -> UnitRecord | None:
    row = await conn.fetchrow(
        "SELECT * FROM unit WHERE scim_id = $1 AND ($2::text IS NULL OR hospital_id = $2)"
        + _LOCK[for_update],
        scim_id,
        hospital_id,
    )
    return _unit(row) if row else None


async def find_units(
    conn: asyncpg.Connection,
    *,
    display_name: str | None = None,
    external_id: str | None = None,
    hospital_id: str | None = None,
    page: Page,
) -> tuple[int, list[UnitRecord]]:
    """Units matching every given lookup; SCIM compares displayName without case."""
    where = """($1::text IS NULL OR lower(display_name) = lower($1))
               AND ($2::text IS NULL OR external_id = $2)
               AND ($3::text IS NULL OR hospital_id = $3)"""
    args = (display_name, external_id, hospital_id)
    total: int = await conn.fetchval(f"SELECT count(*) FROM unit WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM unit WHERE {where} ORDER BY created_at, scim_id OFFSET $4 LIMIT $5",
        *args,
        page.offset,
        page.limit,
    )
    return total, [_unit(row) for row in rows]


async def insert_unit(conn: asyncpg.Connection, record: UnitRecord) -> None:
    u = record.unit
    await conn.execute(
        """INSERT INTO unit (network_id, hospital_id, unit_id, display_name, scim_id, external_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        u.network_id,
        u.hospital_id,
        u.unit_id,
        u.display_name,
        record.scim_id,
        record.external_id,
    )


async def update_unit(conn: asyncpg.Connection, record: UnitRecord) -> None:
    await conn.execute(
        """UPDATE unit SET display_name = $2, external_id = $3, updated_at = clock_timestamp()
            WHERE scim_id = $1""",
        record.scim_id,
        record.unit.display_name,
        record.external_id,
    )


async def delete_unit(conn: asyncpg.Connection, scim_id: UUID) -> None:
    await conn.execute("DELETE FROM unit WHERE scim_id = $1", scim_id)
